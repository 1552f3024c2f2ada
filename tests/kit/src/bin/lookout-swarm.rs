//! Load generator for scripts/bench at hundreds of viewers: N light viewers (`swarm`) watch
//! one path through WHEP for T seconds, all on one thread; prints one JSON line with what they
//! received, with the same names as lookout-load's where they mean the same.
//!
//!   lookout-swarm --server 127.0.0.1:8080 --path demo --viewers 500 --seconds 10 [--warmup 2]
//!                 [--bind 0.0.0.0]

use anyhow::bail;
use lookout_testkit::load::{percentile, LoadArgs};
use lookout_testkit::swarm::{LightViewer, SwarmCounts, SwarmIdentity};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = LoadArgs::parse("lookout-swarm.rs")?;
    if args.token.is_some() {
        bail!("lookout-swarm's viewers do not authenticate: serve the path to anyone, or use lookout-load");
    }
    let identity = SwarmIdentity::generate()?;
    // Joins are spread over a second so that the measure is of steady state.
    let stagger = Duration::from_millis(1000 / args.viewers.max(1) as u64);
    let started = Instant::now();
    let warmup_end = started + Duration::from_secs(1) + Duration::from_secs(args.warmup);
    let end = warmup_end + Duration::from_secs(args.seconds);
    // Each viewer runs as soon as it has joined, while the others join.
    let (results, failed) = tokio::task::LocalSet::new()
        .run_until(async {
            let mut runs = Vec::new();
            let mut failed = 0;
            for _ in 0..args.viewers {
                match LightViewer::join(&identity, args.server, &args.path, args.bind).await {
                    Ok(viewer) => runs.push(tokio::task::spawn_local(watch(viewer, warmup_end, end))),
                    Err(error) => {
                        eprintln!("a viewer failed to join: {error:#}");
                        failed += 1;
                    }
                }
                tokio::time::sleep(stagger).await;
            }
            (futures::future::join_all(runs).await, failed)
        })
        .await;
    let results: Vec<(SwarmCounts, SwarmCounts, anyhow::Result<()>)> = results.into_iter().collect::<Result<_, _>>()?;
    let since_warmup = |count: fn(&SwarmCounts) -> u64| -> u64 { results.iter().map(|(then, now, _)| count(now) - count(then)).sum() };
    let (packets, lost, bytes) = (since_warmup(|c| c.packets), since_warmup(|c| c.lost), since_warmup(|c| c.bytes));
    let mut first_frame_ms: Vec<f64> = results.iter().filter_map(|(_, now, _)| now.first_frame).map(|d| d.as_secs_f64() * 1000.0).collect();
    first_frame_ms.sort_by(f64::total_cmp);
    let errors: Vec<String> = results.iter().filter_map(|(_, _, run)| run.as_ref().err().map(|e| format!("{e:#}"))).collect();
    for error in errors.iter().take(5) {
        eprintln!("a viewer stopped: {error}");
    }
    let joined = results.len();
    let undecryptable: Vec<u64> = results.iter().map(|(_, now, _)| now.undecryptable).filter(|&count| count > 0).collect();
    if !undecryptable.is_empty() {
        eprintln!("{} viewers had packets that did not decrypt: {undecryptable:?}", undecryptable.len());
    }
    let report = serde_json::json!({
        "viewers": args.viewers,
        "joined": joined,
        "failed_to_join": failed,
        "connected": results.iter().filter(|(_, now, _)| now.connected).count(),
        "stopped_with_an_error": errors.len(),
        "without_video": results.iter().filter(|(_, now, _)| now.video_frames == 0).count(),
        "before_keys": results.iter().map(|(_, now, _)| now.before_keys).sum::<u64>(),
        "undecryptable": results.iter().map(|(_, now, _)| now.undecryptable).sum::<u64>(),
        "dtls_errors": results.iter().map(|(_, now, _)| now.dtls_errors).sum::<u64>(),
        "longest_gap_between_frames_seconds": results.iter().map(|(_, now, _)| now.longest_gap).max().map(|d| d.as_secs_f64()),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "first_frame_ms_p50": percentile(&first_frame_ms, 0.5),
        "first_frame_ms_p95": percentile(&first_frame_ms, 0.95),
        "packets": packets,
        "packets_lost": lost,
        "loss_percent": if packets + lost > 0 { 100.0 * lost as f64 / (packets + lost) as f64 } else { 0.0 },
        "mbit_per_viewer": bytes as f64 * 8.0 / 1e6 / args.seconds as f64 / joined.max(1) as f64,
    });
    println!("{report}");
    Ok(())
}

/// Runs a viewer to the end; what it had counted at the end of the warm-up and at the end.
async fn watch(mut viewer: LightViewer, warmup_end: Instant, end: Instant) -> (SwarmCounts, SwarmCounts, anyhow::Result<()>) {
    let run = viewer.run_until(warmup_end).await;
    let at_warmup = viewer.counts();
    let run = match run {
        Ok(()) => viewer.run_until(end).await,
        Err(error) => Err(error),
    };
    let counts = viewer.counts();
    let left = viewer.leave().await;
    (at_warmup, counts, run.and(left))
}
