//! A fault-injecting TCP proxy on 127.0.0.1, to put between the app and PostgreSQL, Redis or
//! ModelGates: the tests and the load program cut, stall, slow and restore a dependency
//! without touching its server.
//!
//! * [`FaultProxy::refuse`]: every open connection is cut and the port is closed, so a new
//!   connection is refused, as when the server is stopped.
//! * [`FaultProxy::stall`]: every open connection is cut; new ones are accepted and never
//!   answered, as when the server or the network hangs.
//! * [`FaultProxy::delay`]: each new connection waits this long before it is forwarded.
//! * [`FaultProxy::restore`]: back to forwarding, on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the proxy does with connections now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward every byte both ways.
    Forward,
    /// Forward after a delay per new connection.
    Delay(Duration),
    /// Accept, never answer.
    Stall,
    /// The port is closed.
    Refuse,
}

/// The proxy. Stops (and cuts every connection) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Counts every connection accepted, whatever happened to it.
    accepted: Arc<Mutex<u64>>,
}

impl FaultProxy {
    /// A proxy on a free 127.0.0.1 port to `target`, forwarding.
    ///
    /// # Panics
    ///
    /// When 127.0.0.1 cannot be bound.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("a bound address");
        let (mode, watching) = watch::channel(Mode::Forward);
        let accepted = Arc::new(Mutex::new(0));
        tokio::spawn(serve(
            Some(listener),
            addr,
            target,
            watching,
            accepted.clone(),
        ));
        Self {
            addr,
            mode,
            accepted,
        }
    }

    /// The proxy's address, to give the app instead of the server's.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections the proxy accepted so far.
    #[must_use]
    pub fn accepted(&self) -> u64 {
        *self.accepted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts every connection and closes the port.
    pub fn refuse(&self) {
        self.mode.send_replace(Mode::Refuse);
    }

    /// Cuts every connection; new ones hang.
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Delays each new connection by `delay`.
    pub fn delay(&self, delay: Duration) {
        self.mode.send_replace(Mode::Delay(delay));
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

/// The accept loop: rebinds the port after a refusal, cuts connections on each cut.
async fn serve(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    target: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    accepted: Arc<Mutex<u64>>,
) {
    let mut connections = JoinSet::new();
    loop {
        let now = *mode.borrow_and_update();
        if matches!(now, Mode::Refuse | Mode::Stall) {
            connections.abort_all();
        }
        if now == Mode::Refuse {
            listener = None;
        } else if listener.is_none() {
            listener = rebind(addr).await;
        }
        let Some(open) = &listener else {
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Ok((client, _)) = open.accept() => {
                *accepted.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                connections.spawn(relay(client, target, now));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Binds `addr` again, retrying while the old socket lingers.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..200 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("fault proxy: could not bind {addr} again");
    None
}

async fn relay(mut client: TcpStream, target: SocketAddr, mode: Mode) {
    match mode {
        Mode::Stall => {
            // Hold the connection open and silent until the proxy cuts it.
            std::future::pending::<()>().await;
        }
        Mode::Delay(delay) => tokio::time::sleep(delay).await,
        Mode::Forward | Mode::Refuse => {}
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
