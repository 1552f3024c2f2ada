#!/usr/bin/python3
"""Stand-alone RTSP server that behaves like an IP camera, for Lookout's tests.

It serves one live H.264 stream (a moving test pattern with a clock overlay)
through GStreamer's RTSP server library.  All clients share one encoder.

With --barcode the raw pictures come instead from an appsrc fed by this script
(numpy-generated I420 frames, paced in real time).  Each frame carries its
capture wall-clock time and its frame number in Lookout's machine-readable
barcode (src/source/testpattern/barcode.rs, web/barcode.js), so a viewer can
measure glass-to-glass latency and count lost frames.

Once the server socket is listening, exactly one line is written to stdout:

    READY rtsp://ADDRESS:PORT/PATH

Everything else goes to stderr.  SIGTERM or SIGINT stops the server.

Needs the Debian packages python3-gi, gir1.2-gst-rtsp-server-1.0 and the
GStreamer plugin sets (base, good, ugly for x264enc, bad for h264parse);
--barcode also needs python3-numpy.
"""

import argparse
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PROFILES = ("high", "main", "constrained-baseline")
# x264's ultrafast preset switches off CABAC and the 8x8 transform, which makes
# x264 signal Constrained Baseline whatever profile the caps ask for.  Turn the
# features back on so the stream really carries the requested profile.
PROFILE_FEATURES = {
    "high": " cabac=true dct8x8=true",
    "main": " cabac=true",
    "constrained-baseline": "",
}
PATTERNS = ("ball", "smpte", "snow", "pinwheel", "spokes", "gradient", "circular")
ROLE = "camera-user"
# Name of the appsrc in the --barcode pipeline.
BARCODE_SRC = "barcodesrc"


def log(msg):
    # One write per line: with --barcode, feeder threads log too.
    sys.stderr.write("rtsp_camera: " + msg + "\n")
    sys.stderr.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Serve a live H.264 test stream over RTSP, like an IP camera."
    )
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--session-timeout", type=int, default=0,
                   help="seconds a session lives without a request or RTCP from its client, "
                   "announced in the Session header and enforced (default: GStreamer's 60)")
    p.add_argument("--address", default="127.0.0.1", help="bind address (default %(default)s)")
    p.add_argument("--path", default="test", help="mount point name (default %(default)s)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30, help="frames per second (default %(default)s)")
    p.add_argument("--keyint", type=int, default=30,
                   help="frames between keyframes (default %(default)s)")
    p.add_argument("--ignore-keyframe-requests", action="store_true",
                   help="ignore RTCP PLI/FIR, as most cheap cameras do: keyframes come only "
                   "every --keyint frames")
    p.add_argument("--bitrate", type=int, default=2000, help="kbit/s (default %(default)s)")
    p.add_argument("--profile", choices=PROFILES, default="high",
                   help="H.264 profile (default %(default)s)")
    p.add_argument("--pattern", choices=PATTERNS, default=None,
                   help="videotestsrc pattern (default ball; not with --barcode)")
    p.add_argument("--no-clock", action="store_true", help="do not draw the clock overlay")
    p.add_argument("--barcode", action="store_true",
                   help="generate the pictures in Python, each carrying its capture time and "
                   "frame number in Lookout's barcode strips (instead of videotestsrc)")
    p.add_argument("--auth", choices=("none", "basic", "digest"), default="none",
                   help="authentication scheme required from clients (default %(default)s)")
    p.add_argument("--user", default="user", help="user name for --auth (default %(default)s)")
    p.add_argument("--password", default="pass",
                   help="password for --auth (default %(default)s)")
    p.add_argument("--protocols", choices=("tcp", "udp", "both"), default="both",
                   help="allowed RTP lower transports (default %(default)s)")
    p.add_argument("--audio", choices=("none",) + tuple(AUDIO_BRANCHES), default="none",
                   help="also serve an audio track of a 440 Hz tone: G.711, AAC or Opus "
                   "(default %(default)s)")
    p.add_argument("--audio-rate", type=int, default=None,
                   help="the audio's sample rate (default: 8000 for G.711, which allows no "
                   "other, 16000 for AAC as many cameras send it, 48000 for Opus)")
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error("--port must be between 1 and 65535")
    for name in ("width", "height", "fps", "keyint", "bitrate"):
        if getattr(args, name) <= 0:
            p.error("--%s must be positive" % name)
    if args.barcode:
        if args.pattern is not None:
            p.error("--pattern does not apply to --barcode")
        if args.width < BARCODE_BITS:
            p.error("--barcode needs --width of at least %d" % BARCODE_BITS)
        if args.height < 2 * barcode_block_size(args.width, args.height)[1]:
            p.error("--barcode needs --height of at least 16")
    elif args.pattern is None:
        args.pattern = "ball"
    if args.audio != "none":
        rates = AUDIO_BRANCHES[args.audio][3]
        if args.audio_rate is None:
            args.audio_rate = rates[0]
        elif args.audio_rate not in rates:
            p.error("--audio-rate for %s: one of %s" % (args.audio, ", ".join(map(str, rates))))
    args.path = "/" + args.path.strip("/")
    if args.path == "/":
        p.error("--path must not be empty")
    return args


def build_pipeline(args):
    """The launch line handed to the media factory (without the outer parentheses)."""
    if args.barcode:
        parts = [
            # Fed by BarcodeFeeder.  A short leaky queue: if the encoder stalls, the oldest
            # pictures are dropped (as a camera would) instead of piling up in memory.
            "appsrc name=%s is-live=true format=time do-timestamp=true "
            "max-bytes=0 max-buffers=%d leaky-type=downstream "
            'caps="%s"' % (BARCODE_SRC, max(2, args.fps // 2), barcode_caps_string(args)),
        ]
    else:
        parts = [
            "videotestsrc is-live=true pattern=%s" % args.pattern,
            "video/x-raw,width=%d,height=%d,framerate=%d/1" % (args.width, args.height, args.fps),
        ]
        if not args.no_clock:
            parts.append('clockoverlay time-format="%H:%M:%S" shaded-background=true')
    parts += [
        "videoconvert",
        # threads=1 and sliced-threads=false: exactly one slice per picture.
        "x264enc name=enc tune=zerolatency speed-preset=ultrafast threads=1 sliced-threads=false "
        "key-int-max=%d bitrate=%d" % (args.keyint, args.bitrate)
        + PROFILE_FEATURES[args.profile],
        "video/x-h264,profile=%s" % args.profile,
        # SPS/PPS are repeated before every IDR by the parser, not the payloader
        # (rtph264pay config-interval=-1 mishandles multi-slice IDRs in 1.22).
        "h264parse config-interval=-1",
        "rtph264pay name=pay0 pt=96 config-interval=0",
    ]
    launch = " ! ".join(parts)
    if args.audio != "none":
        encoder, payloader, payload_type, _rates = AUDIO_BRANCHES[args.audio]
        # 20 ms buffers, as cameras packetize G.711: bigger ones add their length to the
        # pipeline latency, and the camera's sender reports shift by as much.
        launch += (" audiotestsrc is-live=true wave=sine freq=440 samplesperbuffer=%d ! audio/x-raw,rate=%d,channels=1"
                   " ! %s ! %s name=pay1 pt=%d" % (args.audio_rate // 50, args.audio_rate, encoder, payloader, payload_type))
    return launch


# Audio: encoder, payloader, payload type and the sample rates allowed (the default first).
AUDIO_BRANCHES = {
    "pcmu": ("mulawenc", "rtppcmupay", 0, (8000,)),
    "pcma": ("alawenc", "rtppcmapay", 8, (8000,)),
    # AAC-LC in RTP as mpeg4-generic (RFC 3640), at a camera's bitrate (gstreamer1.0-libav).
    "aac": ("avenc_aac bitrate=48000", "rtpmp4gpay", 97, (16000, 8000, 22050, 32000, 44100, 48000)),
    "opus": ("opusenc frame-size=20", "rtpopuspay", 97, (48000, 8000, 12000, 16000, 24000)),
}


# --- --barcode: pictures generated here, stamped with Lookout's barcode -------------------
#
# Keep in step with src/source/testpattern/barcode.rs and web/barcode.js.  Two strips at the
# top of the luma plane, BARCODE_BITS blocks each, most significant bit first: 32 data bits
# then an 8-bit check; white (235) is 1, black (16) is 0.  Strip 0 carries the low 32 bits of
# the Unix time in ms when the picture was made, strip 1 the frame number.

BARCODE_BITS = 40
BARCODE_CHECK_SALT = 0x5A
LUMA_BLACK = 16
LUMA_WHITE = 235
CHROMA_NEUTRAL = 128


def barcode_block_size(width, height):
    """(block width, block height) in pixels for a picture of this size."""
    return width // BARCODE_BITS, max(8, height // 24)


def barcode_encode(value):
    """The 40-bit code for a 32-bit value: the value, then its check byte."""
    value &= 0xFFFFFFFF
    check = (sum(value.to_bytes(4, "big")) & 0xFF) ^ BARCODE_CHECK_SALT
    return (value << 8) | check


def barcode_caps_string(args):
    return "video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1,pixel-aspect-ratio=1/1" % (
        args.width, args.height, args.fps)


class BarcodePainter:
    """Paints I420 pictures: moving stripes over colour bars, a moving box, the two strips.

    Everything that does not depend on the frame number is computed once, so a picture
    costs a few array copies.  paint() only reads shared state, so one painter can serve
    more than one media (an old one still stopping while a new one starts).
    """

    STRIPE = 8     # stripe width in pixels; the pattern repeats every 2 * STRIPE
    STEP = 4       # pixels the stripes move right per frame
    BOX_STEP = 6   # pixels the box moves sideways per frame

    def __init__(self, args):
        global np
        try:
            import numpy as np
        except ImportError:
            raise SystemExit("rtsp_camera: --barcode needs numpy (Debian: python3-numpy)")
        gi.require_version("GstVideo", "1.0")
        from gi.repository import GstVideo

        w, h = self.width, self.height = args.width, args.height
        self.fps = args.fps
        # GStreamer's own layout for I420 (rows padded to 4 bytes, odd sizes rounded up).
        info = GstVideo.VideoInfo.new_from_caps(Gst.Caps.from_string(barcode_caps_string(args)))
        self.size = info.size
        self.offsets = [info.offset[i] for i in range(3)]
        self.strides = [info.stride[i] for i in range(3)]
        self.block_w, self.block_h = barcode_block_size(w, h)

        self.template = np.zeros(self.size, np.uint8)
        y, u, v = self.planes(self.template)
        # Colour bars in the chroma planes, neutral under the strips (2 * block_h luma rows
        # are block_h chroma rows) so colour does not tint the blocks.
        bars = np.array([(128, 128), (44, 142), (156, 44), (72, 58),
                         (184, 198), (212, 114), (100, 212), (128, 128)], np.uint8)
        chroma_w = u.shape[1]
        bar = np.arange(chroma_w) * len(bars) // chroma_w
        u[:] = bars[bar, 0]
        v[:] = bars[bar, 1]
        u[: self.block_h] = CHROMA_NEUTRAL
        v[: self.block_h] = CHROMA_NEUTRAL

        # Diagonal stripes plus a horizontal ramp; the stripes move STEP pixels a frame, so
        # there are 2 * STRIPE / STEP distinct luma planes.  Precompute them all.
        period = 2 * self.STRIPE
        diagonal = np.arange(w)[None, :] + np.arange(h)[:, None] + period
        ramp = np.arange(w) * 64 // w
        self.luma_phases = [
            (60 + ((diagonal - shift) // self.STRIPE % 2) * 40 + ramp).astype(np.uint8)
            for shift in range(0, period, self.STEP)
        ]
        self.box = max(1, h // 6)
        self.strip_cols = BARCODE_BITS * self.block_w
        self.bit_shifts = list(range(BARCODE_BITS - 1, -1, -1))

    def planes(self, frame):
        """Views of the Y, U and V planes (without row padding) inside a frame buffer."""
        w, h = self.width, self.height
        sizes = ((w, h), ((w + 1) // 2, (h + 1) // 2), ((w + 1) // 2, (h + 1) // 2))
        views = []
        for (pw, ph), offset, stride in zip(sizes, self.offsets, self.strides):
            views.append(frame[offset: offset + stride * ph].reshape(ph, stride)[:, :pw])
        return views

    def strip(self, code):
        """One row of the strip for a 40-bit code: block_w pixels per bit."""
        levels = np.array([LUMA_WHITE if code >> s & 1 else LUMA_BLACK for s in self.bit_shifts],
                          np.uint8)
        return np.repeat(levels, self.block_w)

    def paint(self, frame_number, capture_ms):
        """The I420 picture (bytes) for this frame number and capture time."""
        w, h, bh = self.width, self.height, self.block_h
        frame = self.template.copy()
        y = self.planes(frame)[0]
        y[:] = self.luma_phases[frame_number % len(self.luma_phases)]

        # A box bouncing sideways and, more slowly, up and down below the strips.
        size = self.box
        travel = max(1, w - size)
        pos = frame_number * self.BOX_STEP % (2 * travel)
        left = pos if pos < travel else 2 * travel - pos
        vtravel = max(1, h - 2 * bh - size)
        vpos = frame_number * 2 % (2 * vtravel)
        top = 2 * bh + (vpos if vpos < vtravel else 2 * vtravel - vpos)
        y[top: top + size, left: left + size] = LUMA_WHITE

        y[0:bh, : self.strip_cols] = self.strip(barcode_encode(capture_ms))
        y[bh: 2 * bh, : self.strip_cols] = self.strip(barcode_encode(frame_number))
        return frame.tobytes()


# Feeders still running, so main() can stop them before the interpreter exits.
FEEDERS = set()


class BarcodeFeeder:
    """Pushes one picture every 1/fps seconds into the appsrc of one media, from a thread.

    The schedule is start + n/fps (no drift).  If the thread falls more than a frame behind,
    the missed slots are skipped rather than caught up in a burst, as a camera drops frames.
    The frame counter counts the pictures appsrc accepted, starting at 0 for each media.
    """

    def __init__(self, appsrc, painter, fps):
        self.appsrc = appsrc
        self.painter = painter
        self.fps = fps
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="barcode-feeder", daemon=True)

    def start(self):
        FEEDERS.add(self)
        self.thread.start()

    def stop(self, *_ignored):
        """Ask the thread to end; safe from any thread, more than once."""
        self.stopping.set()

    def run(self):
        period = 1.0 / self.fps
        start = time.monotonic()
        slot = frames = skipped = 0
        refused = set()
        try:
            while not self.stopping.is_set():
                late = time.monotonic() - (start + slot * period)
                if late < 0:
                    if self.stopping.wait(-late):
                        break
                elif late >= period:
                    missed = int(late / period)
                    slot += missed
                    skipped += missed
                capture_ms = int(time.time() * 1000) & 0xFFFFFFFF
                data = self.painter.paint(frames & 0xFFFFFFFF, capture_ms)
                ret = self.appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(data))
                if ret == Gst.FlowReturn.OK:
                    frames += 1
                elif ret != Gst.FlowReturn.FLUSHING and ret not in refused:
                    # FLUSHING is normal before the media is prepared and while it stops.
                    refused.add(ret)
                    log("appsrc refused a picture: %s" % ret.value_nick)
                slot += 1
        finally:
            elapsed = time.monotonic() - start
            rate = " (%.2f/s)" % (frames / elapsed) if elapsed >= 1 else ""
            log("barcode feeder stopped: %d frames in %.1f s%s, %d slots skipped"
                % (frames, elapsed, rate, skipped))
            self.appsrc = None
            FEEDERS.discard(self)


def make_auth(args):
    """An RTSPAuth that admits only the configured user, or None for --auth none."""
    if args.auth == "none":
        return None
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    # set_string, not writable_structure(): PyGObject hands out a copy of the
    # structure, so changes made through it would be lost.
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
    if args.auth == "basic":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    else:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(args.user, args.password, token)
    # No default token: requests without valid credentials are answered 401.
    return auth


def make_factory(args, launch, painter=None):
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( " + launch + " )")
    factory.set_shared(True)
    protocols = {
        "tcp": GstRtsp.RTSPLowerTrans.TCP,
        "udp": GstRtsp.RTSPLowerTrans.UDP,
        "both": GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP,
    }[args.protocols]
    factory.set_protocols(protocols)
    if args.auth != "none":
        perms = Gst.Structure.new_from_string(
            "%s, %s=(boolean)true, %s=(boolean)true"
            % (
                ROLE,
                GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
                GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
            )
        )
        factory.add_role_from_structure(perms)
    factory.connect("media-configure", on_media_configure, painter, args.ignore_keyframe_requests)
    return factory


def refuse_seeking(_pad, info):
    """Answer SEEKING queries from downstream with "not seekable".

    videotestsrc claims to be seekable even when live.  The RTSP server then
    honours every PLAY "Range: npt=0-" with a flushing seek on the shared
    pipeline, which restarts the timestamps of every client already watching.
    A real camera cannot seek, so say so and the server skips the seek.

    The query is answered as it arrives: a fresh SEEKING query already reads
    "seekable=false", and from Python it cannot be modified anyway (the binding
    holds a second reference, so the query is not writable).  Returning HANDLED
    stops it here and reports it as answered.
    """
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


def drop_keyframe_requests(_pad, info):
    """Drops the force-key-unit events that the server makes of clients' PLI and FIR."""
    event = info.get_event()
    structure = event.get_structure() if event is not None else None
    if structure is not None and structure.get_name() == "GstForceKeyUnit":
        log("keyframe request ignored")
        return Gst.PadProbeReturn.DROP
    return Gst.PadProbeReturn.OK


def on_media_configure(_factory, media, painter, ignore_keyframe_requests):
    log("media constructed (shared encoder started)")
    bin_ = media.get_element()
    if ignore_keyframe_requests:
        encoder = bin_.get_by_name("enc")
        encoder.get_static_pad("src").add_probe(Gst.PadProbeType.EVENT_UPSTREAM,
                                                drop_keyframe_requests)
    # Every payloader refuses seeking, or PLAY with a Range fails with 503 (a live source).
    for name in ("pay0", "pay1"):
        pay = bin_.get_by_name(name)
        if pay is not None:
            pay.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, refuse_seeking)
    media.connect("unprepared", lambda _m: log("media unprepared (encoder stopped)"))
    if painter is not None:
        # Each construction of the shared media (the first client, or the first after all
        # had left) has a new appsrc: give it its own feeder, stopped with the media.
        feeder = BarcodeFeeder(bin_.get_by_name(BARCODE_SRC), painter, painter.fps)
        media.connect("unprepared", feeder.stop)
        media.weak_ref(feeder.stop)  # in case it is dropped without being unprepared
        feeder.start()


# RTSP connections open now, told on stdout as "CLIENTS N" whenever the number changes, so that
# a test can see when (and how often) a client such as Lookout connects.
open_clients = 0


def count_clients(change):
    global open_clients
    open_clients += change
    print("CLIENTS %d" % open_clients, flush=True)


def on_client_connected(_server, client, session_timeout):
    conn = client.get_connection()
    ip = conn.get_ip() if conn is not None else "?"
    log("client connected from %s" % ip)
    count_clients(1)

    def on_closed(_c):
        log("client from %s closed" % ip)
        count_clients(-1)

    client.connect("closed", on_closed)
    if session_timeout:
        client.connect("new-session", lambda _c, session: session.set_timeout(session_timeout))
    for request in ("options", "get-parameter"):
        name = request.upper().replace("-", "_")
        client.connect(request + "-request",
                       lambda _c, _ctx, name=name: log("%s request from %s" % (name, ip)))


def expire_sessions(server):
    """Ends the sessions whose clients stopped refreshing them (GStreamer only does on request)."""
    removed = server.get_session_pool().cleanup()
    if removed:
        log("%d session(s) expired: no keepalive within their timeout" % removed)
    return GLib.SOURCE_CONTINUE


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    Gst.init(None)

    launch = build_pipeline(args)
    log("pipeline: " + launch)
    painter = BarcodePainter(args) if args.barcode else None

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    auth = make_auth(args)
    if auth is not None:
        server.set_auth(auth)
    server.get_mount_points().add_factory(args.path, make_factory(args, launch, painter))
    server.connect("client-connected", on_client_connected, args.session_timeout)
    GLib.timeout_add_seconds(1, expire_sessions, server)

    loop = GLib.MainLoop()
    try:
        source_id = server.attach(None)
    except GLib.Error as e:
        log("cannot listen on %s:%d: %s" % (args.address, args.port, e.message))
        return 1
    if source_id == 0:
        log("cannot listen on %s:%d (port in use or address not available)"
            % (args.address, args.port))
        return 1

    def on_signal(signame):
        log("%s received, stopping" % signame)
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_signal, "SIGTERM")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_signal, "SIGINT")

    url = "rtsp://%s:%d%s" % (args.address, server.get_bound_port(), args.path)

    def announce():
        print("READY " + url, flush=True)
        return GLib.SOURCE_REMOVE

    GLib.idle_add(announce)
    loop.run()

    GLib.Source.remove(source_id)
    # Shut down sessions so shared media pipelines go to NULL before exit.
    pool = server.get_session_pool()
    if pool is not None:
        pool.filter(lambda _pool, _session: GstRtspServer.RTSPFilterResult.REMOVE)
    for feeder in list(FEEDERS):
        feeder.stop()
        feeder.thread.join(2)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
