//! What a viewer is sent of a stream and when: the video feed's decisions (GOP replay, layer
//! choice, pacing), the forwarders that drive it and the audio, and their figures.

pub(crate) mod audio_forwarder;
pub(crate) mod forwarder;
pub(crate) mod forwarder_stats;
pub(crate) mod layer_choice;
pub(crate) mod layer_ladder;
pub(crate) mod media_sink;
pub(crate) mod pacer;
pub mod send_delay;
pub(crate) mod track_start;
pub(crate) mod video_feed;
