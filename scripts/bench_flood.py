"""What a hostile client costs (scripts/bench --flood): the probes that once took the server's
memory and CPU, run against the release binary with its default limits while an honest viewer
(lookout-load) watches `demo` throughout.

* WHEP offers as fast as one connection sends them (most refused with 429 past the burst);
* one WebSocket sending `watch` in a loop (held to its message rate, then closed);
* silent WebSockets that never authenticate (closed after the first-message time);
* connections that send half a header, and requests whose body never comes.

For each: the answers by status, the server's CPU per request, its RSS before, at the peak and
after the clients are gone, and how many connections the server itself closed in time. The
honest viewer's loss and freezes over the whole run say whether anyone else noticed.
"""

import http.client
import json
import socket
import subprocess
import time

OFFER = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
UPGRADE = ("GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def connect(addr):
    host, port = addr.split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def whep_offers(addr, count):
    """POSTs `count` offers on one keep-alive connection (a new one when the server closes it)."""
    host, port = addr.split(":")
    statuses, connection = {}, None
    for _ in range(count):
        connection = connection or http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("POST", "/whep/demo", body=OFFER, headers={"Content-Type": "application/sdp"})
            response = connection.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
        except (OSError, http.client.HTTPException):
            statuses["connection error"] = statuses.get("connection error", 0) + 1
            connection.close()
            connection = None
    if connection:
        connection.close()
    return statuses


def ws_frame(text):
    """One masked client text frame."""
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    header = bytes([0x81, 0x80 | length]) if length < 126 else bytes([0x81, 0xFE]) + length.to_bytes(2, "big")
    return header + mask + masked


def ws_watch_loop(addr, messages):
    """One WebSocket: auth, then `watch` as fast as it can; how many it sent before the server
    closed it, and after how long."""
    sock = connect(addr)
    sock.sendall(UPGRADE.format(addr=addr).encode())
    sock.recv(4096)
    sock.sendall(ws_frame(json.dumps({"type": "auth", "token": None})))
    watch = ws_frame(json.dumps({"type": "watch", "path": "demo"}))
    started, sent = time.time(), 0
    try:
        for _ in range(messages):
            sock.sendall(watch)
            sent += 1
    except OSError:
        pass
    sock.close()
    return {"watch_messages_sent": sent, "seconds": round(time.time() - started, 2)}


def hold_open(addr, count, first_bytes):
    """Opens `count` connections that send `first_bytes` and then nothing."""
    sockets = []
    for _ in range(count):
        sock = connect(addr)
        if first_bytes:
            sock.sendall(first_bytes.format(addr=addr).encode())
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def closed_by_server(sockets):
    """How many of `sockets` the server has closed (a read gives end of file or a reset)."""
    closed = 0
    for sock in sockets:
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    closed += 1
                    break
        except BlockingIOError:
            continue  # still open
        except OSError:
            closed += 1
    return closed


def measure_flood(out, lookout_class, cpu_ms, rss_kib, load_binary, offers, sockets):
    config = out / "bench-flood.toml"
    config.write_text('[webrtc]\nudp_port = 0\n[paths.demo]\nsource = "testpattern"\non_demand = false\n'
                      'test_pattern = { width = 640, height = 360, bitrate_kbps = 1000 }\n')
    server = lookout_class("--config", str(config))
    report = {}
    try:
        server.wait_live("demo")
        pid = server.process.pid
        honest = subprocess.Popen([str(load_binary), "--server", server.addr, "--path", "demo", "--viewers", "1",
                                   "--warmup", "2", "--seconds", "40"], stdout=subprocess.PIPE, text=True)
        time.sleep(3)
        report["rss_mib_before"] = round(rss_kib(pid) / 1024, 1)
        peak = rss_kib(pid)

        cpu, started = cpu_ms(pid), time.time()
        statuses = whep_offers(server.addr, offers)
        elapsed = time.time() - started
        peak = max(peak, rss_kib(pid))
        report["whep_offers"] = {"count": offers, "statuses": statuses, "per_second": round(offers / elapsed),
                                 "cpu_ms_per_offer": round((cpu_ms(pid) - cpu) / offers, 4),
                                 "rss_mib_after": round(rss_kib(pid) / 1024, 1)}

        report["ws_watch_loop"] = ws_watch_loop(server.addr, 100_000)
        peak = max(peak, rss_kib(pid))
        report["ws_watch_loop"]["rss_mib_after"] = round(rss_kib(pid) / 1024, 1)

        held = {
            "silent_websockets": hold_open(server.addr, sockets, UPGRADE),
            "slow_headers": hold_open(server.addr, sockets // 5, "GET /api/paths HTTP/1.1\r\nHost: {addr}\r\n"),
            "slow_bodies": hold_open(server.addr, sockets // 10,
                                     "POST /whep/demo HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\n"
                                     "Content-Length: 5000\r\n\r\nv=0\r\n"),
        }
        time.sleep(1)
        peak = max(peak, rss_kib(pid))
        report["rss_mib_while_held"] = round(rss_kib(pid) / 1024, 1)
        # The default first-message, header and body times are 10 s: all closed after them.
        time.sleep(11)
        report["held_connections"] = {name: {"opened": len(socks), "closed_by_server_within_12_s": closed_by_server(socks)}
                                      for name, socks in held.items()}
        for socks in held.values():
            for sock in socks:
                sock.close()
        report["rss_mib_peak"] = round(peak / 1024, 1)
        time.sleep(2)
        report["rss_mib_after"] = round(rss_kib(pid) / 1024, 1)
        output, _ = honest.communicate(timeout=120)
        load = json.loads(output.strip().splitlines()[-1])
        report["honest_viewer"] = {key: load[key] for key in ("packets", "packets_lost", "loss_percent", "freezes",
                                                              "longest_freeze_seconds", "disconnected")}
    finally:
        server.stop()
    print(json.dumps(report, indent=2))
    return report
