//! The offer/answer exchange: Lookout's descriptions written, the viewer's read and checked,
//! and the connection set up from what they agreed.

pub mod peer;
pub mod sdp;
