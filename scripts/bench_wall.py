"""A wall of cameras, for `scripts/bench --wall RUNS`: 16 paths (test patterns of 16 sizes, 15 fps)
in Chromium, through Lookout's wall at `/` (one RTCPeerConnection for the 16 tiles) and through
16 `<lookout-player>` elements (a connection each), alternating, RUNS times each
(tests/browser/tiles.mjs). Measured: the time from navigation until every tile shows a picture;
while the 16 play for 10 s, Lookout's CPU (less the test patterns' own threads) and RSS, and
Chromium's CPU (every process under the script); on the wall, the time from a `tile` message to
the new path's picture, for 8 switches a run.
"""

import json
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TILES = ROOT / "tests/browser/tiles.mjs"
PLAY_SECONDS = 10
# 16 sizes, so that a tile's picture size says which path it shows.
SIZES = [(160 + 16 * i, 90 + 8 * i) for i in range(16)]


def _config(out):
    path = out / "bench-wall.toml"
    paths = "".join(f'[paths.cam{i:02}]\nsource = "testpattern"\non_demand = false\n'
                    f'test_pattern = {{ width = {w}, height = {h}, fps = 15, keyframe_interval_secs = 1.0, bitrate_kbps = 300, audio = false }}\n'
                    for i, (w, h) in enumerate(SIZES))
    path.write_text(paths + '[webrtc]\nlisten_ips = ["127.0.0.1"]\nudp_port = 0\n[limits]\nsessions_per_ip_burst = 1000\n')
    return path


def _tree(pid):
    """`pid` and every process under it."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _tree_cpu_ms(pid, stat_cpu_ms):
    total = 0.0
    for process in _tree(pid):
        try:
            total += stat_cpu_ms(f"/proc/{process}/stat")
        except OSError:
            continue  # a process that ended meanwhile
    return total


def _one(server, mode, cpu_ms, rss_kib, stat_cpu_ms):
    tiles = ",".join(f"cam{i:02}" for i in range(len(SIZES)))
    command = ["node", str(TILES), "--server", f"http://{server.addr}/", "--mode", mode, "--tiles", tiles,
               "--seconds", str(PLAY_SECONDS)] + (["--switch"] if mode == "wall" else [])
    browser = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    playing = browser.stdout.readline()
    measured = {}
    if '"playing"' in playing:
        # Both counted over the same seconds of 16 tiles playing.
        time.sleep(1)
        lookout0, chromium0, t0 = cpu_ms(server.process.pid), _tree_cpu_ms(browser.pid, stat_cpu_ms), time.time()
        time.sleep(PLAY_SECONDS - 2)
        elapsed = time.time() - t0
        measured = {"lookout_cpu_ms_per_s": round((cpu_ms(server.process.pid) - lookout0) / elapsed, 1),
                    "chromium_cpu_ms_per_s": round((_tree_cpu_ms(browser.pid, stat_cpu_ms) - chromium0) / elapsed, 1),
                    "lookout_rss_mib": round(rss_kib(server.process.pid) / 1024, 1)}
    out, _ = browser.communicate(timeout=120)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"failures": [playing + out]}
    return {**result, **measured}


def _median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def measure_wall(lookout_class, cpu_ms, rss_kib, stat_cpu_ms, out, runs):
    server = lookout_class("--config", str(_config(out)))
    report = {}
    try:
        for i in range(len(SIZES)):
            server.wait_live(f"cam{i:02}")
        results = {"wall": [], "players": []}
        for _ in range(runs):
            for mode in results:
                results[mode].append(_one(server, mode, cpu_ms, rss_kib, stat_cpu_ms))
                time.sleep(2)  # the sessions of the run before end
        for mode, runs_of_mode in results.items():
            switches = [ms for r in runs_of_mode for ms in r.get("switchMs", []) if ms is not None]
            report[mode] = {
                "every_tile_picture_ms": _median(runs_of_mode, "everyTilePictureMs"),
                "lookout_cpu_ms_per_s": _median(runs_of_mode, "lookout_cpu_ms_per_s"),
                "lookout_rss_mib": _median(runs_of_mode, "lookout_rss_mib"),
                "chromium_cpu_ms_per_s": _median(runs_of_mode, "chromium_cpu_ms_per_s"),
                "switch_ms_p50": round(statistics.median(switches)) if switches else None,
                "switch_ms_max": max(switches) if switches else None,
                "failures": [f for r in runs_of_mode for f in r.get("failures", [])],
                "runs": runs_of_mode,
            }
            summary = report[mode]
            print(f"16 tiles, {'one connection (the wall)' if mode == 'wall' else '16 connections (<lookout-player>)'}: "
                  f"every tile's picture after {summary['every_tile_picture_ms']} ms; Lookout {summary['lookout_cpu_ms_per_s']} CPU-ms/s, "
                  f"{summary['lookout_rss_mib']} MiB; Chromium {summary['chromium_cpu_ms_per_s']} CPU-ms/s"
                  + (f"; a switch to the new picture {summary['switch_ms_p50']} ms p50, {summary['switch_ms_max']} ms at most" if switches else "")
                  + (f"; failures: {summary['failures']}" if summary["failures"] else ""))
    finally:
        server.stop()
    return report
