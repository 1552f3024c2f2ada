"""Lookout's benchmark: run by scripts/bench, which builds the binaries first.

For each N, N non-decoding WebRTC viewers (target/release/lookout-load) watch the built-in
`demo` path (1280x720, 30 fps, about 2.5 Mbit/s) of a `lookout` process for T seconds: on the
shared media port (the default, `shared`) and with a port per viewer (`range`,
`webrtc.udp_ports`), so they can be compared. The
server's CPU time and RSS are read from /proc, less the test pattern's own threads (they stand
in for a camera); the idle cost is measured first and subtracted, so the figures are the cost
of the viewers. Each N is repeated
and the median reported, as this machine is noisy. Then headless Chromium plays `demo` and a
GStreamer camera (x264 tune=zerolatency) and reports time to first frame and glass-to-glass
latency read from the barcode in the picture (and, for `demo`, how far its beeps are heard
after the picture: lip sync), and joins `demo` with a keyframe every 4 s to measure the time to
a first picture mid-GOP.
"""

import argparse
import bench_auth
import bench_flood
import bench_hls_start
import bench_wall
import bench_janus
import bench_operate
import http.client
import json
import re
import threading
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOOKOUT = ROOT / "target/release/lookout"
LOAD = ROOT / "target/release/lookout-load"
# Light viewers (WHEP, ICE, DTLS-SRTP and counting; tests/kit/src/swarm.rs): hundreds on one thread.
SWARM = ROOT / "target/release/lookout-swarm"
CAMERA = ROOT / "tests/camera/rtsp_camera.py"
PROXY = ROOT / "tests/camera/fault_proxy.py"
PLAY = ROOT / "tests/browser/play.mjs"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stat_cpu_ms(stat_path):
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS  # utime + stime


# The test pattern's threads (the H.264 encoder, the tone) stand in for a camera: their time is
# not the gateway's, and the encoder's varies more from second to second than 100 viewers cost.
SOURCE_THREADS = ("testpattern-", "tone-")


def cpu_ms(pid):
    """The process's CPU time less its test-pattern threads' (which live as long as it does)."""
    source = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "comm").read_text().startswith(SOURCE_THREADS):
                source += stat_cpu_ms(task / "stat")
        except OSError:
            continue  # a thread that ended meanwhile
    return stat_cpu_ms(f"/proc/{pid}/stat") - source


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Lookout:
    """A lookout process on a free loopback port, stopped by its PID."""

    def __init__(self, *args):
        self.port = free_port()
        self.process = subprocess.Popen([str(LOOKOUT), "--listen", f"127.0.0.1:{self.port}", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.process.stdout.readline()
        self.addr = f"127.0.0.1:{self.port}"

    def wait_live(self, path, timeout=30, authorization=None):
        deadline = time.time() + timeout
        headers = {"Authorization": authorization} if authorization else {}
        while time.time() < deadline:
            try:
                request = urllib.request.Request(f"http://{self.addr}/api/paths", headers=headers)
                with urllib.request.urlopen(request, timeout=2) as response:
                    if any(p["name"] == path and p["state"] == "live" for p in json.load(response)):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"path {path} did not go live")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure_idle(server):
    """The server's CPU-ms per second and RSS KiB with `demo` live and nobody watching."""
    server.wait_live("demo")
    time.sleep(2)
    pid = server.process.pid
    cpu0, t0 = cpu_ms(pid), time.time()
    time.sleep(5)
    return (cpu_ms(pid) - cpu0) / (time.time() - t0), rss_kib(pid)


def measure_viewers(server, viewers, seconds, idle_cpu_ms_per_s, idle_rss_kib, load_generator=LOAD, warmup=0):
    """Loss and throughput are counted over `seconds` after `warmup`; CPU over both."""
    pid = server.process.pid
    cpu_before, started = cpu_ms(pid), time.time()
    load = subprocess.Popen([str(load_generator), "--server", server.addr, "--path", "demo", "--viewers", str(viewers),
                             "--seconds", str(seconds), "--warmup", str(warmup)], stdout=subprocess.PIPE, text=True)
    # RSS when every viewer has joined (joins are spread over the first second) and is playing.
    time.sleep(1.5 + warmup + seconds / 2)
    rss = rss_kib(pid)
    # The send delay of the last complete 5 s window, read while the viewers still watch.
    time.sleep(max(0.0, seconds / 2 - 1))
    delay, beyond_pacing = send_delays(server, "demo")
    output, _ = load.communicate(timeout=seconds + 120)
    elapsed, cpu_used = time.time() - started, cpu_ms(pid) - cpu_before
    result = json.loads(output.strip().splitlines()[-1])
    # How long packets waited inside Lookout: frame complete to packet handed to the viewer's
    # connection; in all, and beyond the pacer's intended wait.
    for name, figures in (("send_delay", delay), ("send_delay_beyond_pacing", beyond_pacing)):
        for q in ("p50", "p99"):
            result[f"{name}_{q}_ms"] = figures[f"{q}_us"] / 1000 if figures else None
    viewer_seconds = viewers * (seconds + warmup)
    result["cpu_ms_per_viewer_second"] = max(0.0, cpu_used - idle_cpu_ms_per_s * elapsed) / viewer_seconds
    result["rss_kib_per_viewer"] = max(0, rss - idle_rss_kib) / viewers
    result["server_rss_mib"] = rss / 1024
    return result


def send_delays(server, path):
    """How long packets waited in Lookout over the last 5 s window: in all, and beyond the
    pacer's intended wait."""
    with urllib.request.urlopen(f"http://{server.addr}/api/paths", timeout=5) as response:
        stats = next((p["stats"] for p in json.load(response) if p["name"] == path), {})
    return stats.get("send_delay") or {}, stats.get("send_delay_beyond_pacing") or {}


def hls_viewer(addr, path, stop, counts):
    """An LL-HLS player's requests: the preload-hinted part (which waits until it is ready),
    then the playlist reload blocked on that part, on one keep-alive connection."""
    host, port = addr.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def get(url):
        connection.request("GET", url)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
        return body

    base = f"/hls/{path}"
    try:
        playlist = get(f"{base}/stream.m3u8").decode()
        while not stop.is_set():
            hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s"', playlist)
            if not hint:
                raise RuntimeError("no preload hint in the playlist")
            sequence, index = hint.groups()
            counts["bytes"] += len(get(f"{base}/part{sequence}.{index}.m4s"))
            playlist = get(f"{base}/stream.m3u8?_HLS_msn={sequence}&_HLS_part={index}").decode()
            counts["parts"] += 1
    except (OSError, RuntimeError, http.client.HTTPException) as error:
        counts["errors"].append(str(error))
    finally:
        connection.close()


def measure_hls_viewers(server, viewers, seconds, idle_cpu_ms_per_s):
    """CPU of N LL-HLS viewers of `demo`, the muxer included (it runs while anyone watches)."""
    pid = server.process.pid
    stop = threading.Event()
    counts = [{"bytes": 0, "parts": 0, "errors": []} for _ in range(viewers)]
    threads = [threading.Thread(target=hls_viewer, args=(server.addr, "demo", stop, c)) for c in counts]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the muxer starts on the first request and needs a keyframe
    cpu_before, started = cpu_ms(pid), time.time()
    parts_before = sum(c["parts"] for c in counts)
    time.sleep(seconds)
    elapsed, cpu_used = time.time() - started, cpu_ms(pid) - cpu_before
    parts = sum(c["parts"] for c in counts) - parts_before
    stop.set()
    for thread in threads:
        thread.join(15)
    errors = [e for c in counts for e in c["errors"]]
    return {"viewers": viewers, "cpu_ms_per_s": max(0.0, cpu_used / elapsed - idle_cpu_ms_per_s),
            "parts_per_viewer_s": parts / viewers / elapsed, "errors": errors[:5]}


def chromium(url, *extra, seconds=8):
    out = subprocess.run(["node", str(PLAY), "--url", url, "--seconds", str(seconds), *extra],
                         capture_output=True, text=True, timeout=seconds + 120)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"failures": [out.stdout + out.stderr]}


MEDIA_PORTS = {
    "shared": "udp_port = 0",
    "range": 'udp_ports = "61300-61999"',
}


def config_file(out, media_ports):
    """The built-in default (the test pattern at `demo`), media on loopback, with these ports, and
    no bound on new sessions from one address."""
    path = out / f"bench-{media_ports}.toml"
    # The load generator joins every viewer from one address within a second.
    path.write_text(f'[paths.demo]\nsource = "testpattern"\non_demand = false\n[limits]\nsessions_per_ip_burst = 100000\n'
                    f'[webrtc]\nlisten_ips = ["127.0.0.1"]\n{MEDIA_PORTS[media_ports]}\n')
    return path


def median_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", default="1,10,50", help="comma-separated viewer counts")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser-runs", type=int, default=3)
    parser.add_argument("--media-ports", default="shared,range", help="comma-separated: " + ", ".join(MEDIA_PORTS))
    parser.add_argument("--hls-viewers", type=int, default=20, help="LL-HLS viewers for the per-viewer cost")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--faults", type=int, default=0, metavar="SECONDS",
                        help="instead of the rest: watch a camera that suffers a fault every ~5 s for this long")
    parser.add_argument("--fault-mode", default="drop-bytes", choices=("drop-bytes", "chaos"),
                        help="with --faults: lost bytes only (what cheap cameras do), or lost bytes, stalls and resets")
    parser.add_argument("--auth", type=int, default=0, metavar="REQUESTS",
                        help="instead of the rest: what access control costs, REQUESTS requests per method (see bench_auth.py)")
    parser.add_argument("--flood", type=int, default=0, metavar="OFFERS",
                        help="instead of the rest: a hostile client's floods against the default limits, OFFERS WHEP "
                             "offers and a twentieth as many silent WebSockets (see bench_flood.py)")
    parser.add_argument("--playout-delay", type=int, metavar="MS",
                        help="instead of the rest: Chromium on a GStreamer camera through two Lookouts, one telling it "
                             "max_playout_delay_ms = MS and one not, --browser-runs each, alternating")
    parser.add_argument("--scale", metavar="N,N,...",
                        help="instead of the rest: light viewers (lookout-swarm) at these counts on the shared port: "
                             "CPU and memory per viewer and loss, --repeats each")
    parser.add_argument("--vs", choices=("janus",),
                        help="instead of the rest: Chromium on the same GStreamer camera through Lookout and through "
                             "Janus, --browser-runs each, alternating (see bench_janus.py)")
    parser.add_argument("--operate", type=int, default=0, metavar="RUNS",
                        help="instead of the rest: a camera on demand's time to first frame, the CPU of idle paths "
                             "on demand, snapshot latency; RUNS each (see bench_operate.py)")
    parser.add_argument("--hls-start", type=int, default=0, metavar="RUNS",
                        help="instead of the rest: Chromium's first picture over LL-HLS from a muxer not yet started "
                             "and from one running, with a keyframe every 1 s and 4 s; RUNS each (see bench_hls_start.py)")
    parser.add_argument("--wall", type=int, default=0, metavar="RUNS",
                        help="instead of the rest: 16 tiles in Chromium on one connection (the wall) against 16 connections "
                             "(<lookout-player> elements), RUNS each, alternating (see bench_wall.py)")
    args = parser.parse_args()
    if args.wall:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": args.wall,
                  "wall": bench_wall.measure_wall(Lookout, cpu_ms, rss_kib, stat_cpu_ms, out, args.wall)}
        write_report(out, "wall", report)
        return
    if args.hls_start:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": args.hls_start,
                  "hls_start": bench_hls_start.measure_hls_start(Lookout, chromium, out, args.hls_start)}
        write_report(out, "hls-start", report)
        return
    if args.operate:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        whole_process_cpu_ms = lambda pid: stat_cpu_ms(f"/proc/{pid}/stat")
        report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": args.operate,
                  "operate": bench_operate.measure_operate(Lookout, free_port, CAMERA, LOAD, SWARM, whole_process_cpu_ms, args.operate)}
        print(json.dumps(report["operate"], indent=2))
        write_report(out, "operate", report)
        return
    if args.scale:
        return measure_scale(Path(args.out), [int(n) for n in args.scale.split(",")], args.seconds, args.repeats)
    if args.vs == "janus":
        return measure_vs_janus(Path(args.out), args.browser_runs)
    if args.playout_delay is not None:
        return measure_playout_delay(Path(args.out), args.playout_delay, args.browser_runs)
    if args.flood:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "flood": bench_flood.measure_flood(out, Lookout, cpu_ms, rss_kib, LOAD, args.flood, args.flood // 20)}
        write_report(out, "flood", report)
        return
    if args.faults:
        return measure_faults(Path(args.out), args.faults, args.fault_mode)
    if args.auth:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "requests": args.auth,
                  "auth": bench_auth.measure_auth(out, Lookout, cpu_ms, LOAD, LOOKOUT, args.auth, joins=20)}
        write_report(out, "auth", report)
        return
    counts = [int(n) for n in args.viewers.split(",")]
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": os.uname().nodename,
              "cores": os.cpu_count(), "seconds": args.seconds, "repeats": args.repeats, "viewers": {}, "chromium": {}}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = args.media_ports.split(",")
    for mode in modes:
        report["viewers"][mode] = {}
        server = Lookout("--config", str(config_file(out, mode)))
        try:
            idle_cpu, idle_rss = measure_idle(server)
            report.setdefault("idle", {})[mode] = {"cpu_ms_per_s": round(idle_cpu, 1), "rss_mib": round(idle_rss / 1024, 1)}
            print(f"media ports: {mode}; idle server (the test pattern's threads left out): {idle_cpu:.0f} CPU-ms/s, RSS {idle_rss / 1024:.1f} MiB")
            print(f"{'viewers':>8} {'first frame p50/p95 ms':>24} {'CPU-ms/viewer-s':>16} {'RSS KiB/viewer':>15} {'loss %':>7} {'Mbit/s/viewer':>14} {'added p50/p99 ms':>17} {'beyond pacing':>15}")
            for n in counts:
                runs = [measure_viewers(server, n, args.seconds, idle_cpu, idle_rss) for _ in range(args.repeats)]
                summary = {key: median_of(runs, key) for key in
                           ["first_frame_ms_p50", "first_frame_ms_p95", "cpu_ms_per_viewer_second", "rss_kib_per_viewer",
                            "loss_percent", "mbit_per_viewer", "server_rss_mib", "send_delay_p50_ms", "send_delay_p99_ms",
                            "send_delay_beyond_pacing_p50_ms", "send_delay_beyond_pacing_p99_ms"]}
                summary["failed_to_join"] = sum(r["failed_to_join"] for r in runs)
                summary["without_video"] = sum(r["without_video"] for r in runs)
                summary["runs"] = runs
                report["viewers"][mode][n] = summary
                print(f"{n:>8} {summary['first_frame_ms_p50']:>12} / {summary['first_frame_ms_p95']:<9} "
                      f"{summary['cpu_ms_per_viewer_second']:>16} {summary['rss_kib_per_viewer']:>15} "
                      f"{summary['loss_percent']:>7} {summary['mbit_per_viewer']:>14} "
                      f"{summary['send_delay_p50_ms']:>8} / {summary['send_delay_p99_ms']:<7} "
                      f"{summary['send_delay_beyond_pacing_p50_ms']:>6} / {summary['send_delay_beyond_pacing_p99_ms']:<7}")
            if mode == modes[0]:
                runs = [chromium(f"http://{server.addr}/?path=demo") for _ in range(args.browser_runs)]
                report["chromium"]["demo"] = browser_summary(runs)
                # The demo's tone beeps on every second of capture time: lip sync, with the sound
                # on (the page holds the picture for it only then), once settled.
                runs = [chromium(f"http://{server.addr}/?path=demo", "--lip-sync", seconds=20) for _ in range(args.browser_runs)]
                report["chromium"]["demo_with_sound"] = browser_summary(runs)
                runs = [chromium(f"http://{server.addr}/?path=demo&transport=hls") for _ in range(args.browser_runs)]
                report["chromium"]["demo_ll_hls"] = browser_summary(runs)
                report["ll_hls"] = measure_hls(server, args, idle_cpu)
        finally:
            server.stop()
    if {"shared", "range"} <= set(modes):
        for n in counts:
            shared, own = (report["viewers"][m][n]["cpu_ms_per_viewer_second"] for m in ("shared", "range"))
            if shared and own:
                print(f"{n} viewers: CPU per viewer, shared port / port per viewer = {shared / own:.2f}")

    report["chromium"]["demo_4s_gop"] = measure_long_gop(out, args.browser_runs)

    camera_port = free_port()
    camera = subprocess.Popen(["/usr/bin/python3", str(CAMERA), "--port", str(camera_port), "--barcode"],
                              stdout=subprocess.PIPE, text=True)
    try:
        camera.stdout.readline()
        server = Lookout("--config", "/dev/null", "--udp-port", "0", "--source", f"cam=rtsp://127.0.0.1:{camera_port}/test")
        try:
            server.wait_live("cam")
            runs = [chromium(f"http://{server.addr}/?path=cam") for _ in range(args.browser_runs)]
            report["chromium"]["gstreamer_camera"] = browser_summary(runs)
        finally:
            server.stop()
    finally:
        camera.terminate()
        camera.wait(10)

    for name, summary in report["chromium"].items():
        lip_sync = (f"; sound {summary['audio_latency_ms']} ms after capture, {summary['lip_sync_ms']} ms after the picture (runs: {summary['lip_sync_runs_ms']})"
                    if summary.get("lip_sync_ms") is not None else "")
        print(f"Chromium, {name}: first frame {summary['first_frame_ms']} ms, glass-to-glass p50 "
              f"{summary['latency_p50_ms']} ms, p95 {summary['latency_p95_ms']} ms{lip_sync} (median of {args.browser_runs} runs)")
    write_report(out, None, report)


def measure_scale(out, counts, seconds, repeats):
    """Hundreds of viewers: lookout-swarm's light viewers, so that the load generator does not
    take the cores the server needs (a webrtc-rs peer per viewer costs more than Lookout does)."""
    out.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": os.uname().nodename,
              "cores": os.cpu_count(), "seconds": seconds, "repeats": repeats, "load_generator": "lookout-swarm", "viewers": {}}
    server = Lookout("--config", str(config_file(out, "shared")))
    try:
        idle_cpu, idle_rss = measure_idle(server)
        report["idle"] = {"cpu_ms_per_s": round(idle_cpu, 1), "rss_mib": round(idle_rss / 1024, 1)}
        print(f"light viewers on the shared port; idle server: {idle_cpu:.0f} CPU-ms/s, RSS {idle_rss / 1024:.1f} MiB")
        print(f"{'viewers':>8} {'CPU-ms/viewer-s':>16} {'RSS KiB/viewer':>15} {'loss %':>7} {'Mbit/s/viewer':>14} {'without video':>14}")
        for n in counts:
            # Loss after a warm-up: 500 joins in a second, each with its replayed GOP, overflow
            # the receive buffers of one load generator, which a viewer of its own would not.
            runs = [measure_viewers(server, n, seconds, idle_cpu, idle_rss, SWARM, warmup=2) for _ in range(repeats)]
            summary = {key: median_of(runs, key) for key in ("cpu_ms_per_viewer_second", "rss_kib_per_viewer", "loss_percent",
                                                             "mbit_per_viewer", "server_rss_mib", "first_frame_ms_p50")}
            summary["without_video"] = sum(r["without_video"] for r in runs)
            summary["failed_to_join"] = sum(r["failed_to_join"] for r in runs)
            summary["runs"] = runs
            report["viewers"][n] = summary
            print(f"{n:>8} {summary['cpu_ms_per_viewer_second']:>16} {summary['rss_kib_per_viewer']:>15} "
                  f"{summary['loss_percent']:>7} {summary['mbit_per_viewer']:>14} {summary['without_video']:>14}")
    finally:
        server.stop()
    write_report(out, "scale", report)


def measure_faults(out, seconds, mode):
    """A camera with a keyframe every second that ignores keyframe requests, behind
    fault_proxy.py in `mode` (drop-bytes: 100-1000 bytes lost inside a packet; chaos: that, 1-2 s
    stalls or resets), a fault every 3-7 s, watched
    by a Rust viewer and Chromium for `seconds`: freezes, what Lookout dropped and
    resynchronised, reconnects, viewers lost, and glass-to-glass latency before (the same camera
    through the same proxy relaying without faults) and after (the last ~10 s of the faulty run,
    and a fresh join)."""
    out.mkdir(parents=True, exist_ok=True)
    camera_port = free_port()
    camera = subprocess.Popen(["/usr/bin/python3", str(CAMERA), "--port", str(camera_port), "--barcode", "--width", "640",
                               "--height", "360", "--keyint", "30", "--ignore-keyframe-requests"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proxy_log = out / "bench-faults-proxy.log"
    proxy_args = ["/usr/bin/python3", str(PROXY), "--listen-port", "0", "--target-port", str(camera_port), "--mode"]
    with proxy_log.open("w") as log:
        proxy = subprocess.Popen(proxy_args + [mode, "--interval-min", "3", "--interval-max", "7"],
                                 stdout=subprocess.PIPE, stderr=log, text=True)
    relay = subprocess.Popen(proxy_args + ["pass"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    config = out / "bench-faults.toml"
    try:
        camera.stdout.readline()
        proxy_port, relay_port = (int(p.stdout.readline().strip().rsplit(":", 1)[1]) for p in (proxy, relay))
        config.write_text(f'[paths.relayed]\nsource = "rtsp://127.0.0.1:{relay_port}/test"\n'
                          f'[paths.faulty]\nsource = "rtsp://127.0.0.1:{proxy_port}/test"\n'
                          '[webrtc]\nlisten_ips = ["127.0.0.1"]\nudp_port = 0\n')
        server = Lookout("--config", str(config))
        try:
            server.wait_live("relayed")
            server.wait_live("faulty")
            before = chromium(f"http://{server.addr}/?path=relayed", seconds=10)
            print(f"faults ({mode}): {seconds} s; latency before (the proxy relaying without faults): p50 {before.get('latencyP50Ms')} ms")
            load = subprocess.Popen([str(LOAD), "--server", server.addr, "--path", "faulty", "--viewers", "1",
                                     "--warmup", "2", "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
            during = chromium(f"http://{server.addr}/?path=faulty", seconds=seconds)
            rust_viewer = json.loads(load.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1])
            fresh = chromium(f"http://{server.addr}/?path=faulty", seconds=10)
            with urllib.request.urlopen(f"http://{server.addr}/api/paths", timeout=5) as response:
                stats = next(p["stats"] for p in json.load(response) if p["name"] == "faulty")
        finally:
            server.stop()
    finally:
        for process in (proxy, relay):
            process.terminate()
            process.wait(10)
        camera.terminate()
        camera.wait(10)
    injected = re.findall(r"faults injected: (.*)", proxy_log.read_text())
    faults = {kind: int(n) for kind, n in re.findall(r"([a-z-]+) (\d+)", injected[-1] if injected else "")}
    count = sum(faults.values())
    report = {
        "seconds": seconds, "mode": mode, "faults": faults,
        "rust_viewer": rust_viewer, "chromium": during, "chromium_fresh_join": fresh, "chromium_before": before,
        "lookout": {key: stats.get(key) for key in ("frames_dropped_after_loss", "resyncs", "bytes_lost", "reconnects", "frames")},
        "freeze_seconds_per_fault": round(rust_viewer["freeze_seconds"] / count, 3) if count else None,
        "viewers_disconnected": rust_viewer["disconnected"] + max(0, (during.get("sessionsStarted") or 1) - 1),
    }
    print(f"faults injected: {faults} ({count} in all)")
    print(f"Rust viewer: {rust_viewer['freezes']} freezes, {rust_viewer['freeze_seconds']:.1f} s frozen in all "
          f"({report['freeze_seconds_per_fault']} s per fault), longest {rust_viewer['longest_freeze_seconds']} s, "
          f"packets lost {rust_viewer['packets_lost']}, disconnected {rust_viewer['disconnected']}")
    print(f"Chromium: {during.get('freezeCount')} freezes, {during.get('freezeSeconds')} s frozen, frames dropped "
          f"{during.get('framesDropped')}, sessions {during.get('sessionsStarted')}, failures {during.get('failures')}")
    print(f"Lookout: {report['lookout']}")
    print(f"glass-to-glass p50/p95: before {before.get('latencyP50Ms')}/{before.get('latencyP95Ms')} ms; "
          f"last 10 s of the faulty run {during.get('latencyP50Ms')}/{during.get('latencyP95Ms')} ms; "
          f"a fresh join after it {fresh.get('latencyP50Ms')}/{fresh.get('latencyP95Ms')} ms")
    write_report(out, "faults", report)


def measure_long_gop(out, runs):
    """Chromium joining a source with a keyframe every 4 s that ignores keyframe requests (the
    test pattern, as most cheap cameras): each join lands somewhere else in the GOP."""
    path = out / "bench-gop4.toml"
    path.write_text('[paths.demo]\nsource = "testpattern"\non_demand = false\n'
                    'test_pattern = { width = 1280, height = 720, fps = 30, keyframe_interval_secs = 4.0, bitrate_kbps = 2500 }\n'
                    '[webrtc]\nlisten_ips = ["127.0.0.1"]\nudp_port = 0\n')
    server = Lookout("--config", str(path))
    try:
        server.wait_live("demo")
        results = []
        for i in range(runs):
            time.sleep(1.3 * i % 4)
            results.append(chromium(f"http://{server.addr}/?path=demo"))
        return browser_summary(results)
    finally:
        server.stop()


def measure_hls(server, args, idle_cpu):
    """LL-HLS viewers: the muxer with one viewer, and the cost of each further viewer."""
    few, many = 1, max(args.hls_viewers, 2)
    runs = {n: [measure_hls_viewers(server, n, args.seconds, idle_cpu) for _ in range(args.repeats)] for n in (few, many)}
    one = statistics.median(r["cpu_ms_per_s"] for r in runs[few])
    all_ = statistics.median(r["cpu_ms_per_s"] for r in runs[many])
    summary = {"muxer_and_one_viewer_cpu_ms_per_s": round(one, 1),
               "cpu_ms_per_viewer_second": round((all_ - one) / (many - few), 2),
               "viewers": many, "parts_per_viewer_s": round(statistics.median(r["parts_per_viewer_s"] for r in runs[many]), 2),
               "errors": [e for n in runs for r in runs[n] for e in r["errors"]][:5], "runs": runs}
    print(f"LL-HLS: muxer + 1 viewer {summary['muxer_and_one_viewer_cpu_ms_per_s']} CPU-ms/s; each further viewer "
          f"{summary['cpu_ms_per_viewer_second']} CPU-ms/viewer-s ({many} viewers, {summary['parts_per_viewer_s']} parts/s each)"
          + (f"; errors: {summary['errors']}" if summary["errors"] else ""))
    return summary


def measure_playout_delay(out, max_ms, runs):
    """The same camera (x264 zero-latency, a keyframe every second) through two Lookouts that
    differ only in `max_playout_delay_ms`, Chromium on each in turn: what the extension does to
    first frame, glass-to-glass latency, dropped frames and freezes."""
    out.mkdir(parents=True, exist_ok=True)
    camera_port = free_port()
    camera = subprocess.Popen(["/usr/bin/python3", str(CAMERA), "--port", str(camera_port), "--barcode"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    servers = {}
    try:
        camera.stdout.readline()
        for name, setting in (("without", ""), ("with", f"max_playout_delay_ms = {max_ms}\n")):
            config = out / f"bench-playout-{name}.toml"
            config.write_text(f'[paths.cam]\nsource = "rtsp://127.0.0.1:{camera_port}/test"\n'
                              f'[webrtc]\nlisten_ips = ["127.0.0.1"]\nudp_port = 0\n{setting}')
            servers[name] = Lookout("--config", str(config))
            servers[name].wait_live("cam")
        results = {name: [] for name in servers}
        for _ in range(runs):
            for name, server in servers.items():
                results[name].append(chromium(f"http://{server.addr}/?path=cam"))
    finally:
        for server in servers.values():
            server.stop()
        camera.terminate()
        camera.wait(10)
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "max_playout_delay_ms": max_ms, "runs": results}
    for name, runs_of in results.items():
        summary = browser_summary(runs_of)
        summary["freezes"] = [r.get("freezeCount") for r in runs_of]
        summary["fps"] = median_of(runs_of, "fpsRendered")
        report[name] = summary
        print(f"Chromium, GStreamer camera, {name} max_playout_delay_ms = {max_ms}: first frame {summary['first_frame_ms']} ms, "
              f"glass-to-glass p50 {summary['latency_p50_ms']} ms, p95 {summary['latency_p95_ms']} ms, {summary['fps']} fps, "
              f"frames dropped {summary['frames_dropped']}, freezes {summary['freezes']} (median of {runs} runs)"
              + (f"; failures: {summary['failures']}" if summary["failures"] else ""))
    write_report(out, "playout-delay", report)


def measure_vs_janus(out, runs):
    out.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": os.uname().nodename,
              "vs_janus": bench_janus.measure_vs_janus(Lookout, chromium, free_port, browser_summary, CAMERA, runs)}
    for name in ("lookout", "janus"):
        summary = report["vs_janus"][name]
        print(f"Chromium through {name}, GStreamer camera: first frame {summary['first_frame_ms']} ms, glass-to-glass "
              f"p50 {summary['latency_p50_ms']} ms, p95 {summary['latency_p95_ms']} ms, frames dropped "
              f"{summary['frames_dropped']} (median of {runs} runs){'; failures: ' + str(summary['failures']) if summary['failures'] else ''}")
    write_report(out, "vs-janus", report)


def write_report(out, kind, report):
    """Writes `report` to OUT/bench[-KIND]-DATE.json and says where."""
    name = f"bench-{kind}-" if kind else "bench-"
    path = out / f"{name}{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written to {path}")


def browser_summary(runs):
    failures = [f for r in runs for f in r.get("failures", [])]
    return {"first_frame_ms": median_of(runs, "firstFrameMs"), "latency_p50_ms": median_of(runs, "latencyP50Ms"),
            "latency_p95_ms": median_of(runs, "latencyP95Ms"), "frames_dropped": [r.get("framesDropped") for r in runs],
            "audio_latency_ms": median_of(runs, "audioLatencyMs"), "lip_sync_ms": median_of(runs, "lipSyncMs"),
            "lip_sync_runs_ms": [r.get("lipSyncMs") for r in runs], "failures": failures}


if __name__ == "__main__":
    sys.exit(main())
