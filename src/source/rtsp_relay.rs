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
//! It also resynchronises: cheap cameras lose bytes on TCP, and retina ends its session on
//! such framing. The camera's side goes through `CameraFraming` (see `camera_framing.rs`),
//! which drops what lost bytes left of a message up to the next plausible one and counts it:
//! retina then sees lost packets, discards the broken picture and reports the loss, and the
//! source drops frames until the next keyframe (see `rtsp.rs`). Why not reconnect instead: a
//! resync costs the wait for the next keyframe (measured by `scripts/bench --faults 600`, 1 s
//! keyframes, a camera that ignores keyframe requests: 0.59 s of freeze per fault in
//! Chromium, no reconnect), a reconnect costs that wait plus the retry delay and the RTSP
//! handshake (a restarted local camera played again 0.5 s after it was ready, a real camera's
//! DESCRIBE to PLAY takes longer), and a new session each time from cameras that allow few.

use super::camera_framing::{message_length, CameraData, CameraFraming};
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

/// No channel: `u32::MAX`; a channel otherwise.
const UNKNOWN: u32 = u32::MAX;

/// What the two directions share.
struct Shared {
    video_rtcp_channel: AtomicU32,
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
            video_ssrc: AtomicU64::new(u64::MAX),
            resyncs: AtomicU64::new(0),
            bytes_lost: AtomicU64::new(0),
            keyframe_wanted: Notify::new(),
        }
    }

    /// What the camera's side has learnt of the video, for the keyframe requests.
    fn learn(&self, framing: &CameraFraming) {
        if let Some(channel) = framing.video_rtcp_channel() {
            self.video_rtcp_channel.store(u32::from(channel), Ordering::Relaxed);
        }
        if let Some(ssrc) = framing.video_ssrc() {
            self.video_ssrc.store(u64::from(ssrc), Ordering::Relaxed);
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

/// The camera's answers and media to retina, whole, noting the video's channels and SSRC for
/// the keyframe requests and counting what lost bytes left (see `camera_framing`).
async fn answers_to_client(mut camera: tokio::net::tcp::OwnedReadHalf, mut client: tokio::net::tcp::OwnedWriteHalf, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut framing = CameraFraming::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let read = camera.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        framing.push(&chunk[..read]);
        while let Some(data) = framing.next_data() {
            match data {
                CameraData::Message(message) => {
                    shared.learn(&framing);
                    client.write_all(&message).await?;
                }
                CameraData::Lost(skip) => {
                    shared.bytes_lost.fetch_add(skip as u64, Ordering::Relaxed);
                    shared.resyncs.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("camera stream resynchronised after {skip} unframed bytes");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pli_is_framed_for_the_video_channel_and_ssrc() {
        let shared = Shared::new();
        assert_eq!(picture_loss_indication(&shared), None, "nothing known yet");
        let mut framing = CameraFraming::new();
        framing.push(b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=1\r\n\r\n");
        framing.push(b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n\r\n");
        // A frame's last packet (marker set): passed on without waiting for what follows.
        framing.push(&[b'$', 2, 0, 12, 0x80, 0x80 | 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
        while framing.next_data().is_some() {}
        shared.learn(&framing);
        let pli = picture_loss_indication(&shared).expect("a PLI");
        assert_eq!(&pli[..4], &[b'$', 3, 0, 12], "on the video's RTCP channel, 12 bytes");
        assert_eq!(&pli[4..6], &[0x81, 206], "PSFB, FMT 1");
        assert_eq!(&pli[12..16], &[0xde, 0xad, 0xbe, 0xef], "for the video's SSRC");
    }
}
