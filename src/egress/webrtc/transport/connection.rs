//! A viewer's connection on Lookout's endpoint: a task drives its `ConnectionCore` with the
//! datagrams the media port routes to it (checks, DTLS, the viewer's RTCP, and its ICE servers'
//! answers and relayed data when Lookout gathers through them) and its timers, and sends what
//! the core has to send. Media does not pass through that task: a forwarder encrypts its RTP
//! in its own task and queues it on the shared socket's batched sends, one lock and no hop per
//! packet.

use crate::egress::webrtc::rtp::playout_delay::PlayoutDelayStamp;
use crate::egress::webrtc::transport::connection_core::{ConnectionCore, ConnectionEvent, ConnectionFeedback};
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use crate::egress::webrtc::transport::dtls_srtp::Identity;
use crate::egress::webrtc::transport::ice::full::{FullIce, LocalCandidate};
use crate::egress::webrtc::transport::ice::gatherer::{Gathered, Gatherer};
use crate::egress::webrtc::transport::mux::SessionSocket;
use crate::egress::webrtc::transport::viewer_transport::{RemoteTransport, TransportError, ViewerTransport};
use parking_lot::Mutex;
use rtc::interceptor::StreamInfo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

pub struct LocalCredentials {
    pub ufrag: String,
    pub password: String,
}

/// Where the viewer can reach this connection: the host addresses, and with a gatherer the
/// candidates it finds through Lookout's own ICE servers (full ICE then, instead of lite).
pub struct LocalAddresses {
    pub host: Vec<SocketAddr>,
    pub gatherer: Option<Gatherer>,
}

pub struct Connection {
    core: Mutex<ConnectionCore>,
    socket: SessionSocket,
    host: Vec<SocketAddr>,
    /// Whether gathering through the ICE servers is over (answered, failed or timed out).
    gathering_done: watch::Sender<bool>,
    state: watch::Sender<ConnectionState>,
    identity: Arc<Identity>,
    local: LocalCredentials,
    closing: Notify,
    /// Wakes the driver to compute its next deadline again.
    timers_changed: Notify,
    created: Instant,
}

#[derive(Debug, thiserror::Error)]
#[error("the viewer's connection is closed")]
pub struct Closed;

impl Connection {
    pub fn new(identity: Arc<Identity>, local: LocalCredentials, addresses: LocalAddresses, socket: SessionSocket, feedback: ConnectionFeedback) -> Arc<Self> {
        let LocalAddresses { host, gatherer } = addresses;
        let gathering_done = watch::channel(gatherer.as_ref().is_none_or(Gatherer::is_done)).0;
        let created = Instant::now();
        let connection = Arc::new(Self {
            core: Mutex::new(ConnectionCore::new(feedback, gatherer, created)),
            socket,
            host,
            gathering_done,
            state: watch::channel(ConnectionState::New).0,
            identity,
            local,
            closing: Notify::new(),
            timers_changed: Notify::new(),
            created,
        });
        tokio::spawn(Arc::clone(&connection).drive());
        connection
    }

    /// Waits until gathering through the ICE servers is over, or `timeout`; then says what
    /// was gathered, for the descriptions.
    pub async fn gathered(&self, timeout: Duration) -> Vec<Gathered> {
        let mut done = self.gathering_done.subscribe();
        let _ = tokio::time::timeout(timeout, done.wait_for(|done| *done)).await;
        let core = self.core.lock();
        let Some(gatherer) = core.gatherer() else { return Vec::new() };
        for (url, why) in gatherer.failures() {
            tracing::warn!(ufrag = %self.local.ufrag, url, "gathered nothing through an ICE server: {why}");
        }
        gatherer.gathered()
    }

    /// The viewer's description arrived: checks and DTLS from it can be answered. `controlling`:
    /// Lookout offered, so with full ICE it nominates.
    pub fn set_remote(&self, remote: &RemoteTransport, controlling: bool) -> Result<(), TransportError> {
        let mut transport = ViewerTransport::new(&self.identity, &self.local.ufrag, &self.local.password, remote, self.socket.label())?;
        let mut core = self.core.lock();
        if let Some(gatherer) = core.gatherer() {
            let base = self.host.first().copied().unwrap_or(self.socket.label());
            let mut candidates: Vec<LocalCandidate> = self.host.iter().map(|address| LocalCandidate::Host(*address)).collect();
            candidates.extend(gatherer.gathered().iter().map(|gathered| gathered.candidate(base)));
            let credentials = (self.local.ufrag.as_str(), self.local.password.as_str());
            let full = FullIce::new(credentials, (&remote.ufrag, &remote.password), &candidates, controlling, self.identity.crypto.clone(), Instant::now())?;
            transport = transport.with_full_ice(full);
            for candidate in &remote.candidates {
                transport.add_remote_candidate(candidate);
            }
        }
        core.set_transport(transport);
        drop(core);
        self.state.send_replace(ConnectionState::Connecting);
        // Full ICE's first checks go out now rather than at the agent's first timer.
        self.timers_changed.notify_one();
        Ok(())
    }

    /// A candidate the viewer trickled.
    pub fn add_remote_candidate(&self, line: &str) {
        self.core.lock().add_remote_candidate(line);
        self.timers_changed.notify_one();
    }

    /// Stamps transport-wide sequence numbers with header extension `extension_id` from now on.
    pub fn enable_twcc(&self, extension_id: u8) {
        self.core.lock().enable_twcc(extension_id);
    }

    /// Puts the playout-delay limits on the video's packets from now on.
    pub fn enable_playout_delay(&self, stamp: PlayoutDelayStamp) {
        self.core.lock().enable_playout_delay(stamp);
    }

    /// Tells a stream this connection sends to the observers (its SSRCs, for NACKs) and to
    /// the sender reports.
    pub fn bind_local_stream(&self, info: &StreamInfo) {
        self.core.lock().bind_local_stream(info);
    }

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }

    /// Encrypts RTP packets (a frame's, as the pacer releases them) straight into the shared
    /// socket's next batch, under one lock and with one wake of the sender. Dropped (Ok) before the
    /// connection is up.
    pub fn send_rtp(&self, packets: impl IntoIterator<Item = rtc::rtp::Packet>) -> Result<(), Closed> {
        if self.state.borrow().is_terminal() {
            return Err(Closed);
        }
        let mut core = self.core.lock();
        let now = Instant::now();
        self.socket.write_each(packets, |packet, buffer| core.write_rtp(packet, now, buffer));
        self.flush(&mut core);
        Ok(())
    }

    pub fn close(&self) {
        let mut core = self.core.lock();
        let refusals = core.refusals();
        let came_up = !matches!(*self.state.borrow(), ConnectionState::New | ConnectionState::Connecting);
        if let (false, Some((path, error))) = (came_up, &refusals.first) {
            tracing::info!(ufrag = %self.local.ufrag, "viewer connection closed before it came up; {} of its datagrams refused, the first from {path}: {error}", refusals.count);
        }
        core.close(Instant::now());
        self.flush(&mut core);
        drop(core);
        self.state.send_replace(ConnectionState::Closed);
        self.closing.notify_one();
    }

    /// Sends what the core has to send and tells what changed.
    fn flush(&self, core: &mut ConnectionCore) {
        self.socket.send_all(std::iter::from_fn(|| core.poll_transmit()));
        while let Some(event) = core.poll_event() {
            match event {
                ConnectionEvent::Connected => {
                    tracing::debug!(ufrag = %self.local.ufrag, "viewer connected (DTLS done) after {} ms", self.created.elapsed().as_millis());
                    self.state.send_replace(ConnectionState::Connected);
                }
                ConnectionEvent::Closed => {
                    self.state.send_replace(ConnectionState::Closed);
                    self.closing.notify_one();
                }
            }
        }
        if core.gatherer().is_some_and(Gatherer::is_done) {
            self.gathering_done.send_if_modified(|done| !std::mem::replace(done, true));
        }
    }

    async fn drive(self: Arc<Self>) {
        self.flush(&mut self.core.lock());
        loop {
            let deadline = self.core.lock().poll_timeout();
            tokio::select! {
                datagram = self.socket.recv() => match datagram {
                    Some(datagram) => {
                        let local = SocketAddr::new(datagram.local_ip, self.socket.label().port());
                        let mut core = self.core.lock();
                        core.handle_datagram(&datagram.data, datagram.from, local, Instant::now());
                        self.flush(&mut core);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let mut core = self.core.lock();
                    let outcome = core.handle_timeout(Instant::now());
                    self.flush(&mut core);
                    if let Err(failure) = outcome {
                        tracing::info!(ufrag = %self.local.ufrag, "viewer connection failed: {failure}");
                        self.state.send_replace(ConnectionState::Failed);
                        break;
                    }
                }
                // The timers changed (full ICE started): the deadline is computed again.
                _ = self.timers_changed.notified() => {}
                _ = self.closing.notified() => break,
            }
        }
    }
}
