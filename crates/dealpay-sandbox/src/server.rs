//! The accept loop: plain or TLS connections served by hyper, each with a kill switch so a fault can
//! close the socket without a response byte, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::conn::ConnHandle;
use super::state::Shared;
use super::{admin, handler};

/// How long in-flight requests may finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// All routes: the Tencent API at `/`, the admin API under `/_sandbox/` (behind `admin_token` if set).
pub fn router(shared: Arc<Shared>, admin_token: Option<String>) -> Router {
    let admin = match admin_token {
        Some(token) => admin::routes_with_token(token),
        None => admin::routes(),
    };
    Router::new()
        .route("/", any(handler::tencent_api))
        .nest("/_sandbox", admin)
        .fallback(admin::not_found)
        .with_state(shared)
}

/// Accepts connections until `shutdown` flips (or its sender is dropped), then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(serve_conn(tcp, tls.clone(), router.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "sandbox: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

async fn serve_conn(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    match tls {
        None => drive(TokioIo::new(tcp), router, shutdown).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => drive(TokioIo::new(stream), router, shutdown).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "sandbox: TLS handshake failed"),
                Err(_) => tracing::debug!("sandbox: TLS handshake timed out"),
            }
        }
    }
}

async fn drive<I>(io: I, router: Router, mut shutdown: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let handle = ConnHandle { kill: kill.clone() };
    let tower = TowerToHyperService::new(router);
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(handle.clone());
        tower.call(req)
    });
    // No header-read timer: it would also close idle keep-alive connections, racing clients that
    // reuse them, and a loopback test server has no slowloris to fear.
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            // Dropping `conn` closes the socket; nothing has been written for the pending request.
            _ = kill.notified() => break,
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
