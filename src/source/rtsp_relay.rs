//! An in-process relay on a camera's RTSP/TCP connection, so that Lookout can send the camera
//! what retina cannot: an RTCP picture loss indication (PLI) on the video's interleaved RTCP
//! channel, asking a camera that honours it for a keyframe now. retina has no way to send
//! RTCP; it talks to the relay on loopback and the relay to the camera.
//!
//! The relay reads both directions message by message (an RTSP message, or a `$`-framed
//! interleaved packet), so that it can put its own packet between two of retina's requests
//! without cutting one. From the camera's side it learns the channels (from the SETUP
//! responses' `interleaved=`; the first is the video's: Lookout sets up the video first) and
//! the video's SSRC (from its RTP packets).
//!
//! It also resynchronises. Cheap cameras lose bytes on TCP when their send buffer fills: the
//! stream goes on in the middle of a packet (../shared/seeds/flussonic-buggy-ip-cameras.txt).
//! retina ends its session on such framing, and a reconnect costs a second or more of every
//! viewer's picture. The relay instead drops bytes up to the next plausible message (a `$`
//! on a known channel with an RTP version-2 header, or `RTSP/`), counts them, and goes on:
//! retina then sees lost packets, discards the broken picture and reports the loss, and the
//! source drops frames until the next keyframe (see `rtsp.rs`).

use anyhow::Context;
use bytes::{Buf, BytesMut};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::shared::marshal::Marshal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// An RTSP message larger than this is not one: the stream is broken.
const MAX_MESSAGE: usize = 256 * 1024;
/// No channel: `u32::MAX`; a channel otherwise.
const UNKNOWN: u32 = u32::MAX;

/// What the two directions share.
struct Shared {
    video_rtcp_channel: AtomicU32,
    video_rtp_channel: AtomicU32,
    /// The interleaved channels set up, as a bit mask (channels 0-63); 0 before the first.
    channels: AtomicU64,
    /// Of those, the RTP ones (the first of each pair).
    rtp_channels: AtomicU64,
    resyncs: AtomicU64,
    bytes_lost: AtomicU64,
    /// An SSRC once known; `u64::MAX` before.
    video_ssrc: AtomicU64,
    keyframe_wanted: Notify,
}

impl Shared {
    fn new() -> Self {
        Self {
            video_rtcp_channel: AtomicU32::new(UNKNOWN),
            video_rtp_channel: AtomicU32::new(UNKNOWN),
            video_ssrc: AtomicU64::new(u64::MAX),
            channels: AtomicU64::new(0),
            rtp_channels: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            bytes_lost: AtomicU64::new(0),
            keyframe_wanted: Notify::new(),
        }
    }
}

/// Asks the camera behind the relay for a keyframe.
#[derive(Clone)]
pub struct KeyframeRequester(Arc<Shared>);

impl KeyframeRequester {
    /// Sends a PLI at the next gap between retina's requests, once the video's channel and
    /// SSRC are known.
    pub fn request(&self) {
        self.0.keyframe_wanted.notify_one();
    }

    /// Times the camera's stream was resynchronised, and the bytes dropped doing so.
    pub fn damage(&self) -> (u64, u64) {
        (self.0.resyncs.load(Ordering::Relaxed), self.0.bytes_lost.load(Ordering::Relaxed))
    }
}

/// Connects to the camera (so that a camera that is down fails here, in its own words), then
/// waits on loopback for retina. Returns the address retina should connect to.
pub async fn start(camera: SocketAddr) -> anyhow::Result<(SocketAddr, KeyframeRequester)> {
    let upstream = TcpStream::connect(camera).await.with_context(|| format!("connecting to {camera}"))?;
    let _ = upstream.set_nodelay(true);
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the relay's loopback port")?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared::new());
    let requester = KeyframeRequester(shared.clone());
    tokio::spawn(async move {
        let Ok(Ok((client, _))) = tokio::time::timeout(std::time::Duration::from_secs(10), listener.accept()).await else { return };
        let _ = client.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (camera_read, camera_write) = upstream.into_split();
        let to_camera = tokio::spawn(requests_to_camera(client_read, camera_write, shared.clone()));
        let result = answers_to_client(camera_read, client_write, shared).await;
        to_camera.abort();
        if let Err(error) = result {
            tracing::debug!("camera relay ended: {error:#}");
        }
    });
    Ok((local, requester))
}

/// The length of the complete message at the start of `buffer`, if it holds one: a
/// `$`-framed interleaved packet or an RTSP message with its body.
fn message_length(buffer: &[u8]) -> anyhow::Result<Option<usize>> {
    if buffer.first() == Some(&b'$') {
        let Some(header) = buffer.get(..4) else { return Ok(None) };
        let length = 4 + usize::from(u16::from_be_bytes([header[2], header[3]]));
        return Ok((buffer.len() >= length).then_some(length));
    }
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        anyhow::ensure!(buffer.len() < MAX_MESSAGE, "no end of RTSP headers in {} bytes", buffer.len());
        return Ok(None);
    };
    let headers = String::from_utf8_lossy(&buffer[..end]);
    let body = headers
        .lines()
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.trim().eq_ignore_ascii_case("content-length")))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let length = end + 4 + body;
    anyhow::ensure!(length < MAX_MESSAGE, "an RTSP message of {length} bytes");
    Ok((buffer.len() >= length).then_some(length))
}

/// Retina's requests to the camera, whole, with a PLI between two of them when one is wanted.
async fn requests_to_camera(mut client: tokio::net::tcp::OwnedReadHalf, mut camera: tokio::net::tcp::OwnedWriteHalf, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        tokio::select! {
            read = client.read_buf(&mut buffer) => {
                if read? == 0 {
                    return Ok(());
                }
                while let Some(length) = message_length(&buffer)? {
                    camera.write_all(&buffer[..length]).await?;
                    buffer.advance(length);
                }
            }
            _ = shared.keyframe_wanted.notified(), if buffer.is_empty() => {
                if let Some(packet) = picture_loss_indication(&shared) {
                    camera.write_all(&packet).await?;
                    tracing::debug!("asked the camera for a keyframe (RTCP PLI)");
                }
            }
        }
    }
}

/// The PLI for the video, framed for its interleaved RTCP channel; `None` before the channel
/// and the SSRC are known.
fn picture_loss_indication(shared: &Shared) -> Option<Vec<u8>> {
    let channel = u8::try_from(shared.video_rtcp_channel.load(Ordering::Relaxed)).ok()?;
    let media_ssrc = u32::try_from(shared.video_ssrc.load(Ordering::Relaxed)).ok()?;
    let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc }.marshal().ok()?;
    let mut framed = vec![b'$', channel];
    framed.extend_from_slice(&(pli.len() as u16).to_be_bytes());
    framed.extend_from_slice(&pli);
    Some(framed)
}

/// What the camera's stream holds at a position.
#[derive(Debug, PartialEq)]
enum Framing {
    /// A whole message of this length.
    Message(usize),
    /// The start of one; more bytes are needed.
    Incomplete,
    /// Not the start of a message: bytes were lost before it.
    Garbage,
}

/// Whether `buffer` starts with a message from the camera, telling lost bytes apart.
fn camera_framing(buffer: &[u8], shared: &Shared) -> Framing {
    let Some(&first) = buffer.first() else { return Framing::Incomplete };
    let channels = shared.channels.load(Ordering::Relaxed);
    // Before the first SETUP answer nothing is streaming: whatever the camera says goes to
    // retina as it is, which reports a camera that does not speak RTSP in its own words.
    if channels == 0 {
        return by_length(buffer);
    }
    if first == b'$' {
        let Some(&channel) = buffer.get(1) else { return Framing::Incomplete };
        if channel >= 64 || channels & (1 << channel) == 0 {
            return Framing::Garbage;
        }
        let is_rtp = channel < 64 && shared.rtp_channels.load(Ordering::Relaxed) & (1 << channel) != 0;
        if is_rtp && buffer.get(4).is_some_and(|&byte| byte >> 6 != 2) {
            return Framing::Garbage;
        }
    } else {
        let prefix = &buffer[..buffer.len().min(5)];
        if !b"RTSP/".starts_with(prefix) {
            return Framing::Garbage;
        }
    }
    by_length(buffer)
}

/// The framing of `buffer` by the length its start announces.
fn by_length(buffer: &[u8]) -> Framing {
    match message_length(buffer) {
        Ok(Some(length)) => Framing::Message(length),
        Ok(None) => Framing::Incomplete,
        Err(_) => Framing::Garbage,
    }
}

/// The camera's answers and media to retina, noting the channels and the video's SSRC, and
/// dropping what lost bytes left of a message.
async fn answers_to_client(mut camera: tokio::net::tcp::OwnedReadHalf, mut client: tokio::net::tcp::OwnedWriteHalf, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    loop {
        if camera.read_buf(&mut buffer).await? == 0 {
            return Ok(());
        }
        loop {
            match camera_framing(&buffer, &shared) {
                // A message not followed by the start of another was cut short by lost bytes
                // and reaches into what came after: it is damaged, drop it with the rest.
                Framing::Message(length) if camera_framing(&buffer[length..], &shared) == Framing::Garbage && buffer.len() > length => {
                    drop_unframed(&mut buffer, &shared);
                }
                Framing::Message(length) => {
                    note(&shared, &buffer[..length]);
                    client.write_all(&buffer[..length]).await?;
                    buffer.advance(length);
                }
                Framing::Incomplete => break,
                Framing::Garbage => drop_unframed(&mut buffer, &shared),
            }
        }
    }
}

/// Drops the bytes at the start of `buffer` up to the next plausible message start (or all
/// but a possible partial header), and counts them.
fn drop_unframed(buffer: &mut BytesMut, shared: &Shared) {
    let skip = (1..buffer.len())
        .find(|&at| camera_framing(&buffer[at..], shared) != Framing::Garbage)
        .unwrap_or(buffer.len().saturating_sub(4).max(1));
    buffer.advance(skip);
    shared.bytes_lost.fetch_add(skip as u64, Ordering::Relaxed);
    shared.resyncs.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("camera stream resynchronised after {skip} unframed bytes");
}

fn note(shared: &Shared, message: &[u8]) {
    if message[0] == b'$' {
        let channel = u32::from(message[1]);
        if channel == shared.video_rtp_channel.load(Ordering::Relaxed) {
            if let Some(ssrc) = message.get(12..16) {
                shared.video_ssrc.store(u64::from(u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]])), Ordering::Relaxed);
            }
        }
        return;
    }
    // A SETUP answer names its channels, "interleaved=0-1"; the first is the video's.
    let text = String::from_utf8_lossy(message);
    let channels = text.split("interleaved=").nth(1).and_then(|rest| {
        let pair = rest.split([';', '\r', ',']).next()?;
        let (rtp, rtcp) = pair.split_once('-')?;
        Some((rtp.trim().parse::<u32>().ok()?, rtcp.trim().parse::<u32>().ok()?))
    });
    let Some((rtp, rtcp)) = channels.filter(|&(rtp, rtcp)| rtp < 64 && rtcp < 64) else { return };
    shared.channels.fetch_or((1 << rtp) | (1 << rtcp), Ordering::Relaxed);
    shared.rtp_channels.fetch_or(1 << rtp, Ordering::Relaxed);
    if shared.video_rtp_channel.load(Ordering::Relaxed) == UNKNOWN {
        shared.video_rtp_channel.store(rtp, Ordering::Relaxed);
        shared.video_rtcp_channel.store(rtcp, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_found_whole() {
        assert_eq!(message_length(b"$\x00\x00\x03abc$").unwrap(), Some(7));
        assert_eq!(message_length(b"$\x00\x00\x03ab").unwrap(), None, "incomplete");
        let request = b"GET_PARAMETER rtsp://x/ RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 4\r\n\r\nabcdRTSP";
        assert_eq!(message_length(request).unwrap(), Some(request.len() - 4));
        assert_eq!(message_length(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n").unwrap(), None);
        assert!(message_length(&vec![b'x'; MAX_MESSAGE]).is_err(), "garbage is not a message");
    }

    #[test]
    fn the_video_channels_and_ssrc_are_learnt_and_the_pli_framed() {
        let shared = Shared::new();
        assert_eq!(picture_loss_indication(&shared), None, "nothing known yet");
        note(&shared, b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=1\r\n\r\n");
        note(&shared, b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n\r\n");
        let rtp = [b'$', 2, 0, 12, 0x80, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        note(&shared, &rtp);
        let pli = picture_loss_indication(&shared).expect("a PLI");
        assert_eq!(shared.channels.load(Ordering::Relaxed), 0b111100, "both pairs known");
        assert_eq!(&pli[..4], &[b'$', 3, 0, 12], "on the video's RTCP channel, 12 bytes");
        assert_eq!(&pli[4..6], &[0x81, 206], "PSFB, FMT 1");
        assert_eq!(&pli[12..16], &[0xde, 0xad, 0xbe, 0xef], "for the video's SSRC");
    }

    #[test]
    fn lost_bytes_are_told_from_messages() {
        let shared = Shared::new();
        let nonsense = b"HELLO WORLD\r\n\r\n";
        assert_eq!(camera_framing(nonsense, &shared), Framing::Message(nonsense.len()), "before SETUP, retina judges");
        note(&shared, b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n");
        let rtp = |len: u8| [&[b'$', 0, 0, len][..], &[0x80; 255][..usize::from(len)]].concat();
        assert_eq!(camera_framing(&rtp(12), &shared), Framing::Message(16));
        assert_eq!(camera_framing(&rtp(12)[..10], &shared), Framing::Incomplete);
        assert_eq!(camera_framing(b"$\x07\x00\x0c", &shared), Framing::Garbage, "a channel never set up");
        assert_eq!(camera_framing(b"$\x00\x00\x0c\x41", &shared), Framing::Garbage, "not RTP version 2");
        assert_eq!(camera_framing(b"\x12\x34$", &shared), Framing::Garbage, "the middle of a packet");
        assert_eq!(camera_framing(b"RTS", &shared), Framing::Incomplete);
        let answer = b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n";
        assert_eq!(camera_framing(answer, &shared), Framing::Message(answer.len()));
    }
}
