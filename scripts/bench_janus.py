"""Lookout beside Janus (scripts/bench --vs janus): the same GStreamer camera (1280x720, 30 fps,
a keyframe a second, its capture time painted as a barcode) played by headless Chromium through
Lookout and through Janus's streaming plugin, runs alternating so that both see the same
machine. Each run reports time to first frame and glass-to-glass latency read from the barcode
(tests/browser/play.mjs; Janus's page is tests/browser/janus/, with the same figures).

Janus is Debian's package (installed with apt-get when missing), configured here with its HTTP
transport and one RTSP mountpoint, every other plugin and transport left out. Everything runs
on loopback and is stopped by its PID.
"""

import functools
import http.server
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_DIR = ROOT / "tests/browser/janus"
BARCODE = ROOT / "web/barcode.js"
JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
MOUNTPOINT = 1


def ensure_janus():
    if shutil.which("janus") is None:
        subprocess.run(["apt-get", "install", "-y", "janus"], check=True, stdout=subprocess.DEVNULL)


def janus_config(folder, http_port, camera_url):
    """Writes Janus's configuration into `folder`: the streaming plugin and HTTP transport alone."""
    for kind, library in (("plugins", "libjanus_streaming.so"), ("transports", "libjanus_http.so")):
        (folder / kind).mkdir()
        (folder / kind / library).symlink_to(JANUS_LIBS / kind / library)
    (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{folder}/plugins"
    transports_folder = "{folder}/transports"
    debug_level = 3
}}
media: {{
    rtp_port_range = "41000-41999"
}}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""general: {{
    base_path = "/janus"
    http = true
    port = {http_port}
    ip = "127.0.0.1"
}}
admin: {{
    admin_http = false
}}
""")
    (folder / "janus.plugin.streaming.jcfg").write_text(f"""camera: {{
    type = "rtsp"
    id = {MOUNTPOINT}
    description = "the benchmark's GStreamer camera"
    audio = false
    video = true
    url = "{camera_url}"
    rtsp_reconnect_delay = 5
    # The camera sends High profile; Chromium negotiates H.264 only as (Constrained) Baseline
    # and decodes the rest anyway: Janus offers Constrained Baseline, as Lookout chooses.
    videofmtp = "profile-level-id=42e01f;packetization-mode=1"
}}
""")


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/browser/janus/, and web/barcode.js beside it."""

    def translate_path(self, path):
        name = path.split("?", 1)[0].lstrip("/") or "index.html"
        return str(BARCODE if name == "barcode.js" else PAGE_DIR / name)

    def log_message(self, *args):
        pass


def wait_for_mountpoint(api, timeout=30):
    """Until Janus answers on its HTTP API (the RTSP feed is read in the background)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/info", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("Janus did not answer on its HTTP API")


def measure_vs_janus(lookout_class, chromium, free_port, summary, camera_script, runs):
    ensure_janus()
    camera_port = free_port()
    camera = subprocess.Popen(["/usr/bin/python3", str(camera_script), "--port", str(camera_port), "--barcode"],
                              stdout=subprocess.PIPE, text=True)
    camera_url = f"rtsp://127.0.0.1:{camera_port}/test"
    folder = Path(tempfile.mkdtemp(prefix="lookout-bench-janus-"))
    janus = page_server = server = None
    try:
        camera.stdout.readline()
        http_port = free_port()
        janus_config(folder, http_port, camera_url)
        janus = subprocess.Popen(["janus", "-C", str(folder / "janus.jcfg"), "-F", str(folder)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api = f"http://127.0.0.1:{http_port}/janus"
        wait_for_mountpoint(api)
        page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
        threading.Thread(target=page_server.serve_forever, daemon=True).start()
        page = f"http://127.0.0.1:{page_server.server_address[1]}/?janus={api}&mountpoint={MOUNTPOINT}"
        server = lookout_class("--config", "/dev/null", "--udp-port", "0", "--source", f"cam={camera_url}")
        server.wait_live("cam")
        lookout_runs, janus_runs = [], []
        for _ in range(runs):
            lookout_runs.append(chromium(f"http://{server.addr}/?path=cam"))
            janus_runs.append(chromium(page))
        return {"lookout": summary(lookout_runs), "janus": summary(janus_runs),
                "lookout_runs": lookout_runs, "janus_runs": janus_runs}
    finally:
        if server:
            server.stop()
        if page_server:
            page_server.shutdown()
        if janus:
            janus.terminate()
            janus.wait(10)
        camera.terminate()
        camera.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
