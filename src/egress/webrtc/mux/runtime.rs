//! The runtime a PeerConnection on the shared media port is built with: Tokio for everything,
//! except that the sockets it binds are swapped for its share of the mux.

use super::SessionRoute;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::runtime::{AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime, TokioRuntime};

#[derive(Debug)]
pub struct MuxRuntime {
    route: Arc<SessionRoute>,
}

impl MuxRuntime {
    pub fn new(route: Arc<SessionRoute>) -> Self {
        Self { route }
    }
}

/// Everything but sockets is Tokio's.
static TOKIO: TokioRuntime = TokioRuntime;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for MuxRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        TOKIO.spawn(future)
    }

    fn spawn_reactor(&self, reactor_pool_size: usize, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        TOKIO.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let label = socket.local_addr()?;
        drop(socket);
        Ok(Arc::new(self.route.udp_socket(label)?))
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        let label = listener.local_addr()?;
        drop(listener);
        Ok(Arc::new(self.route.tcp_listener(label)?))
    }

    fn connect_tcp<'a>(&'a self, remote_addr: SocketAddr) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        TOKIO.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        TOKIO.resolve_host(host)
    }

    fn now(&self) -> Instant {
        TOKIO.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        TOKIO.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TOKIO.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TOKIO.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        TOKIO.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio, shared media port"
    }
}
