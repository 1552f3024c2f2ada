//! What a viewer's connection tells its session, whichever stack serves it.

use lookout_signaling::IceCandidate;

#[derive(Debug)]
pub enum PeerEvent {
    Candidate(IceCandidate),
    GatheringComplete,
}
