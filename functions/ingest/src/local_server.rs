//! The local HTTP server of `bootstrap serve`, with the limits a server facing a hostile
//! network needs (axum's own `serve` has none): a cap on open connections, a time limit for
//! a request's headers (also the idle limit of a kept-alive connection, which waits for the
//! next request's headers), and a time limit for its body (in `request_body`). In Lambda
//! none of this applies: API Gateway holds the connections.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Most connections served at once; further ones wait in the listen backlog until one
/// closes. With the body limit this bounds memory: 128 × 4 MiB.
pub const MAX_CONNECTIONS: usize = 128;

/// Time a client has to send a request's headers, and the longest a kept-alive connection
/// may sit idle between requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve_with_limits(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // Take a slot before accepting: at the cap, new clients queue in the backlog
        // instead of being reset.
        let slot = tokio::select! {
            () = &mut shutdown => return Ok(()),
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return Ok(()),
            },
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Per-connection failures (a reset during the handshake, too many
                    // open files) must not stop the server.
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
}
