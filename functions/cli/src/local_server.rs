//! The local HTTP server of `klaviyo-source serve`, with the limits a server facing a hostile
//! network needs (axum's own `serve` has none): a cap on open connections, a time limit for
//! a request's headers (also the idle limit of a kept-alive connection, which waits for the
//! next request's headers), and a time limit for its body (in `request_body`). In Lambda
//! none of this applies: API Gateway holds the connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Most connections open at once; further ones wait in the listen backlog until one closes.
/// A connection still sending its headers costs a socket and hyper's header buffer, not a
/// request's body: slow clients may hold many of these without keeping a real request out.
pub const MAX_CONNECTIONS: usize = 512;

/// Most requests handled at once (their headers read); further ones wait for a slot. With
/// the body limit this bounds the bodies' memory: 128 × 4 MiB.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 128;

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
    let requests = Arc::new(Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
    let app = app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let requests = requests.clone();
            async move {
                // Closed only if the server is gone; then the request runs unbounded.
                let _slot = requests.acquire_owned().await.ok();
                next.run(request).await
            }
        },
    ));
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
                .serve_connection(TokioIo::new(JsonErrors::new(stream)), service);
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
}

/// A connection whose bodiless error answers, the ones hyper writes by itself when a
/// request cannot even be parsed (431 for oversized headers, 400 for a broken request line
/// or `Content-Length`), are rewritten into the JSON errors every other refusal gets. The
/// application's own answers always carry a body, so they pass through untouched.
struct JsonErrors<T> {
    inner: T,
    /// Bytes of a rewritten answer still to be written, and how many are written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonErrors<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// The JSON replacement of `head`, if it is a whole bodiless 4xx/5xx answer.
fn json_error_for(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let ends_head = text.ends_with("\r\n\r\n");
    let empty_body = text
        .lines()
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !(400..600).contains(&status) || !ends_head || !empty_body {
        return None;
    }
    let code = match status {
        431 => "request_header_fields_too_large",
        414 => "uri_too_long",
        413 => "payload_too_large",
        505 => "http_version_not_supported",
        _ => "bad_request",
    };
    let body = format!(
        r#"{{"error":"{code}","code":"{code}","message":"the request could not be read as HTTP/1.1 ({status})"}}"#
    );
    let reason = rest.lines().next().unwrap_or_default();
    Some(
        format!(
            "HTTP/1.1 {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is left of a rewritten answer; ready once all of it is written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n =
                std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        if let Some(replacement) = json_error_for(buf) {
            self.pending = Some((replacement, 0));
            std::task::ready!(self.poll_pending(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands each answer's head over in one buffer, which is what
    // the rewrite looks at.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_bodiless_error_answers() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let rewritten = String::from_utf8(json_error_for(hyper_431).unwrap()).unwrap();
        assert!(rewritten.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(
            rewritten.ends_with(r#""message":"the request could not be read as HTTP/1.1 (431)"}"#)
        );
        assert!(rewritten.contains(r#""error":"request_header_fields_too_large""#));
        // Our own answers have bodies; successes are never touched.
        assert!(json_error_for(b"HTTP/1.1 404 Not Found\r\ncontent-length: 60\r\n\r\n").is_none());
        assert!(json_error_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
