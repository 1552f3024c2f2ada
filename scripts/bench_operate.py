"""`scripts/bench --operate RUNS`: what running Lookout in front of many cameras costs.

* Time to first frame of a camera on demand, from the watch request (its RTSP handshake and
  its next keyframe: the camera sends one a second), against the same camera kept open (whose
  cached GOP a viewer gets at once); one webrtc-rs viewer (lookout-load) each time.
* CPU of an idle Lookout: the built-in test pattern on demand (nobody watching) against always
  on, and 100 camera paths on demand that nobody watches.
* Snapshot latency: a JPEG of a new keyframe (decode and encode), of one already made, and of a
  camera on demand from idle.
* The time a `/metrics` scrape takes with 100 paths, and with 100 paths and 500 viewers
  (lookout-swarm's light viewers on one of them).
"""

import json
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def path_state(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}/api/v1/paths/{path}", timeout=2) as response:
            return json.load(response)["state"]
    except OSError:
        return None


def wait_state(addr, path, state, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path_state(addr, path) == state:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{path} did not become {state}")


def first_frame_ms(load, addr, path):
    output = subprocess.run([str(load), "--server", addr, "--path", path, "--viewers", "1", "--seconds", "1"],
                            capture_output=True, text=True, timeout=60).stdout
    return json.loads(output.strip().splitlines()[-1])["first_frame_ms_p50"]


def idle_cpu_ms_per_s(cpu_ms, server, seconds=10):
    time.sleep(2)
    before, started = cpu_ms(server.process.pid), time.time()
    time.sleep(seconds)
    return (cpu_ms(server.process.pid) - before) / (time.time() - started)


def snapshot_ms(addr, path, width=None):
    query = f"?width={width}" if width else ""
    started = time.time()
    with urllib.request.urlopen(f"http://{addr}/api/v1/paths/{path}/snapshot.jpg{query}", timeout=30) as response:
        response.read()
    return (time.time() - started) * 1000


def scrape_ms(addr):
    started = time.time()
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=30) as response:
        response.read()
    return (time.time() - started) * 1000


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def scrapes_while_watched(server, swarm, viewers, runs):
    """Median time of `runs` scrapes while `viewers` light viewers watch `demo`, and how many
    sessions the scrape saw open."""
    seconds = 10 + runs
    load = subprocess.Popen([str(swarm), "--server", server.addr, "--path", "demo", "--viewers", str(viewers),
                             "--seconds", str(seconds), "--warmup", "3"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(5)  # every viewer joined and playing
        times = []
        for _ in range(runs):
            times.append(scrape_ms(server.addr))
            time.sleep(1)
        with urllib.request.urlopen(f"http://{server.addr}/metrics", timeout=30) as response:
            text = response.read().decode()
        open_sessions = next((float(line.split()[-1]) for line in text.splitlines()
                              if line.startswith('lookout_webrtc_sessions_open{path="demo"}')), 0)
        return median(times), int(open_sessions)
    finally:
        load.communicate(timeout=seconds + 120)


def measure_operate(lookout_class, free_port, camera_script, load, swarm, process_cpu_ms, runs):
    """`process_cpu_ms(pid)`: the CPU time of the whole process, its test pattern included."""
    folder = Path(tempfile.mkdtemp(prefix="lookout-bench-operate-"))
    camera_port = free_port()
    camera = subprocess.Popen(["/usr/bin/python3", str(camera_script), "--port", str(camera_port), "--width", "1280", "--height", "720"],
                              stdout=subprocess.PIPE, text=True)
    servers = []
    try:
        camera.stdout.readline()
        url = f"rtsp://127.0.0.1:{camera_port}/test"
        config = folder / "cameras.toml"
        config.write_text(f'[webrtc]\nudp_port = 0\n[paths.lazy]\nsource = "{url}"\non_demand = true\nclose_after_secs = 0.5\n'
                          f'[paths.open]\nsource = "{url}"\n')
        server = lookout_class("--config", str(config))
        servers.append(server)
        server.wait_live("open")
        on_demand, kept_open, snapshot_from_idle = [], [], []
        for _ in range(runs):
            wait_state(server.addr, "lazy", "idle")
            on_demand.append(first_frame_ms(load, server.addr, "lazy"))
            kept_open.append(first_frame_ms(load, server.addr, "open"))
            wait_state(server.addr, "lazy", "idle")
            snapshot_from_idle.append(snapshot_ms(server.addr, "lazy"))
        new_keyframe, made_already = [], []
        for _ in range(runs):
            time.sleep(1.1)  # a new keyframe since the last snapshot
            new_keyframe.append(snapshot_ms(server.addr, "open"))
            made_already.append(snapshot_ms(server.addr, "open"))
        server.stop()
        servers.pop()

        def idle(text):
            """The CPU of a Lookout serving the paths of `text` with nobody watching, and the
            median time of a /metrics scrape."""
            path = folder / "idle.toml"
            path.write_text("[webrtc]\nudp_port = 0\n" + text)
            server = lookout_class("--config", str(path))
            servers.append(server)
            try:
                time.sleep(3)
                cpu = round(idle_cpu_ms_per_s(process_cpu_ms, server), 1)
                return cpu, median([scrape_ms(server.addr) for _ in range(runs)])
            finally:
                server.stop()
                servers.pop()

        many = "".join(f'[paths.cam{i}]\nsource = "{url}"\non_demand = true\n' for i in range(100))
        pattern_on_demand, _ = idle('[paths.demo]\nsource = "testpattern"\n')
        pattern_always_on, _ = idle('[paths.demo]\nsource = "testpattern"\non_demand = false\n')
        cameras_on_demand, scrape_100_paths = idle(many)

        watched = folder / "watched.toml"
        watched.write_text('[webrtc]\nlisten_ips = ["127.0.0.1"]\n[limits]\nsessions_per_ip_burst = 100000\n'
                           '[paths.demo]\nsource = "testpattern"\non_demand = false\n' + many)
        server = lookout_class("--config", str(watched))
        servers.append(server)
        server.wait_live("demo")
        scrape_500_viewers, sessions_seen = scrapes_while_watched(server, swarm, 500, runs)
        server.stop()
        servers.pop()
        return {
            "first_frame_ms": {"on_demand_p50": median(on_demand), "kept_open_p50": median(kept_open),
                               "on_demand_runs": on_demand, "kept_open_runs": kept_open},
            "idle_cpu_ms_per_s": {"test_pattern_on_demand": pattern_on_demand, "test_pattern_always_on": pattern_always_on,
                                  "100_cameras_on_demand": cameras_on_demand},
            "metrics_scrape_ms_100_paths_p50": scrape_100_paths,
            "metrics_scrape_ms_100_paths_500_viewers_p50": scrape_500_viewers,
            "metrics_scrape_sessions_seen": sessions_seen,
            "snapshot_ms": {"new_keyframe_p50": median(new_keyframe), "made_already_p50": median(made_already),
                            "camera_on_demand_from_idle_p50": median(snapshot_from_idle)},
        }
    finally:
        for server in servers:
            server.stop()
        camera.terminate()
        camera.wait(10)
