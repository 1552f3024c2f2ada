//! Lookout: a camera streaming gateway. RTSP cameras in, many WebRTC viewers out.
//!
//! The binary and the tests share this library; `Server::start` runs a whole gateway.

pub mod auth;
pub mod config;
pub mod egress;
pub mod histogram;
pub mod http;
pub mod limits;
pub mod media;
pub mod paths;
pub mod source;
pub mod stream;

use config::Config;
use egress::webrtc::{Network, Sessions};
use paths::{PathManager, PathStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stream::Registry;

/// A running gateway: its sources, its viewers and its HTTP server. Dropping it stops it.
pub struct Server {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub sessions: Sessions,
    /// Viewers counted in all and per path, as the limits see them.
    pub viewers: limits::ViewerCounts,
    /// The paths, which the API and `reload` change while the server runs.
    pub paths: Arc<PathManager>,
    http: tokio::task::JoinHandle<()>,
    /// The certificate when serving HTTPS, which SIGHUP reads again (see `tls_certificate`).
    tls: Option<Arc<http::TlsCertificate>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    sockets: tokio_util::task::TaskTracker,
}

impl Server {
    /// Binds the HTTP address and starts every path's source. Must run in a Tokio runtime.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let tls = match &config.tls {
            Some(files) => Some(Arc::new(http::TlsCertificate::load(&files.cert, &files.key)?)),
            None => None,
        };
        let access = Arc::new(auth::AccessControl::new(config.auth.as_ref()).map_err(|e| anyhow::anyhow!("access control: {e}"))?);
        access.prepare().await;
        warn_if_open(&config, addr);
        let network = Arc::new(Network::start(config.webrtc.clone())?);
        tracing::info!("{}", network.summary());
        let registry = Registry::default();
        let store = PathStore::new(&config.state_dir);
        let sessions = Sessions::default();
        let paths = Arc::new(PathManager::start(config.paths.clone(), store, registry.clone(), sessions.clone()).map_err(|e| anyhow::anyhow!("state_dir: {e}"))?);
        let (shutdown, shutdown_signal) = tokio::sync::watch::channel(false);
        let sockets = tokio_util::task::TaskTracker::new();
        let limits = Arc::new(limits::Limits::new(config.limits.clone()));
        let viewers = limits.viewers.clone();
        let facts = http::ServerFacts {
            started: std::time::Instant::now(),
            started_at: std::time::SystemTime::now(),
            http: format!("{}://{addr}", if tls.is_some() { "https" } else { "http" }),
            media: network.describe_ports(),
        };
        let app = http::AppState {
            registry: registry.clone(),
            paths: paths.clone(),
            facts: Arc::new(facts),
            sessions: sessions.clone(),
            network,
            hls: Default::default(),
            snapshots: Default::default(),
            access,
            limits,
            allowed_origins: Arc::new(config.auth.as_ref().map(|a| a.allowed_origins.clone()).unwrap_or_default()),
            whep_resources: Default::default(),
            shutdown: shutdown_signal,
            sockets: sockets.clone(),
        };
        let router = http::router(app);
        let listener = http::Listener { tcp: listener, tls: tls.clone(), header_read: config.limits.header_read };
        let http = tokio::spawn(listener.serve(router, shutdown.subscribe(), STOP_GRACE));
        Ok(Self { addr, registry, sessions, viewers, paths, http, tls, shutdown, sockets })
    }

    /// The certificate served when TLS is on, to read again (as SIGHUP does): new connections
    /// get the new certificate, open ones and every viewer carry on.
    pub fn tls_certificate(&self) -> Option<Arc<http::TlsCertificate>> {
        self.tls.clone()
    }

    /// The URL of the page, with a loopback host when listening on every interface.
    pub fn page_url(&self) -> String {
        let host = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
            SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
            other => other.to_string(),
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}/")
    }

    /// Runs until the HTTP server stops.
    pub async fn wait(&mut self) {
        let _ = (&mut self.http).await;
    }

    /// Stops gracefully (SIGTERM): takes no new connection or viewer, closes every signalling
    /// socket with 1001 "server stopping" (a page then reconnects, to another server if there is
    /// one), ends every viewer session, lets requests in progress finish, and returns within
    /// `STOP_GRACE` and a little.
    pub async fn stop(mut self) {
        tracing::info!(sessions = self.sessions.list().len(), "stopping: telling viewers, finishing requests");
        self.end_viewers();
        // Upgraded to WebSockets, signalling connections are no longer the HTTP server's: they
        // are waited for apart, so that each says goodbye before the process ends.
        self.sockets.close();
        let finished = async { tokio::join!(&mut self.http, self.sockets.wait()) };
        let _ = tokio::time::timeout(STOP_GRACE + Duration::from_millis(500), finished).await;
        self.paths.stop_all();
    }

    /// Marks the server stopping (WebSockets close, `/readyz` says 503), and ends every viewer
    /// session.
    fn end_viewers(&self) {
        self.shutdown.send_replace(true);
        let sessions = self.sessions.list();
        for session in &sessions {
            self.sessions.remove(&session.id);
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for session in sessions {
                    session.close();
                }
            });
        }
    }
}

/// How long a stopping server lets requests in progress finish.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One clear warning when anyone who reaches the port can watch: listening beyond loopback
/// with no `[auth]`.
fn warn_if_open(config: &Config, addr: SocketAddr) {
    if config.auth.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            listen = %addr,
            "no [auth] section: anyone who reaches {addr} can watch every camera (the rest of the API answers only loopback); \
             see docs/ACCESS.md"
        );
    }
}

impl Drop for Server {
    /// Stops accepting, ends every signalling socket and viewer session, stops the sources.
    fn drop(&mut self) {
        self.http.abort();
        self.paths.stop_all();
        self.end_viewers();
    }
}
