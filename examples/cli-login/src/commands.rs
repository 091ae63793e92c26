//! `whoami` and `chat`: the key kept, spent.

use std::io::Write as _;

use futures_util::StreamExt as _;
use modelgates_oauth_core::async_openai::error::OpenAIError;
use modelgates_oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use modelgates_oauth_core::{ApiKey, ModelGatesClient};

use crate::Failure;
use crate::key_store::KeyStore;

fn kept_key(store: &KeyStore) -> Result<ApiKey, Failure> {
    store
        .load()
        .map_err(Failure::setup)?
        .ok_or_else(Failure::not_signed_in)
}

/// `whoami`: the key's label, usage, limit, what remains, and where to manage it.
pub(crate) async fn whoami(client: &ModelGatesClient, store: &KeyStore) -> Result<(), Failure> {
    let key = kept_key(store)?;
    let info = client
        .key_info(&key)
        .await
        .map_err(|e| Failure::request(&e))?;
    println!("Key:       {} ({})", info.label, key.masked());
    println!("Usage:     {:.6} credits", info.usage);
    match (info.limit, info.limit_remaining) {
        (Some(limit), Some(remaining)) => {
            println!("Limit:     {limit:.2} credits");
            println!("Remaining: {remaining:.2} credits");
        }
        (Some(limit), None) => println!("Limit:     {limit:.2} credits"),
        (None, _) => println!("Limit:     none"),
    }
    println!("Manage:    {}", client.manage_url(&key));
    Ok(())
}

fn openai_failure(error: &OpenAIError) -> Failure {
    match modelgates_oauth_core::openai::request_error(error) {
        Some(typed) => Failure::request(&typed),
        None => Failure::setup(format!("the chat failed: {error}")),
    }
}

/// `chat`: the answer streams to stdout as it comes; Ctrl-C closes the stream, which ends the
/// call (and its cost) on ModelGates' side.
pub(crate) async fn chat(
    client: &ModelGatesClient,
    store: &KeyStore,
    model: &str,
    message: &str,
) -> Result<(), Failure> {
    let key = kept_key(store)?;
    let mut interrupted = crate::interrupted();
    let request = CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessage::from(message).into()])
        .stream(true)
        .build()
        .map_err(|e| Failure::setup(e.to_string()))?;
    let mut stream = client
        .openai_stream(&key)
        .chat()
        .create_stream(request)
        .await
        .map_err(|e| openai_failure(&e))?;
    let mut stdout = std::io::stdout();
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = &mut interrupted => {
                drop(stream);
                let _ = writeln!(stdout);
                return Err(Failure::interrupted());
            }
        };
        match next {
            Some(Ok(chunk)) => {
                for choice in chunk.choices {
                    if let Some(delta) = choice.delta.content {
                        let _ = stdout.write_all(delta.as_bytes());
                        let _ = stdout.flush();
                    }
                }
            }
            Some(Err(error)) => {
                let _ = writeln!(stdout);
                return Err(openai_failure(&error));
            }
            None => break,
        }
    }
    let _ = writeln!(stdout);
    Ok(())
}
