//! The accept loop: each TCP connection is served by hyper with the router, over TLS when a
//! certificate is configured. A client has `header_read` to send each request's headers (slow
//! clients are cut off, not kept); on the TLS port, a client that speaks plain HTTP gets a clear
//! error in plain HTTP instead of a handshake that never ends.

use super::tls::TlsCertificate;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<TlsCertificate>>,
    /// How long a client may take to send a request's headers (and, on TLS, its handshake).
    pub header_read: Duration,
}

impl Listener {
    /// Serves `router` on every connection until `stopping` becomes true; then accepts no
    /// more, lets each connection finish the request it is in (WebSockets close themselves),
    /// and returns once all have ended or `grace` has passed.
    pub async fn serve(self, router: Router, mut stopping: watch::Receiver<bool>, grace: Duration) {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = self.tcp.accept() => accepted,
                _ = stopping.wait_for(|stopping| *stopping) => break,
            };
            while connections.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, mostly: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let tls = self.tls.clone();
            let (header_read, stopping) = (self.header_read, stopping.clone());
            connections.spawn(async move {
                match tls {
                    None => serve_connection(stream, peer, router, header_read, stopping).await,
                    Some(tls) => serve_tls_connection(stream, peer, router, &tls, header_read, stopping).await,
                }
            });
        }
        drop(self.tcp);
        let open = connections.len();
        let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::info!("{} of {open} connections still open after {} s: closed", connections.len(), grace.as_secs_f64());
        }
    }
}

async fn serve_tls_connection(stream: TcpStream, peer: SocketAddr, router: Router, tls: &TlsCertificate, header_read: Duration, stopping: watch::Receiver<bool>) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(header_read, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(1)) => return refuse_plain_http(stream).await,
        _ => return,
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    match tokio::time::timeout(header_read, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, peer, router, header_read, stopping).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake not done within {} s", header_read.as_secs()),
    }
}

/// Answers a plain HTTP request on the TLS port with 400 and words, then closes.
async fn refuse_plain_http(mut stream: TcpStream) {
    let body = "This port speaks HTTPS: use https:// in the address.\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(response.as_bytes())).await;
    let _ = stream.shutdown().await;
}

async fn serve_connection<S>(stream: S, peer: SocketAddr, router: Router, header_read: Duration, mut stopping: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Handlers learn the client's address as axum's ConnectInfo.
    let service = router.map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.map(axum::body::Body::new)
    });
    // HTTP/1.1 alone: its header timer runs from the first byte awaited, so a client that
    // connects and says nothing is cut off too (an HTTP/2 sniff would wait for it unbounded).
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => Some(ended),
        _ = stopping.wait_for(|stopping| *stopping) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            // The request in progress is answered; the connection is not kept alive after it.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
