//! RTCP with a viewer: what its reports tell Lookout (keyframe requests, NACKs answered with
//! retransmissions, receiver reports, transport-wide feedback, that it is still there) and the
//! sender reports Lookout sends it.

pub(crate) mod burst_delivery;
pub(crate) mod keyframe_requests;
pub(crate) mod link_quality;
pub(crate) mod observer;
pub(crate) mod retransmitter;
pub(crate) mod sender_reports;
pub(crate) mod twcc;
pub(crate) mod viewer_activity;
