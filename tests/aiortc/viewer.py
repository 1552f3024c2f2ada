#!/usr/bin/python3
"""An aiortc viewer: an independent WebRTC stack (Python, aioice, PyAV's H.264 decoder) that
receives a path from Lookout and reports what it decoded. It does no signalling of its own:
the test does it, over /ws or WHEP, and hands the descriptions over stdin and stdout, one JSON
line each.

  viewer.py --offer  [--seconds S]   prints {"offer": SDP}, reads {"answer": SDP}   (WHEP)
  viewer.py --answer [--seconds S]   reads {"offer": SDP}, prints {"answer": SDP}   (/ws)

With --video-codec NAME (VP8, say) its offer has that video codec alone, as a client without
H.264 would make.

Then it plays for S seconds from the first decoded picture and prints one JSON line: pictures
decoded, their size, decoder warnings, the receiver's packet counts, audio frames decoded and
the roles it took. It exits 0 whenever it could report, and 1 on a failure before that; every
wait is bounded, so it always ends.

Uses Debian's python3-aiortc with the system Python (/usr/bin/python3). Loopback only: aioice
gathers every interface but loopback, so it is told to use 127.0.0.1, and no STUN server.
"""

import argparse
import asyncio
import json
import logging
import sys
import time

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

# Host candidates on loopback only (aioice leaves loopback out by default).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []


class Warnings(logging.Handler):
    """Keeps aiortc's warnings; the H.264 decoder's say a picture did not decode."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []
        self.decode_failures = 0

    def emit(self, record):
        message = record.getMessage()
        if record.name.startswith("aiortc.codecs.h264"):
            self.decode_failures += 1
        if len(self.messages) < 20:
            self.messages.append(f"{record.name}: {message}")


def line_out(value):
    print(json.dumps(value), flush=True)


async def line_in(timeout):
    loop = asyncio.get_running_loop()
    text = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout)
    if not text:
        raise RuntimeError("stdin closed before the description arrived")
    return json.loads(text)


async def play_video(track, report, first_frame_timeout, seconds, started):
    deadline = None
    while True:
        now = time.monotonic()
        limit = (started + first_frame_timeout) if deadline is None else deadline
        if now >= limit:
            return
        try:
            frame = await asyncio.wait_for(track.recv(), limit - now)
        except (asyncio.TimeoutError, MediaStreamError):
            return
        report["pictures"] += 1
        report["width"], report["height"] = frame.width, frame.height
        if deadline is None:
            report["firstPictureMs"] = round((time.monotonic() - started) * 1000)
            deadline = time.monotonic() + seconds


async def play_audio(track, report):
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        report["audioFrames"] += 1


async def main():
    parser = argparse.ArgumentParser()
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--offer", action="store_true")
    role.add_argument("--answer", action="store_true")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--first-frame-timeout", type=float, default=15)
    parser.add_argument("--video-codec", help="offer this video codec alone (VP8, H264)")
    args = parser.parse_args()

    warnings = Warnings()
    logging.getLogger("aiortc").addHandler(warnings)
    logging.getLogger("aiortc").setLevel(logging.WARNING)

    report = {"pictures": 0, "width": None, "height": None, "firstPictureMs": None, "audioFrames": 0}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks = {}
    pc.on("track", lambda track: tracks.setdefault(track.kind, track))
    try:
        if args.offer:
            # As a WHEP player does: video and audio, receive only.
            video = pc.addTransceiver("video", direction="recvonly")
            if args.video_codec:
                wanted = f"video/{args.video_codec}".lower()
                video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == wanted])
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            line_out({"offer": pc.localDescription.sdp})
            answer = await line_in(15)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["answer"], type="answer"))
        else:
            offer = await line_in(15)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["offer"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            line_out({"answer": pc.localDescription.sdp})
        started = time.monotonic()
        while "video" not in tracks and time.monotonic() < started + args.first_frame_timeout:
            await asyncio.sleep(0.02)
        if "video" in tracks:
            audio = asyncio.ensure_future(play_audio(tracks["audio"], report)) if "audio" in tracks else None
            await play_video(tracks["video"], report, args.first_frame_timeout, args.seconds, started)
            if audio is not None:
                audio.cancel()
        for transceiver in pc.getTransceivers():
            if transceiver.kind != "video":
                continue
            stats = await transceiver.receiver.getStats()
            for stat in stats.values():
                if stat.type == "inbound-rtp":
                    report["packetsReceived"] = stat.packetsReceived
                    report["packetsLost"] = stat.packetsLost
            dtls = transceiver.receiver.transport
            report["dtlsRole"] = dtls._role
            report["iceRole"] = dtls.transport.role
        report["connectionState"] = pc.connectionState
    finally:
        report["decodeFailures"] = warnings.decode_failures
        report["warnings"] = warnings.messages
        await asyncio.wait_for(pc.close(), 5)
    line_out(report)


try:
    asyncio.run(asyncio.wait_for(main(), 60))
except Exception as error:  # reported, for the test's failure message
    line_out({"error": f"{type(error).__name__}: {error}"})
    sys.exit(1)
