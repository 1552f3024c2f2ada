#!/usr/bin/python3
"""Fault-injecting TCP proxy between an RTSP client (Lookout) and an RTSP server.

Lookout's tests put it in front of rtsp_camera.py to imitate cheap, buggy IP
cameras.  Many of them lose bytes on RTSP-over-TCP connections: their streamer
writes to a non-blocking socket, ignores short writes, and so drops the tail of
an interleaved packet, mostly inside large keyframes.

    fault_proxy.py --listen-port P --target-port T --mode MODE [options]

It listens on 127.0.0.1:P.  For each client connection it connects to the
target and relays both ways, injecting the chosen fault (see MODES below).
Once listening it writes exactly one line to stdout:

    READY 127.0.0.1:P

Everything else (connections, RTSP requests and responses, each fault with a
counter) goes to stderr.  SIGTERM or SIGINT stops it cleanly.

Faults that wait for PLAY start when the server has answered a PLAY request
with 2xx, or when the first interleaved "$" frame comes from the server,
whichever happens first.

Only the Python standard library is used.
"""

import argparse
import asyncio
import itertools
import random
import re
import signal
import socket
import struct
import sys
import textwrap
import time

MODES = {
    "pass": "plain relay, no faults",
    "drop-bytes": "after PLAY, every --interval-min..--interval-max seconds drop "
                  "--drop-min..--drop-max bytes of the server->client stream, starting "
                  "inside the payload of an interleaved packet",
    "stall": "after PLAY and --after seconds, stop reading from the server for "
             "--stall seconds, then resume",
    "reset": "after PLAY and --after seconds, reset the client connection (TCP RST) "
             "and close the server connection",
    "bad-rtsp": "answer the client's first request with garbage that is not RTSP and "
                "close, without connecting to the target",
    "bad-sdp": "replace the body of the successful DESCRIBE response with malformed SDP",
    "close-mid-describe": "send the client only the first half of the successful DESCRIBE "
                          "response, then close the connection",
    "chaos": "after PLAY, every --interval-min..--interval-max seconds one fault at random: "
             "drop bytes as drop-bytes does (3 in 5), stall for 1-2 s (1 in 5), or reset the "
             "connection as reset does (1 in 5); the client's next connection gets the same",
}

# chaos: the faults and their weights, and how long a stall lasts.
CHAOS_FAULTS = (("drop-bytes", 3), ("stall", 1), ("reset", 1))
CHAOS_STALL = (1.0, 2.0)

BAD_SDP = b"v=0\r\nthis is not sdp\r\nm=video abc\r\n"
GARBAGE_HEAD = b"HELLO WORLD\r\n\r\n"
GARBAGE_RANDOM_BYTES = 256

# Limits that keep every buffer and wait bounded.
MAX_HEADER = 64 * 1024          # RTSP start line + headers
MAX_BODY = 1024 * 1024          # RTSP body (Content-Length)
READ_SIZE = 64 * 1024
CONNECT_TIMEOUT = 5.0           # seconds to connect to the target
FIRST_REQUEST_TIMEOUT = 10.0    # bad-rtsp: seconds to wait for the client's request
# drop-bytes cuts only into "$" frames with at least this much payload, so the
# small RTCP packets are left alone and the cut lands in RTP (video) data.
MIN_CUT_PAYLOAD = 64

START_LINE = re.compile(rb"^(RTSP/\d\.\d [0-9]{3}( .*)?|[A-Z_]+ \S+ RTSP/\d\.\d)$")


def log(msg):
    sys.stderr.write("fault_proxy: " + msg + "\n")
    sys.stderr.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="TCP proxy that injects faults into an RTSP connection, "
        "like a buggy IP camera.",
        epilog="modes:\n" + "\n".join(
            textwrap.fill(text, 79, initial_indent="  %-19s " % mode, subsequent_indent=" " * 22)
            for mode, text in MODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen-port", type=int, required=True,
                   help="port to listen on at 127.0.0.1 (0: any free port)")
    p.add_argument("--target-port", type=int, required=True, help="port of the RTSP server")
    p.add_argument("--target-host", default="127.0.0.1",
                   help="host of the RTSP server (default %(default)s)")
    p.add_argument("--mode", choices=tuple(MODES), required=True, help="fault to inject")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for the random choices (default: unpredictable)")
    p.add_argument("--interval-min", type=float, default=3.0,
                   help="drop-bytes, chaos: shortest time between faults, s (default %(default)s)")
    p.add_argument("--interval-max", type=float, default=10.0,
                   help="drop-bytes, chaos: longest time between faults, s (default %(default)s)")
    p.add_argument("--drop-min", type=int, default=100,
                   help="drop-bytes, chaos: fewest bytes dropped at once (default %(default)s)")
    p.add_argument("--drop-max", type=int, default=1000,
                   help="drop-bytes, chaos: most bytes dropped at once (default %(default)s)")
    p.add_argument("--after", type=float, default=3.0,
                   help="stall, reset: seconds after PLAY before the fault (default %(default)s)")
    p.add_argument("--stall", type=float, default=5.0,
                   help="stall: seconds without reading from the server (default %(default)s)")
    p.add_argument("--sdp", default=None,
                   help="bad-sdp: the body to send instead of the SDP; the escapes \\r, \\n "
                   "and \\\\ are understood (default %r)" % BAD_SDP.decode())
    p.add_argument("--fault-connections", type=int, default=0,
                   help="inject faults only into the first N connections, relay later ones "
                   "plainly (default 0: every connection)")
    args = p.parse_args(argv)
    if not 0 <= args.listen_port < 65536:
        p.error("--listen-port must be between 0 and 65535")
    if not 0 < args.target_port < 65536:
        p.error("--target-port must be between 1 and 65535")
    if not 0 < args.interval_min <= args.interval_max:
        p.error("need 0 < --interval-min <= --interval-max")
    if not 0 < args.drop_min <= args.drop_max:
        p.error("need 0 < --drop-min <= --drop-max")
    if args.after < 0 or args.stall < 0:
        p.error("--after and --stall must not be negative")
    if args.fault_connections < 0:
        p.error("--fault-connections must not be negative")
    if args.sdp is None:
        args.sdp = BAD_SDP
    else:
        try:
            args.sdp = unescape(args.sdp)
        except ValueError as e:
            p.error("--sdp: %s" % e)
    return args


def unescape(text):
    """Bytes for text with the escapes \\r, \\n and \\\\ replaced."""
    out = bytearray()
    chars = iter(text)
    for c in chars:
        if c != "\\":
            out += c.encode("utf-8")
            continue
        e = next(chars, "")
        if e == "r":
            out += b"\r"
        elif e == "n":
            out += b"\n"
        elif e == "\\":
            out += b"\\"
        else:
            raise ValueError("unknown escape \\%s" % e)
    return bytes(out)


# --- RTSP stream tokenizer ----------------------------------------------------------------

class Message:
    """One unit of an RTSP-over-TCP stream.

    kind is "frame" (interleaved "$" frame), "text" (RTSP request or response),
    or "raw" (bytes passed through without being understood: stray CR/LF between
    messages, or everything after the tokenizer lost track of the stream).
    """

    __slots__ = ("kind", "data", "channel", "start_line", "headers", "header_len")

    def __init__(self, kind, data, channel=None, start_line=None, headers=None, header_len=0):
        self.kind = kind
        self.data = data
        self.channel = channel
        self.start_line = start_line
        self.headers = headers or {}
        self.header_len = header_len

    @property
    def payload_len(self):
        return len(self.data) - 4 if self.kind == "frame" else 0

    @property
    def body(self):
        return self.data[self.header_len:]

    @property
    def is_response(self):
        return self.kind == "text" and self.start_line.startswith("RTSP/")

    @property
    def status(self):
        """Status code of a response, else None."""
        if not self.is_response:
            return None
        parts = self.start_line.split(" ", 2)
        return int(parts[1])

    @property
    def method(self):
        """Method of a request, else None."""
        if self.kind != "text" or self.is_response:
            return None
        return self.start_line.split(" ", 1)[0]

    @property
    def cseq(self):
        return self.headers.get("cseq")


class Tokenizer:
    """Splits an RTSP-over-TCP byte stream into Messages.

    Interleaved frames are "$", channel, 16-bit big-endian length, payload.
    Text messages are a start line and headers ending in CRLF CRLF, then
    Content-Length bytes of body.  If the stream stops making sense (a start
    line that is not RTSP, headers or body over the limits), the tokenizer says
    so once through `lost` and passes everything on as "raw" from then on.
    """

    def __init__(self, name):
        self.name = name
        self.buf = bytearray()
        self.lost = None  # reason, once lost

    def feed(self, data):
        """Add bytes; return the complete Messages now available (in order)."""
        if self.lost is not None:
            return [Message("raw", bytes(data))] if data else []
        self.buf += data
        out = []
        while self.buf:  # each pass removes bytes from buf or breaks
            msg = self._next()
            if msg is None:
                break
            out.append(msg)
            if msg.kind == "raw" and self.lost is not None:
                break
        return out

    def _give_up(self, reason):
        self.lost = reason
        log("%s: lost track of the RTSP stream (%s); relaying the rest unparsed"
            % (self.name, reason))
        data = bytes(self.buf)
        self.buf.clear()
        return Message("raw", data)

    def _take(self, n):
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _next(self):
        buf = self.buf
        if buf[0] == 0x24:  # "$"
            if len(buf) < 4:
                return None
            channel, length = buf[1], struct.unpack_from(">H", buf, 2)[0]
            if len(buf) < 4 + length:
                return None
            return Message("frame", self._take(4 + length), channel=channel)
        if buf[0] in b"\r\n":
            n = 0
            while n < len(buf) and buf[n] in b"\r\n":
                n += 1
            return Message("raw", self._take(n))
        end = buf.find(b"\r\n\r\n", 0, MAX_HEADER + 4)
        if end < 0:
            # Check the start line as soon as it is complete, so garbage is noticed early.
            eol = buf.find(b"\r\n", 0, MAX_HEADER)
            if eol >= 0 and not START_LINE.match(bytes(buf[:eol])):
                return self._give_up("not an RTSP start line: %r" % bytes(buf[:min(eol, 60)]))
            if len(buf) > MAX_HEADER:
                return self._give_up("no end of headers in %d bytes" % MAX_HEADER)
            return None
        header_len = end + 4
        lines = bytes(buf[:end]).split(b"\r\n")
        if not START_LINE.match(lines[0]):
            return self._give_up("not an RTSP start line: %r" % lines[0][:60])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        try:
            body_len = int(headers.get("content-length", "0"))
        except ValueError:
            return self._give_up("bad Content-Length %r" % headers["content-length"])
        if not 0 <= body_len <= MAX_BODY:
            return self._give_up("Content-Length %d out of range" % body_len)
        if len(buf) < header_len + body_len:
            return None
        return Message("text", self._take(header_len + body_len),
                       start_line=lines[0].decode("latin-1"), headers=headers,
                       header_len=header_len)


def replace_body(msg, body):
    """The bytes of text message msg with its body replaced and Content-Length fixed."""
    head = msg.data[:msg.header_len - 4]  # without the final CRLF CRLF
    lines = head.split(b"\r\n")
    lines = [ln for ln in lines if not ln.lower().startswith(b"content-length:")]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- the proxy ----------------------------------------------------------------------------

class Counters:
    """Faults injected over the proxy's life, by kind."""

    def __init__(self):
        self.counts = {}

    def next(self, kind):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return self.counts[kind]


class Connection:
    """One client connection and its connection to the target."""

    def __init__(self, proxy, cid, creader, cwriter):
        self.proxy = proxy
        self.args = proxy.args
        self.cid = cid
        self.creader, self.cwriter = creader, cwriter
        self.sreader = self.swriter = None
        faulted = self.args.fault_connections == 0 or cid <= self.args.fault_connections
        self.mode = self.args.mode if faulted else "pass"
        seed = None if self.args.seed is None else "%d:%d" % (self.args.seed, cid)
        self.rng = random.Random(seed)
        self.requests = {}             # CSeq -> method, for requests not answered yet
        self.playing = asyncio.Event()  # set once PLAY is answered or media flows
        self.flowing = asyncio.Event()  # cleared while stalled
        self.flowing.set()
        self.bytes_up = self.bytes_down = 0   # client->server, server->client (as sent)
        self.server_offset = 0                # server->client bytes received from the server
        self.drop_left = 0                    # bytes still to drop from the client's stream
        self.dropped = 0                      # bytes dropped so far
        self.next_drop = None                 # monotonic time of the next drop
        self.abort_client = False

    def log(self, msg):
        log("conn %d: %s" % (self.cid, msg))

    def count(self, kind):
        return self.proxy.counters.next(kind)

    async def run(self):
        peer = self.cwriter.get_extra_info("peername")
        self.log("client %s:%d connected (mode %s)" % (peer[0], peer[1], self.mode))
        reason = "?"
        tasks = []
        try:
            if self.mode == "bad-rtsp":
                reason = await self.answer_garbage()
                return
            try:
                self.sreader, self.swriter = await asyncio.wait_for(
                    asyncio.open_connection(self.args.target_host, self.args.target_port),
                    CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as e:
                reason = "cannot connect to %s:%d: %s" % (
                    self.args.target_host, self.args.target_port, str(e) or "timed out")
                return
            up = asyncio.ensure_future(self.pump_up())
            down = asyncio.ensure_future(self.pump_down())
            ends = {up, down}
            tasks = [up, down]
            if self.mode == "stall":
                tasks.append(asyncio.ensure_future(self.stall_timer()))
            elif self.mode == "reset":
                timer = asyncio.ensure_future(self.reset_timer())
                tasks.append(timer)
                ends.add(timer)
            elif self.mode == "chaos":
                timer = asyncio.ensure_future(self.chaos_timer())
                tasks.append(timer)
                ends.add(timer)
            done, _ = await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            reason = "; ".join(sorted(self.ending(t) for t in done))
        except asyncio.CancelledError:
            reason = "proxy stopping"
            raise
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                try:
                    await t
                except BaseException:  # cancelled, or already reported by ending()
                    pass
            self.close()
            dropped = " (%d dropped)" % self.dropped if self.mode in ("drop-bytes", "chaos") else ""
            self.log("closed (%s); %d bytes client->server, %d bytes server->client%s"
                     % (reason, self.bytes_up, self.bytes_down, dropped))

    @staticmethod
    def ending(task):
        if task.cancelled():
            return "cancelled"
        e = task.exception()
        if e is not None:
            return "%s: %s" % (type(e).__name__, e)
        return task.result()

    def close(self):
        if self.abort_client:
            # SO_LINGER on, timeout 0: close() sends RST instead of FIN.
            sock = self.cwriter.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            self.cwriter.transport.abort()
        else:
            self.cwriter.close()
        if self.swriter is not None:
            self.swriter.close()

    # --- client -> server: relay as is, remember which request each CSeq was ---------------

    async def pump_up(self):
        tok = Tokenizer("conn %d client->server" % self.cid)
        while True:  # ends at EOF or on a socket error
            try:
                data = await self.creader.read(READ_SIZE)
            except OSError as e:
                return "reading from the client: %s" % (e.strerror or e)
            if not data:
                return "client closed"
            for msg in tok.feed(data):
                if msg.kind == "text":
                    method = msg.method
                    if method is None:
                        self.log("client sent a response: %s" % msg.start_line)
                        continue
                    self.requests[msg.cseq] = method
                    self.log("request %s (CSeq %s)" % (method, msg.cseq))
            self.swriter.write(data)
            self.bytes_up += len(data)
            try:
                await self.swriter.drain()
            except OSError as e:
                return "writing to the server: %s" % (e.strerror or e)

    # --- server -> client: parse, inject faults, relay ---------------------------------------

    async def pump_down(self):
        tok = Tokenizer("conn %d server->client" % self.cid)
        while True:  # ends at EOF, on a socket error, or when a fault ends the connection
            await self.flowing.wait()
            try:
                data = await self.sreader.read(READ_SIZE)
            except OSError as e:
                return "reading from the server: %s" % (e.strerror or e)
            if not data:
                return "server closed"
            out = []
            end = None
            for msg in tok.feed(data):
                end = self.on_server_message(msg, out)
                if end is not None:
                    break
            await self.flowing.wait()
            try:
                await self.send(out)
            except OSError as e:
                return "writing to the client: %s" % (e.strerror or e)
            if end is not None:
                return end

    async def send(self, chunks):
        for chunk in chunks:
            if chunk:
                self.cwriter.write(chunk)
                self.bytes_down += len(chunk)
        await self.cwriter.drain()

    def on_server_message(self, msg, out):
        """Append what to send for msg to out; return a reason to end the connection, or None."""
        offset = self.server_offset
        self.server_offset += len(msg.data)
        if msg.kind == "frame" and not self.playing.is_set():
            self.start_playing("first interleaved frame from the server")
        method = None
        if msg.kind == "text":
            if msg.is_response:
                method = self.requests.pop(msg.cseq, None)
                self.log("response %s to %s (CSeq %s)" % (msg.start_line, method, msg.cseq))
            else:
                self.log("server sent request %s (CSeq %s)" % (msg.method, msg.cseq))
        ok = msg.status is not None and 200 <= msg.status < 300

        if method == "DESCRIBE" and ok and self.mode == "bad-sdp":
            n = self.count("bad-sdp")
            self.log("bad-sdp #%d: replaced the %d-byte SDP with %r"
                     % (n, len(msg.body), self.args.sdp))
            out.append(replace_body(msg, self.args.sdp))
            return None
        if method == "DESCRIBE" and ok and self.mode == "close-mid-describe":
            half = len(msg.data) // 2
            n = self.count("close-mid-describe")
            self.log("close-mid-describe #%d: sent %d of the %d bytes of the DESCRIBE "
                     "response, closing" % (n, half, len(msg.data)))
            out.append(msg.data[:half])
            return "close-mid-describe fault"

        if self.mode in ("drop-bytes", "chaos"):
            self.drop_bytes(msg, offset, out)
        else:
            out.append(msg.data)
        if method == "PLAY" and ok and not self.playing.is_set():
            self.start_playing("PLAY answered")
        return None

    def start_playing(self, why):
        self.log("playing (%s)" % why)
        self.playing.set()
        if self.mode == "drop-bytes":
            self.next_drop = time.monotonic() + self.rng.uniform(
                self.args.interval_min, self.args.interval_max)

    def drop_bytes(self, msg, offset, out):
        data = msg.data
        if (self.drop_left == 0 and self.next_drop is not None and msg.kind == "frame"
                and msg.payload_len >= MIN_CUT_PAYLOAD and time.monotonic() >= self.next_drop):
            size = self.rng.randint(self.args.drop_min, self.args.drop_max)
            cut = self.rng.randint(1, msg.payload_len - 1)  # bytes of payload kept
            n = self.count("drop-bytes")
            self.log("drop-bytes #%d: dropping %d bytes at server stream offset %d, %d bytes "
                     "into the %d-byte payload of a $ frame on channel %d%s"
                     % (n, size, offset + 4 + cut, cut, msg.payload_len, msg.channel,
                        "" if size <= msg.payload_len - cut else " (and into what follows)"))
            out.append(data[:4 + cut])
            data = data[4 + cut:]
            self.drop_left = size
            # In chaos mode the timer schedules the next fault, whichever it is.
            self.next_drop = None if self.mode == "chaos" else time.monotonic() + self.rng.uniform(
                self.args.interval_min, self.args.interval_max)
        if self.drop_left:
            skip = min(self.drop_left, len(data))
            self.drop_left -= skip
            self.dropped += skip
            data = data[skip:]
        out.append(data)

    async def stall_timer(self):
        await self.playing.wait()
        await asyncio.sleep(self.args.after)
        n = self.count("stall")
        self.log("stall #%d: not reading from the server for %.1f s"
                 % (n, self.args.stall))
        self.flowing.clear()
        t0 = time.monotonic()
        try:
            await asyncio.sleep(self.args.stall)
        finally:
            self.flowing.set()
        self.log("stall #%d: resuming after %.1f s" % (n, time.monotonic() - t0))

    async def chaos_timer(self):
        """Injects one fault at random every interval; returns to end the connection on reset."""
        await self.playing.wait()
        kinds = [kind for kind, weight in CHAOS_FAULTS for _ in range(weight)]
        while True:
            await asyncio.sleep(self.rng.uniform(self.args.interval_min, self.args.interval_max))
            kind = self.rng.choice(kinds)
            if kind == "drop-bytes":
                self.next_drop = time.monotonic()  # the next large enough frame is cut
            elif kind == "stall":
                seconds = self.rng.uniform(*CHAOS_STALL)
                n = self.count("stall")
                self.log("stall #%d: not reading from the server for %.1f s" % (n, seconds))
                self.flowing.clear()
                try:
                    await asyncio.sleep(seconds)
                finally:
                    self.flowing.set()
            else:
                n = self.count("reset")
                self.log("reset #%d: resetting the client connection (RST), closing the "
                         "server's" % n)
                self.abort_client = True
                return "reset fault"

    async def reset_timer(self):
        await self.playing.wait()
        await asyncio.sleep(self.args.after)
        n = self.count("reset")
        self.log("reset #%d: resetting the client connection (RST), closing the server's"
                 % n)
        self.abort_client = True
        return "reset fault"

    # --- bad-rtsp ----------------------------------------------------------------------------

    async def answer_garbage(self):
        try:
            request = await asyncio.wait_for(self.creader.readuntil(b"\r\n\r\n"),
                                             FIRST_REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            return "no request from the client in %.0f s" % FIRST_REQUEST_TIMEOUT
        except asyncio.IncompleteReadError:
            return "client closed before a whole request"
        except asyncio.LimitOverrunError:
            return "client request headers too long"
        self.bytes_up += len(request)
        first = request.split(b"\r\n", 1)[0][:80].decode("latin-1")
        garbage = GARBAGE_HEAD + self.rng.randbytes(GARBAGE_RANDOM_BYTES)
        n = self.count("bad-rtsp")
        self.log("bad-rtsp #%d: answering %r with %d bytes of garbage, closing"
                 % (n, first, len(garbage)))
        try:
            await self.send([garbage])
        except OSError as e:
            return "writing to the client: %s" % (e.strerror or e)
        return "bad-rtsp fault"


class Proxy:
    def __init__(self, args):
        self.args = args
        self.counters = Counters()
        self.ids = itertools.count(1)
        self.tasks = set()

    async def on_client(self, reader, writer):
        conn = Connection(self, next(self.ids), reader, writer)
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await conn.run()
        except asyncio.CancelledError:
            pass
        except Exception as e:  # a bug here must not take the whole proxy down
            conn.log("error: %s: %s" % (type(e).__name__, e))
            conn.close()
        finally:
            self.tasks.discard(task)


async def serve(args):
    proxy = Proxy(args)
    try:
        server = await asyncio.start_server(proxy.on_client, "127.0.0.1", args.listen_port)
    except OSError as e:
        log("cannot listen on 127.0.0.1:%d: %s" % (args.listen_port, e))
        return 1
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log("mode %s, 127.0.0.1:%d -> %s:%d" % (args.mode, port, args.target_host, args.target_port))
    print("READY 127.0.0.1:%d" % port, flush=True)
    await stop.wait()
    log("signal received, stopping")
    server.close()
    tasks = list(proxy.tasks)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()
    summary = ", ".join("%s %d" % kv for kv in sorted(proxy.counters.counts.items()))
    log("stopped; faults injected: %s" % (summary or "none"))
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
