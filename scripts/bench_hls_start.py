"""LL-HLS from a cold start, for `scripts/bench --hls-start RUNS`: Chromium opens the test
pattern over LL-HLS on a Lookout whose muxer has not started yet (cold: the muxer's first
player), then once more while that muxer runs (warm), with a keyframe every 1 s and every 4 s.
The test pattern ignores keyframe requests, as most cheap cameras do. Each cold run is a new
Lookout, opened at another point of the keyframe interval.

Reported per keyframe interval and start: the first picture (from the page's watch request),
the longest any picture stayed after it (a stall shows here), and glass-to-glass latency from
the barcode (over the whole run and over its last second), medians over RUNS.
"""

import statistics
import time

KEYFRAME_INTERVALS_SECS = (1.0, 4.0)
SECONDS_PLAYED = 8


def _config(out, keyframe_secs):
    path = out / f"bench-hls-start-{keyframe_secs:g}s.toml"
    path.write_text('[paths.demo]\nsource = "testpattern"\non_demand = false\n'
                    f'test_pattern = {{ width = 1280, height = 720, fps = 30, keyframe_interval_secs = {keyframe_secs}, bitrate_kbps = 2500 }}\n')
    return path


def _summary(runs):
    def median(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values), 2) if values else None
    return {"first_picture_ms": median("firstFrameMs"), "first_picture_ms_runs": [r.get("firstFrameMs") for r in runs],
            "longest_hold_ms_runs": [(r.get("playback") or {}).get("longestHoldMs") for r in runs],
            "latency_p50_ms": median("latencyP50Ms"), "latency_last_second_p50_ms": median("latencyRecentP50Ms"),
            "failures": [f for r in runs for f in r.get("failures", [])]}


def measure_hls_start(lookout_class, chromium, out, runs):
    report = {}
    for keyframe_secs in KEYFRAME_INTERVALS_SECS:
        config = _config(out, keyframe_secs)
        cold, warm = [], []
        for run in range(runs):
            server = lookout_class("--config", str(config))
            try:
                server.wait_live("demo")
                # Another point of the keyframe interval each run.
                time.sleep((0.37 * run * keyframe_secs) % keyframe_secs)
                url = f"http://{server.addr}/?path=demo&transport=hls"
                cold.append(chromium(url, seconds=SECONDS_PLAYED))
                warm.append(chromium(url, seconds=SECONDS_PLAYED))
            finally:
                server.stop()
        report[f"keyframe_every_{keyframe_secs:g}s"] = {"cold": _summary(cold), "warm": _summary(warm)}
        for start, summary in (("cold", _summary(cold)), ("warm", _summary(warm))):
            print(f"LL-HLS, a keyframe every {keyframe_secs:g} s, {start}: first picture {summary['first_picture_ms']} ms "
                  f"(runs {summary['first_picture_ms_runs']}), longest hold after it {summary['longest_hold_ms_runs']} ms, "
                  f"glass-to-glass p50 {summary['latency_p50_ms']} ms, over the last second {summary['latency_last_second_p50_ms']} ms"
                  + (f"; failures: {summary['failures']}" if summary["failures"] else ""))
    return report
