//! A viewer's session as signalling sees it (its peer, its forwarders, its figures) and the
//! set of sessions the server holds.

pub mod experience;
pub mod sessions;
pub mod video_track;
pub(crate) mod viewer_peer;
pub mod viewer_session;
pub mod viewer_totals;
