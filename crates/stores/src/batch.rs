//! Opportunistic batching of one kind of write: the writes that arrive while a statement is
//! running go together in the next one.
//!
//! Each write to PostgreSQL costs a round trip and a statement, about the same CPU whether it
//! carries one row or fifty; a sign-in makes two (its spent flow, its session). One task per
//! store and kind takes every write waiting (up to [`MAX_BATCH`]) as soon as one of
//! [`CONCURRENT_BATCHES`] statement slots is free, runs them as one multi-row statement, and
//! answers each: alone, a write goes at once, as before; under load, a hundred concurrent
//! sign-ins cost a few statements. A failed statement fails every write in it, each with the
//! statement's error.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, mpsc, oneshot};

use modelgates_axum::store::StoreError;

/// The most writes one statement carries.
pub(super) const MAX_BATCH: usize = 128;
/// How long a batch waits for more writes when several arrived together (a lone write never
/// waits).
const LINGER: std::time::Duration = std::time::Duration::from_millis(3);
/// The most statements of one kind running at once, per store.
pub(super) const CONCURRENT_BATCHES: usize = 1;

type Job<I, O> = (I, oneshot::Sender<Result<O, StoreError>>);

/// The queue of one kind of write, and the task that runs it, started on first use (within
/// the runtime the store is used on) and again if that runtime is gone.
pub(super) struct Batcher<I, O> {
    queue: Mutex<Option<mpsc::UnboundedSender<Job<I, O>>>>,
}

impl<I, O> Default for Batcher<I, O> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(None),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Runs `item` in the next batch. The first call starts the task with the `run` that
    /// `make_run` makes: one statement for a batch, answering each item in order.
    pub(super) async fn submit<F, Fut>(
        &self,
        item: I,
        make_run: impl FnOnce() -> F,
    ) -> Result<O, StoreError>
    where
        F: FnMut(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send + 'static,
    {
        let queue = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            match &*queue {
                Some(running) if !running.is_closed() => running.clone(),
                _ => queue.insert(start(make_run())).clone(),
            }
        };
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::new("the store's write task stopped");
        queue.send((item, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The task: until every sender is gone, takes what is waiting once a statement slot is free
/// (at most [`CONCURRENT_BATCHES`] statements run at once, each on its own pooled connection).
fn start<I, O, F, Fut>(mut run: F) -> mpsc::UnboundedSender<Job<I, O>>
where
    I: Send + 'static,
    O: Send + 'static,
    F: FnMut(Vec<I>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<O>, StoreError>> + Send + 'static,
{
    let (queue, mut jobs) = mpsc::unbounded_channel::<Job<I, O>>();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let waiting = jobs.recv_many(&mut batch, MAX_BATCH).await;
            if waiting == 0 {
                return;
            }
            if waiting > 1 && waiting < MAX_BATCH {
                // Writes are arriving together: a moment more makes one statement of many.
                tokio::time::sleep(LINGER).await;
                while batch.len() < MAX_BATCH {
                    let Ok(job) = jobs.try_recv() else { break };
                    batch.push(job);
                }
            }
            let (items, replies): (Vec<I>, Vec<_>) = batch.drain(..).unzip();
            let statement = run(items);
            tokio::spawn(async move {
                let outcome = statement.await;
                drop(slot);
                answer(replies, outcome);
            });
        }
    });
    queue
}

/// Answers each write of a batch with its outcome, or every one with the statement's error.
fn answer<O>(
    replies: Vec<oneshot::Sender<Result<O, StoreError>>>,
    outcome: Result<Vec<O>, StoreError>,
) {
    match outcome {
        Ok(outcomes) if outcomes.len() == replies.len() => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Ok(_) => answer_all(replies, "a batched write answered a wrong number of rows"),
        Err(error) => answer_all(replies, &error_text(&error)),
    }
}

/// The error and its causes, as one message for every write of a failed statement.
fn error_text(error: &StoreError) -> String {
    let mut text = error.message().to_owned();
    let mut cause = std::error::Error::source(error);
    while let Some(source) = cause {
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}

fn answer_all<O>(replies: Vec<oneshot::Sender<Result<O, StoreError>>>, message: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::new(message)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_writes_share_statements_and_each_gets_its_answer() {
        let batcher = Arc::new(Batcher::<u32, u32>::default());
        let statements = Arc::new(AtomicUsize::new(0));
        let writes: Vec<_> = (0..200)
            .map(|i| {
                let (batcher, statements) = (batcher.clone(), statements.clone());
                tokio::spawn(async move {
                    batcher
                        .submit(i, || {
                            move |items: Vec<u32>| {
                                statements.fetch_add(1, Ordering::SeqCst);
                                async move {
                                    // A statement takes a while: writes pile up meanwhile.
                                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                                    Ok(items.iter().map(|i| i * 2).collect())
                                }
                            }
                        })
                        .await
                })
            })
            .collect();
        for (i, write) in writes.into_iter().enumerate() {
            assert_eq!(write.await.unwrap().unwrap(), u32::try_from(i).unwrap() * 2);
        }
        let statements = statements.load(Ordering::SeqCst);
        assert!(statements <= 20, "{statements} statements for 200 writes");
    }

    #[test]
    fn a_store_outlives_the_runtime_it_was_first_used_on() {
        let batcher = Batcher::<u32, u32>::default();
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let doubled = runtime.block_on(batcher.submit(21, || {
                |items: Vec<u32>| async move { Ok(items.iter().map(|i| i * 2).collect()) }
            }));
            assert_eq!(doubled.unwrap(), 42);
        }
    }

    #[tokio::test]
    async fn a_failed_statement_fails_each_write_in_it() {
        let batcher = Batcher::<u32, ()>::default();
        let error = batcher
            .submit(1, || {
                |_| async {
                    Err(StoreError::with_source(
                        "saving keys failed",
                        std::io::Error::other("connection refused"),
                    ))
                }
            })
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("saving keys failed: connection refused")
        );
    }
}
