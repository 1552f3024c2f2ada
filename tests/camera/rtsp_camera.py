#!/usr/bin/python3
"""Stand-alone RTSP server that behaves like an IP camera, for Lookout's tests.

It serves one live H.264 stream (a moving test pattern with a clock overlay)
through GStreamer's RTSP server library.  All clients share one encoder.

Once the server socket is listening, exactly one line is written to stdout:

    READY rtsp://ADDRESS:PORT/PATH

Everything else goes to stderr.  SIGTERM or SIGINT stops the server.

Needs the Debian packages python3-gi, gir1.2-gst-rtsp-server-1.0 and the
GStreamer plugin sets (base, good, ugly for x264enc, bad for h264parse).
"""

import argparse
import signal
import sys

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


def log(msg):
    print("rtsp_camera: " + msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Serve a live H.264 test stream over RTSP, like an IP camera."
    )
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--address", default="127.0.0.1", help="bind address (default %(default)s)")
    p.add_argument("--path", default="test", help="mount point name (default %(default)s)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30, help="frames per second (default %(default)s)")
    p.add_argument("--keyint", type=int, default=30,
                   help="frames between keyframes (default %(default)s)")
    p.add_argument("--bitrate", type=int, default=2000, help="kbit/s (default %(default)s)")
    p.add_argument("--profile", choices=PROFILES, default="high",
                   help="H.264 profile (default %(default)s)")
    p.add_argument("--pattern", choices=PATTERNS, default="ball",
                   help="videotestsrc pattern (default %(default)s)")
    p.add_argument("--no-clock", action="store_true", help="do not draw the clock overlay")
    p.add_argument("--auth", choices=("none", "basic", "digest"), default="none",
                   help="authentication scheme required from clients (default %(default)s)")
    p.add_argument("--user", default="user", help="user name for --auth (default %(default)s)")
    p.add_argument("--password", default="pass",
                   help="password for --auth (default %(default)s)")
    p.add_argument("--protocols", choices=("tcp", "udp", "both"), default="both",
                   help="allowed RTP lower transports (default %(default)s)")
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error("--port must be between 1 and 65535")
    for name in ("width", "height", "fps", "keyint", "bitrate"):
        if getattr(args, name) <= 0:
            p.error("--%s must be positive" % name)
    args.path = "/" + args.path.strip("/")
    if args.path == "/":
        p.error("--path must not be empty")
    return args


def build_pipeline(args):
    """The launch line handed to the media factory (without the outer parentheses)."""
    parts = [
        "videotestsrc is-live=true pattern=%s" % args.pattern,
        "video/x-raw,width=%d,height=%d,framerate=%d/1" % (args.width, args.height, args.fps),
    ]
    if not args.no_clock:
        parts.append('clockoverlay time-format="%H:%M:%S" shaded-background=true')
    parts += [
        "videoconvert",
        # threads=1 and sliced-threads=false: exactly one slice per picture.
        "x264enc tune=zerolatency speed-preset=ultrafast threads=1 sliced-threads=false "
        "key-int-max=%d bitrate=%d" % (args.keyint, args.bitrate)
        + PROFILE_FEATURES[args.profile],
        "video/x-h264,profile=%s" % args.profile,
        # SPS/PPS are repeated before every IDR by the parser, not the payloader
        # (rtph264pay config-interval=-1 mishandles multi-slice IDRs in 1.22).
        "h264parse config-interval=-1",
        "rtph264pay name=pay0 pt=96 config-interval=0",
    ]
    return " ! ".join(parts)


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


def make_factory(args, launch):
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
    factory.connect("media-configure", on_media_configure)
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


def on_media_configure(_factory, media):
    log("media constructed (shared encoder started)")
    pay = media.get_element().get_by_name("pay0")
    pay.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, refuse_seeking)
    media.connect("unprepared", lambda _m: log("media unprepared (encoder stopped)"))


def on_client_connected(_server, client):
    conn = client.get_connection()
    ip = conn.get_ip() if conn is not None else "?"
    log("client connected from %s" % ip)
    client.connect("closed", lambda _c: log("client from %s closed" % ip))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    Gst.init(None)

    launch = build_pipeline(args)
    log("pipeline: " + launch)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    auth = make_auth(args)
    if auth is not None:
        server.set_auth(auth)
    server.get_mount_points().add_factory(args.path, make_factory(args, launch))
    server.connect("client-connected", on_client_connected)

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
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
