//! Drives the sources of a path on demand: opens them when the path's first reader comes and
//! closes them when `DemandSchedule` says, showing the path `idle` meanwhile.

use super::demand_schedule::{DemandSchedule, SourceAction};
use crate::config::{OnDemand, PathConfig};
use crate::source::{self, SourceHandle};
use crate::stream::{PathState, Stream};
use std::sync::Arc;
use std::time::Instant;

/// Runs until it is dropped; `layers` (whose state is `idle` then) and `configs` in the order
/// of `Stream::layers`.
pub async fn run(layers: Vec<Arc<Stream>>, configs: Vec<PathConfig>, settings: OnDemand) {
    let Some(main) = layers.first().cloned() else { return };
    let mut readers = main.watch_readers();
    let mut schedule = DemandSchedule::new(settings.close_after);
    let mut sources: Vec<SourceHandle> = Vec::new();
    loop {
        let count = *readers.borrow_and_update();
        if schedule.on_readers(count, Instant::now()) == Some(SourceAction::Open) {
            tracing::info!(path = main.name(), "a reader came: opening the camera");
            for layer in &layers {
                layer.set_state(PathState::Connecting);
            }
            sources = layers.iter().zip(&configs).map(|(layer, config)| source::spawn(config, layer.clone())).collect();
        }
        let close_at = schedule.poll_timeout();
        tokio::select! {
            changed = readers.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until(close_at) => {
                if schedule.handle_timeout(Instant::now()) == Some(SourceAction::Close) {
                    sources.clear();
                    for layer in &layers {
                        layer.set_state(PathState::Idle);
                    }
                    tracing::info!(path = main.name(), "nobody read the path for {:.1} s: camera closed", settings.close_after.as_secs_f64());
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
