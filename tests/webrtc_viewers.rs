//! Rust WebRTC viewers (webrtc 0.21, not Lookout's code) watch through /ws and through WHEP
//! and each receives a decodable H.264 stream that starts with SPS, PPS and an IDR.

mod common;

use common::{small_pattern, start_server, wait_for, wait_live};
use lookout_testkit::h264;
use lookout_testkit::viewer::Viewer;
use std::time::Duration;

const KEEP: usize = 400;

fn assert_decodable_from_the_first_packet(viewer: &Viewer, how: &str) {
    let received = viewer.received();
    assert_eq!(received.ssrcs.len(), 1, "{how}: one SSRC");
    assert_eq!(received.sequence_gaps, 0, "{how}: no packet lost on loopback");
    let types = h264::first_access_unit_types(&received.kept).expect("complete first access unit");
    assert_eq!(&types[..3], &[h264::SPS, h264::PPS, h264::IDR], "{how}: first access unit starts SPS, PPS, IDR: {types:?}");
    let report = h264::decode(&received.kept).expect("decodes");
    assert!(report.pictures >= 10, "{how}: decoded {report:?}");
    assert_eq!((report.width, report.height), (320, 180), "{how}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_and_whep_viewers_receive_decodable_h264() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;

    let ws = Viewer::watch_ws(server.addr, "demo", KEEP).await.expect("watch over /ws");
    let whep = Viewer::watch_whep(server.addr, "demo", KEEP).await.expect("watch over WHEP");
    for viewer in [&ws, &whep] {
        viewer.wait_for_packets(KEEP as u64, Duration::from_secs(15)).await.expect("packets arrive");
    }
    assert_decodable_from_the_first_packet(&ws, "/ws");
    assert_decodable_from_the_first_packet(&whep, "WHEP");
    assert_eq!(server.registry.get("demo").expect("demo").viewer_count(), 2);
    assert_eq!(server.sessions.list().len(), 2);

    // DELETE ends the WHEP session on the server; closing the socket ends the /ws one.
    let whep_session = whep.session.clone();
    whep.close().await.expect("WHEP DELETE");
    assert!(server.sessions.get(&whep_session).is_none(), "WHEP session gone after DELETE");
    ws.close().await.expect("close");
    let demo = server.registry.get("demo").expect("demo").clone();
    wait_for("both viewers to be gone", Duration::from_secs(10), || (demo.viewer_count() == 0).then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_share_one_packetization_per_frame() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let a = Viewer::watch_ws(server.addr, "demo", 200).await.expect("viewer a");
    let b = Viewer::watch_ws(server.addr, "demo", 200).await.expect("viewer b");
    let ra = a.wait_for_packets(200, Duration::from_secs(15)).await.expect("a");
    let rb = b.wait_for_packets(200, Duration::from_secs(15)).await.expect("b");
    // Different sessions: different SSRCs, yet the same payload bytes for the same frames.
    assert_ne!(ra.ssrcs, rb.ssrcs);
    let payloads_a: std::collections::HashSet<&[u8]> = ra.kept.iter().map(|p| &p.payload[..]).collect();
    let shared = rb.kept.iter().filter(|p| payloads_a.contains(&p.payload[..])).count();
    assert!(shared > 100, "the two viewers got the same payloads for the frames they share ({shared} of 200)");
}
