//! The rungs a viewer's video can be on: each of the path's layers, best first, and below the
//! lowest, that layer's keyframes alone.
//!
//! The last rung is what a link too poor even for the lowest layer still carries: a picture a
//! second or so (whatever the camera's keyframe interval), each one whole, rather than a stream
//! that loses packets in every frame and shows nothing. A path with one layer gets this rung
//! too. The layer chooser treats it as one more layer; the forwarder drops the frames between
//! keyframes. Sequence numbers stay continuous, the timestamps jump with the frames left out.

use crate::stream::{layer_name, Stream};
use std::sync::Arc;

/// What the keyframes-only rung is called in the API and on the page.
pub const KEYFRAMES_ONLY: &str = "keyframes";

/// One rung: the layer whose frames it sends, and whether only its keyframes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub layer: usize,
    pub keyframes_only: bool,
}

/// The rung at `index` of a path with `layer_count` layers.
pub fn rung(index: usize, layer_count: usize) -> Rung {
    if index < layer_count {
        Rung { layer: index, keyframes_only: false }
    } else {
        Rung { layer: layer_count.saturating_sub(1), keyframes_only: true }
    }
}

/// The names of the rungs, best first: the layers', then `keyframes`.
pub fn rung_names(layer_count: usize) -> Vec<String> {
    (0..layer_count).map(layer_name).chain(std::iter::once(KEYFRAMES_ONLY.to_owned())).collect()
}

/// What each rung costs now, best first; `None` for a rung whose layer is not live, or
/// keyframes only before the lowest layer's rate of keyframes is known.
pub fn rung_bitrates(layers: &[Arc<Stream>]) -> Vec<Option<f64>> {
    let live = |layer: &Arc<Stream>| layer.state().is_live();
    let lowest = layers.last().filter(|layer| live(layer));
    layers
        .iter()
        .map(|layer| live(layer).then(|| layer.bitrate_bps()))
        .chain(std::iter::once(lowest.and_then(|layer| layer.keyframe_bitrate_bps())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_lowest_layer_come_its_keyframes() {
        assert_eq!(rung_names(2), vec!["main", "sub", "keyframes"]);
        assert_eq!(rung(1, 2), Rung { layer: 1, keyframes_only: false });
        assert_eq!(rung(2, 2), Rung { layer: 1, keyframes_only: true });
        assert_eq!(rung_names(1), vec!["main", "keyframes"]);
        assert_eq!(rung(1, 1), Rung { layer: 0, keyframes_only: true });
    }
}
