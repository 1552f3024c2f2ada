//! Builds the peer of one viewer on Lookout's endpoint: its place on a media port,
//! the candidates it offers (gathered through Lookout's ICE servers when it has its own), what
//! its RTCP feeds, and its descriptions' parameters.

use crate::egress::webrtc::transport::connection::{Connection, LocalAddresses, LocalCredentials};
use crate::egress::webrtc::transport::connection_core::ConnectionFeedback;
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use crate::egress::webrtc::transport::ice::full::{candidate_lines, LocalCandidate};
use crate::egress::webrtc::transport::ice::gatherer::Gatherer;
use crate::egress::webrtc::negotiation::peer::Peer;
use crate::egress::webrtc::negotiation::sdp::{LocalAudio, LocalParameters, LocalVideo};
use crate::egress::webrtc::transport::ice::gather_servers;
use crate::egress::webrtc::rtcp::keyframe_requests::{KeyframeRequestWatcher, KeyframeRequests};
use crate::egress::webrtc::rtcp::link_quality::{LinkQuality, PublishedGcc, ReceiverReportWatcher};
use crate::egress::webrtc::transport::network::{Network, PortsExhausted, SocketHold};
use crate::egress::webrtc::rtcp::retransmitter::{NackStats, Retransmitter};
use crate::egress::webrtc::rtcp::observer::RtcpObserver;
use crate::egress::webrtc::rtcp::sender_reports::{AudioClock, ClockReference, SenderReporter};
use crate::egress::webrtc::rtp::playout_delay::PlayoutDelay;
use crate::egress::webrtc::rtp::sent_frames::SentFrames;
use crate::egress::webrtc::rtcp::viewer_activity::{ActivityWatcher, ViewerActivity};
use crate::media::AudioCodec;
use lookout_signaling::IceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct ViewerPeer {
    pub peer: Arc<Peer>,
    pub state: watch::Receiver<ConnectionState>,
    /// One per video track, in the order of the description's video m-sections.
    pub video_tracks: Vec<VideoTrackFeedback>,
    pub nack_stats: Arc<NackStats>,
    pub link: Arc<LinkQuality>,
    /// Filled by the audio forwarder, read by the sender reports.
    pub audio_clock: Arc<AudioClock>,
    /// When the viewer last sent RTCP: whether it is still there.
    pub activity: Arc<ViewerActivity>,
    /// Its port of the range, or its place on the shared port.
    pub hold: SocketHold,
}

/// What one video track's RTCP feeds, and what its forwarder fills for it.
pub struct VideoTrackFeedback {
    pub ssrc: u32,
    pub keyframe_requests: Arc<KeyframeRequests>,
    /// Filled by the forwarder, read to answer NACKs and for the sender reports.
    pub sent_frames: Arc<SentFrames>,
}

impl VideoTrackFeedback {
    fn new(ssrc: u32) -> Self {
        Self { ssrc, keyframe_requests: Arc::default(), sent_frames: Arc::default() }
    }

    /// What answers this track's NACKs and notices its keyframe requests.
    fn observers(&self, nack_stats: &Arc<NackStats>) -> impl RtcpObserver {
        (Retransmitter::new(self.ssrc, self.sent_frames.clone(), nack_stats.clone()), KeyframeRequestWatcher::new(self.ssrc, self.keyframe_requests.clone()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("server full: every UDP port of {0} is in use")]
    PortsExhausted(crate::config::PortRange),
    #[error("the media port: {0}")]
    MediaPort(std::io::Error),
    #[error("gathering through the ICE servers: {0}")]
    Gathering(#[from] crate::egress::webrtc::transport::ice::gatherer::GatherError),
}

/// ICE credentials for a new viewer: the media port routes its first checks by the username
/// fragment. ICE asks for 24 bits of randomness in the
/// ufrag and 128 in the password (RFC 8445 §5.3); these carry about 95 and 190.
fn ice_credentials() -> (String, String) {
    use rand::distr::{Alphanumeric, SampleString};
    let mut rng = rand::rng();
    (Alphanumeric.sample_string(&mut rng, 16), Alphanumeric.sample_string(&mut rng, 32))
}

/// The media a viewer's peer sends: video tracks (one for a path, one per tile for a wall),
/// and the path's audio codec, the only one offered, when there is sound.
#[derive(Debug, Clone, Copy)]
pub struct SentMedia {
    pub video_tracks: usize,
    pub audio: Option<AudioCodec>,
}

/// The id of video track `index` in the descriptions.
fn video_track_id(session_id: &str, index: usize) -> String {
    match index {
        0 => format!("video-{session_id}"),
        _ => format!("video-{session_id}-{index}"),
    }
}

/// How long a new viewer waits for Lookout's own ICE servers to answer before its description
/// is written with what they gave by then.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// A viewer's peer, on its place on the shared port or its port of the range. With
/// `own_ice_servers`, Lookout first gathers candidates through them (full ICE). `names`: the
/// session's id and the name its media stream goes by (its path's, or `wall`).
pub async fn build(network: &Network, own_ice_servers: Vec<IceServer>, media: SentMedia, (session_id, stream_name): (&str, &str)) -> Result<ViewerPeer, BuildError> {
    let (ufrag, password) = ice_credentials();
    let hold = network.bind(&ufrag).map_err(|PortsExhausted(range)| BuildError::PortsExhausted(range))?;
    let identity = network.identity.clone();
    let registration = hold.registration();
    let socket = registration.socket().map_err(BuildError::MediaPort)?;
    let host = network.host_candidates(registration.port());
    let gatherer = match own_ice_servers.is_empty() {
        true => None,
        false => {
            let servers = gather_servers::resolve(&own_ice_servers, socket.label()).await;
            servers.iter().for_each(|server| registration.route_from(server.address));
            let from = host.first().copied().unwrap_or(socket.label());
            Some(Gatherer::start(servers, from, identity.crypto.clone(), Instant::now())?)
        }
    };
    let videos: Vec<LocalVideo> = (0..media.video_tracks)
        .map(|index| LocalVideo { ssrc: rand::random(), rtx_ssrc: rand::random(), track_id: video_track_id(session_id, index) })
        .collect();
    let audio = media.audio.map(|codec| LocalAudio { codec, ssrc: rand::random(), track_id: format!("audio-{session_id}") });
    let video_tracks: Vec<VideoTrackFeedback> = videos.iter().map(|video| VideoTrackFeedback::new(video.ssrc)).collect();
    let (nack_stats, link, audio_clock) = (Arc::new(NackStats::default()), Arc::new(LinkQuality::default()), Arc::new(AudioClock::default()));
    let activity = ViewerActivity::new(Instant::now());
    let mut clocks: Vec<(u32, Arc<dyn ClockReference>)> = video_tracks.iter().map(|track| (track.ssrc, track.sent_frames.clone() as Arc<dyn ClockReference>)).collect();
    clocks.extend(audio.as_ref().map(|audio| (audio.ssrc, audio_clock.clone() as Arc<dyn ClockReference>)));
    let per_track: Vec<_> = video_tracks.iter().map(|track| track.observers(&nack_stats)).collect();
    let feedback = ConnectionFeedback {
        observers: Box::new((per_track, (ReceiverReportWatcher::new(link.clone()), ActivityWatcher(activity.clone())))),
        reporter: SenderReporter::new(clocks),
        estimator: PublishedGcc::new(link.clone()),
    };
    let credentials = LocalCredentials { ufrag: ufrag.clone(), password: password.clone() };
    let gathers = gatherer.is_some();
    let addresses = LocalAddresses { host: host.clone(), gatherer };
    let connection = Connection::new(identity.clone(), credentials, addresses, socket, feedback);
    let gathered = match gathers {
        true => connection.gathered(GATHER_TIMEOUT).await,
        false => Vec::new(),
    };
    let base = host.first().copied().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], registration.port())));
    let gathered_candidates: Vec<LocalCandidate> = gathered.iter().map(|gathered| gathered.candidate(base)).collect();
    let local = LocalParameters {
        ufrag,
        password,
        fingerprint: identity.fingerprint.clone(),
        candidates: host,
        passive_tcp: network.config.ice_tcp,
        gathered: candidate_lines(&gathered_candidates),
        cname: format!("lookout-{session_id}"),
        stream_id: format!("lookout-{stream_name}"),
        videos,
        audio,
    };
    let state = connection.state();
    // Every candidate is in the descriptions: Lookout never trickles.
    let playout_delay = network.config.max_playout_delay.map(|max| PlayoutDelay { min: Duration::ZERO, max });
    let peer = Arc::new(Peer::new(connection, local, playout_delay));
    Ok(ViewerPeer { peer, state, video_tracks, nack_stats, link, audio_clock, activity, hold })
}
