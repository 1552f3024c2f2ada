//! Load generator for scripts/bench: N viewers (webrtc 0.21, no decoding) watch one path
//! through /ws for T seconds; prints one JSON line with what they received.
//!
//!   lookout-load --server 127.0.0.1:8080 --path demo --viewers 10 --seconds 10 [--bind 0.0.0.0]
//!                [--warmup 2] [--token TOKEN]
//!
//! With --token, each viewer authenticates with it (the `auth` message of the signalling).
//!
//! With --warmup, packets, losses, bytes and freezes (pauses over 150 ms between frames) are
//! counted over the --seconds that follow the warm-up (the joins and their replayed GOPs are
//! left out). `disconnected` counts the viewers no longer connected at the end.
//!
//! Media sockets bind loopback unless --bind says otherwise (0.0.0.0: every non-loopback
//! interface, as inside a network namespace).

use lookout_testkit::load::{percentile, LoadArgs};
use lookout_testkit::viewer::{Received, Viewer, ViewerOptions};
use std::time::Duration;
use webrtc::peer_connection::RTCPeerConnectionState;

/// A pause between two frames longer than this is a freeze (about what browsers count: a
/// few frame intervals at camera frame rates).
const FREEZE: Duration = Duration::from_millis(150);

/// The pauses longer than `FREEZE` between frames that arrived after `after`.
fn freezes_after(timeline: &[(Duration, u32)], after: Duration) -> Vec<Duration> {
    timeline.windows(2).filter(|pair| pair[0].0 >= after).map(|pair| pair[1].0.saturating_sub(pair[0].0)).filter(|gap| *gap > FREEZE).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = LoadArgs::parse("lookout-load.rs")?;
    // Joins are spread over a second so the measure is of steady state, not of a thundering herd.
    let stagger = Duration::from_millis(1000 / args.viewers.max(1) as u64);
    let mut joins = Vec::new();
    for _ in 0..args.viewers {
        let (server, path, bind) = (args.server, args.path.clone(), args.bind);
        let options = match &args.token {
            Some(token) => ViewerOptions::keeping(0).with_token(token),
            None => ViewerOptions::keeping(0),
        };
        joins.push(tokio::spawn(async move { Viewer::watch_ws_with(bind, server, &path, options).await }));
        tokio::time::sleep(stagger).await;
    }
    let mut viewers = Vec::new();
    let mut failed = 0;
    for join in joins {
        match join.await? {
            Ok(viewer) => viewers.push(viewer),
            Err(error) => {
                eprintln!("a viewer failed to join: {error:#}");
                failed += 1;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let at_warmup: Vec<Received> = viewers.iter().map(Viewer::received).collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let received: Vec<Received> = viewers.iter().map(Viewer::received).collect();
    let since_warmup = |count: fn(&Received) -> u64| -> u64 { received.iter().zip(&at_warmup).map(|(now, then)| count(now) - count(then)).sum() };
    let mut first_frame_ms: Vec<f64> = received.iter().filter_map(|r| r.first_keyframe_after).map(|d| d.as_secs_f64() * 1000.0).collect();
    first_frame_ms.sort_by(f64::total_cmp);
    let packets = since_warmup(|r| r.packets);
    let lost = since_warmup(|r| r.sequence_gaps);
    let bytes = since_warmup(|r| r.bytes);
    let without_video = received.iter().filter(|r| r.frames == 0).count();
    let disconnected = viewers.iter().filter(|viewer| viewer.connection_state() != RTCPeerConnectionState::Connected).count();
    let warmup_end = Duration::from_secs(args.warmup);
    let freezes: Vec<Duration> = received.iter().flat_map(|r| freezes_after(&r.video_timeline, warmup_end)).collect();
    let report = serde_json::json!({
        "viewers": args.viewers,
        "joined": viewers.len(),
        "failed_to_join": failed,
        "without_video": without_video,
        "disconnected": disconnected,
        "freezes": freezes.len(),
        "freeze_seconds": freezes.iter().sum::<Duration>().as_secs_f64(),
        "longest_freeze_seconds": freezes.iter().max().map(Duration::as_secs_f64),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "first_frame_ms_p50": percentile(&first_frame_ms, 0.5),
        "first_frame_ms_p95": percentile(&first_frame_ms, 0.95),
        "keyframe_requests_sent": received.iter().map(|r| r.keyframe_requests_sent).sum::<u64>(),
        "packets": packets,
        "packets_lost": lost,
        "loss_percent": if packets + lost > 0 { 100.0 * lost as f64 / (packets + lost) as f64 } else { 0.0 },
        "mbit_per_viewer": bytes as f64 * 8.0 / 1e6 / args.seconds as f64 / viewers.len().max(1) as f64,
    });
    println!("{report}");
    for viewer in viewers {
        let _ = viewer.close().await;
    }
    Ok(())
}
