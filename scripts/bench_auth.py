"""What access control costs (scripts/bench --auth): for each way of deciding (none, users in the
file over Basic, a JWT with a shared secret, a JWT checked against a JWKS served on loopback, an
HTTP callback to a backend on loopback), Lookout serves `demo` and this measures

* the time an authorized request takes (GET /api/paths, one keep-alive connection, p50/p95),
  against none: the time access control adds to every way in;
* time to first frame of WebRTC viewers that authenticate (lookout-load --token), where the
  credential is a token (Basic credentials travel in a header /ws clients do not set);
* the server's CPU per refused request under a bounded flood of bad credentials from one
  address (first refused with 401, then, past the failed-authentication burst, with 429).

Figures are medians; the machine is noisy.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import subprocess
import threading
import time

SECRET = "bench secret of at least thirty-two bytes"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(permissions, kid=None, secret=SECRET):
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    claims = {"exp": int(time.time()) + 3600, "lookout_permissions": permissions}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


class LocalServer:
    """A tiny HTTP server on loopback answering every GET and POST with `body` and `status`."""

    def __init__(self, body=b"", status=200):
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = answer
            do_POST = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def methods(lookout_binary):
    """(name, [auth] section, good Authorization value, bad Authorization value, token for /ws)."""
    read_all = [{"action": "read"}]
    token = hs256_token(read_all)
    password_hash = subprocess.run([str(lookout_binary), "hash-password"], input="bench password\n",
                                   capture_output=True, text=True, check=True).stdout.strip()
    basic = lambda password: "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()
    jwks = LocalServer(json.dumps({"keys": [{"kty": "oct", "kid": "bench", "alg": "HS256",
                                             "k": b64url(SECRET.encode())}]}).encode())
    backend = LocalServer()
    bad_token = "Bearer " + hs256_token(read_all, secret="not the secret, not the secret, no")
    yield "none", "", None, None, None
    yield ("basic", f'[[auth.users]]\nname = "bench"\npassword = "{password_hash}"\npermissions = [{{ action = "read" }}]\n',
           basic("bench password"), basic("wrong password"), None)
    yield "jwt", f'[auth.jwt]\nsecret = "{SECRET}"\n', f"Bearer {token}", bad_token, token
    jwks_token = hs256_token(read_all, kid="bench")
    yield "jwks", f'[auth.jwt]\njwks = "{jwks.url}/jwks.json"\n', f"Bearer {jwks_token}", bad_token, jwks_token
    # The backend allows everything: the cost measured is the question's, remembered or not.
    yield ("callback", f'[auth.callback]\nurl = "{backend.url}/allow"\nremember_secs = 10\n', "Bearer opaque-token",
           None, "opaque-token")
    jwks.stop()
    backend.stop()


def request_times_ms(addr, authorization, count):
    host, port = addr.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": authorization} if authorization else {}
    times, statuses = [], {}
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/api/paths", headers=headers)
        response = connection.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    connection.close()
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 3), "p95_ms": round(times[int(len(times) * 0.95)], 3), "statuses": statuses}


def measure_auth(out, lookout_class, cpu_ms, load_binary, lookout_binary, requests, joins):
    report = {}
    print(f"{'method':>9} {'request p50/p95 ms':>20} {'added p50 ms':>13} {'first frame p50/p95 ms':>24} {'CPU-ms per refusal':>19}")
    baseline = None
    for name, section, good, bad, token in methods(lookout_binary):
        config = out / f"bench-auth-{name}.toml"
        config.write_text('[webrtc]\nudp_port = 0\n[paths.demo]\nsource = "testpattern"\non_demand = false\n'
                          'test_pattern = { width = 640, height = 360, bitrate_kbps = 1000 }\n'
                          # A flood of bad credentials is the point here: room for all of it.
                          + ("[limits]\nfailed_auth_per_ip_burst = 20\n" if section else "") + section)
        server = lookout_class("--config", str(config))
        try:
            server.wait_live("demo", authorization=good)
            request_times_ms(server.addr, good, 20)  # warm: caches filled, connection set up
            timed = request_times_ms(server.addr, good, requests)
            baseline = baseline if baseline is not None else timed["p50_ms"]
            figures = {"request": timed, "added_p50_ms": round(timed["p50_ms"] - baseline, 3)}
            if name == "none" or token:
                command = [str(load_binary), "--server", server.addr, "--path", "demo", "--viewers", str(joins), "--seconds", "3"]
                load = json.loads(subprocess.run(command + (["--token", token] if token else []), capture_output=True,
                                                 text=True, check=True).stdout.strip().splitlines()[-1])
                figures["first_frame_ms_p50"], figures["first_frame_ms_p95"] = load["first_frame_ms_p50"], load["first_frame_ms_p95"]
            if bad:
                pid = server.process.pid
                before = cpu_ms(pid)
                flood = request_times_ms(server.addr, bad, requests)
                figures["refusals"] = flood["statuses"]
                figures["cpu_ms_per_refusal"] = round((cpu_ms(pid) - before) / requests, 4)
            report[name] = figures
            first = (f"{figures['first_frame_ms_p50']:.0f} / {figures['first_frame_ms_p95']:.0f}"
                     if figures.get("first_frame_ms_p50") is not None else "n/a")
            print(f"{name:>9} {timed['p50_ms']:>9.3f} / {timed['p95_ms']:<8.3f} {figures['added_p50_ms']:>13.3f} {first:>24} "
                  f"{figures.get('cpu_ms_per_refusal', 'n/a'):>19}")
        finally:
            server.stop()
    return report
