//! Full ICE (RFC 8445), for when Lookout gathers candidates through its own STUN and TURN
//! servers: a server behind a NAT or a firewall that lets nothing in must send checks itself to
//! open the way, and its relayed candidate needs permissions that only its own checks create.
//! rtc's sans-I/O agent (the rtc-ice crate) runs the checks and the nomination; this feeds it
//! Lookout's candidates and the viewer's, and says where media goes once a pair is selected.

use crate::egress::webrtc::transport::ice::path::IcePath;
use bytes::BytesMut;
use rtc::crypto::RTCCryptoProvider;
use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::agent::{Agent, Event};
use rtc::ice::candidate::candidate_host::CandidateHostConfig;
use rtc::ice::candidate::candidate_relay::CandidateRelayConfig;
use rtc::ice::candidate::candidate_server_reflexive::CandidateServerReflexiveConfig;
use rtc::ice::candidate::{unmarshal_candidate, Candidate, CandidateConfig, CandidateType};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A viewer gathers a few candidates; more than this in its descriptions are ignored.
const MAX_REMOTE_CANDIDATES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum FullIceError {
    #[error("cannot start the ICE agent: {0}")]
    Agent(rtc::shared::error::Error),
    #[error("Lookout's candidate {candidate}: {source}")]
    LocalCandidate { candidate: String, source: rtc::shared::error::Error },
    #[error("the viewer's description has no ICE password (a=ice-pwd)")]
    NoRemotePassword,
}

/// One of Lookout's candidates: a host address, or one gathered through a server (`base`: the
/// socket it was gathered from).
#[derive(Debug, Clone, PartialEq)]
pub enum LocalCandidate {
    Host(SocketAddr),
    Reflexive { address: SocketAddr, base: SocketAddr },
    Relayed { address: SocketAddr, base: SocketAddr },
}

pub struct FullIce {
    agent: Agent,
    /// Lookout's relayed addresses: what leaves from one goes through its TURN server.
    relays: Vec<SocketAddr>,
    selected: Option<IcePath>,
    /// Set by `poll_selected` when a pair is selected (or another one later).
    selection_changed: bool,
    last_heard: Option<Instant>,
    remote_candidates: usize,
}

impl FullIce {
    /// `controlling`: Lookout offered (the /ws flow); the viewer controls when it offered (WHEP).
    pub fn new(
        (local_ufrag, local_password): (&str, &str),
        (remote_ufrag, remote_password): (&str, &str),
        candidates: &[LocalCandidate],
        controlling: bool,
        crypto: Arc<dyn RTCCryptoProvider>,
        now: Instant,
    ) -> Result<Self, FullIceError> {
        if remote_password.is_empty() {
            return Err(FullIceError::NoRemotePassword);
        }
        let config = AgentConfig {
            local_ufrag: local_ufrag.to_owned(),
            local_pwd: local_password.to_owned(),
            multicast_dns_mode: MulticastDnsMode::Disabled,
            candidate_types: vec![CandidateType::Host, CandidateType::ServerReflexive, CandidateType::Relay],
            network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
            is_controlling: controlling,
            // Lookout judges liveness itself (consent, RTCP): the agent never gives up.
            disconnected_timeout: Some(Duration::ZERO),
            failed_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        let mut agent = Agent::new(now, Arc::new(config), crypto).map_err(FullIceError::Agent)?;
        let mut relays = Vec::new();
        for candidate in candidates {
            if let LocalCandidate::Relayed { address, .. } = candidate {
                relays.push(*address);
            }
            let made = ice_candidate(candidate).map_err(|source| FullIceError::LocalCandidate { candidate: format!("{candidate:?}"), source })?;
            agent.add_local_candidate(made).map_err(|source| FullIceError::LocalCandidate { candidate: format!("{candidate:?}"), source })?;
        }
        agent.start_connectivity_checks(now, controlling, remote_ufrag.to_owned(), remote_password.to_owned()).map_err(FullIceError::Agent)?;
        Ok(Self { agent, relays, selected: None, selection_changed: false, last_heard: None, remote_candidates: 0 })
    }

    /// A candidate of the viewer's (from its description or trickled, with or without
    /// `a=candidate:`).
    pub fn add_remote_candidate(&mut self, line: &str) {
        if self.remote_candidates >= MAX_REMOTE_CANDIDATES {
            return;
        }
        let line = line.trim().trim_start_matches("a=").trim_start_matches("candidate:");
        match unmarshal_candidate(line) {
            // A browser's mDNS name cannot be resolved here: its checks reveal the address.
            Ok(candidate) if candidate.address().ends_with(".local") => {}
            Ok(candidate) => match self.agent.add_remote_candidate(candidate) {
                Ok(_) => {
                    tracing::debug!(line, "remote candidate added");
                    self.remote_candidates += 1;
                }
                Err(error) => tracing::debug!(%error, line, "remote candidate not used"),
            },
            Err(error) => tracing::debug!(%error, line, "remote candidate not understood"),
        }
    }

    /// A STUN message that arrived on `path` (from the viewer, directly or through a relay).
    /// Returns whether it was a valid part of the checks.
    pub fn on_stun(&mut self, datagram: &[u8], path: IcePath, local: SocketAddr, now: Instant) -> bool {
        let message = TransportMessage { now, transport: context(local, path.remote), message: BytesMut::from(datagram) };
        match self.agent.handle_read(message) {
            Ok(()) => {
                self.last_heard = Some(now);
                self.take_events();
                true
            }
            Err(error) => {
                tracing::debug!(%error, remote = %path.remote, "STUN message refused");
                false
            }
        }
    }

    /// Checks to send: on which path, and the message.
    pub fn poll_transmit(&mut self) -> Option<(IcePath, BytesMut)> {
        let transmit = self.agent.poll_write()?;
        let local = transmit.transport.local_addr;
        let via_relay = self.relays.contains(&local).then_some(local);
        Some((IcePath { remote: transmit.transport.peer_addr, via_relay }, transmit.message))
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.agent.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(error) = self.agent.handle_timeout(now) {
            tracing::debug!(%error, "ICE agent timer");
        }
        self.take_events();
    }

    /// The selected pair: where media goes.
    pub fn selected(&self) -> Option<IcePath> {
        self.selected
    }

    /// A pair was selected (or another one) since the last call.
    pub fn take_selection_change(&mut self) -> Option<IcePath> {
        std::mem::take(&mut self.selection_changed).then_some(self.selected).flatten()
    }

    /// When the viewer last answered or sent a check.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    fn take_events(&mut self) {
        while let Some(event) = self.agent.poll_event() {
            if let Event::SelectedCandidatePairChange(local, remote) = event.event {
                let local_base = local.base_addr();
                let via_relay = (local.candidate_type() == CandidateType::Relay).then_some(local.addr());
                tracing::debug!(local = %local_base, remote = %remote.addr(), relayed = via_relay.is_some(), "ICE pair selected");
                self.selected = Some(IcePath { remote: remote.addr(), via_relay });
                self.selection_changed = true;
            }
        }
    }
}

fn context(local: SocketAddr, peer: SocketAddr) -> TransportContext {
    TransportContext { local_addr: local, peer_addr: peer, transport_protocol: TransportProtocol::UDP, ecn: None }
}

fn base(address: SocketAddr) -> CandidateConfig {
    CandidateConfig { network: "udp".to_owned(), address: address.ip().to_string(), port: address.port(), component: 1, ..Default::default() }
}

fn ice_candidate(candidate: &LocalCandidate) -> Result<Candidate, rtc::shared::error::Error> {
    match *candidate {
        LocalCandidate::Host(address) => CandidateHostConfig { base_config: base(address), ..Default::default() }.new_candidate_host(),
        LocalCandidate::Reflexive { address, base: from } => {
            CandidateServerReflexiveConfig { base_config: base(address), rel_addr: from.ip().to_string(), rel_port: from.port(), url: None }.new_candidate_server_reflexive()
        }
        LocalCandidate::Relayed { address, base: from } => {
            CandidateRelayConfig { base_config: base(address), rel_addr: from.ip().to_string(), rel_port: from.port(), url: None }.new_candidate_relay()
        }
    }
}

/// Lookout's candidates as `a=` values (`candidate:…`), as the agent prioritises them.
pub fn candidate_lines(candidates: &[LocalCandidate]) -> Vec<String> {
    candidates.iter().filter_map(|candidate| ice_candidate(candidate).ok()).map(|candidate| format!("candidate:{}", candidate.marshal())).collect()
}
