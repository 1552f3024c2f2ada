//! Batches what every session sends through a shared socket. A connection's driver hands each
//! datagram over and goes on; a task drains the queue, groups the datagrams by destination,
//! and sends each group of equal-sized datagrams (the FU-A fragments of a frame are) as one
//! UDP GSO send: one system call for up to 64 datagrams instead of one each, which is where a
//! sender of many small packets spends its time.

use super::shared_socket::SharedSocket;
use quinn_udp::Transmit;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// What may wait for the sender before new datagrams are dropped: far more than a socket's send
/// buffer, so it is reached only when the machine cannot keep up at all.
const MAX_QUEUED_BYTES: usize = 16 << 20;
/// The kernel's limit for one GSO send is 64 KiB of payload.
const MAX_GSO_BYTES: usize = 65_000;

#[derive(Default)]
pub struct SendQueue {
    pending: Mutex<Batch>,
    wake: Notify,
    /// Set while datagrams are being dropped, so the warning is logged once per episode.
    overloaded: AtomicBool,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    datagrams: Vec<Queued>,
}

#[derive(Debug, Clone, PartialEq)]
struct Queued {
    destination: SocketAddr,
    source_ip: Option<IpAddr>,
    bytes: Range<usize>,
}

impl Queued {
    fn len(&self) -> usize {
        self.bytes.len()
    }
}

impl SendQueue {
    /// Queues one datagram; drops it when the sender is hopelessly behind.
    pub fn push(&self, destination: SocketAddr, source_ip: Option<IpAddr>, contents: &[u8]) {
        {
            let mut batch = self.pending.lock();
            if batch.bytes.len() + contents.len() > MAX_QUEUED_BYTES {
                drop(batch);
                if !self.overloaded.swap(true, Ordering::Relaxed) {
                    tracing::warn!("the shared media socket cannot send as fast as sessions write: dropping datagrams");
                }
                return;
            }
            let start = batch.bytes.len();
            batch.bytes.extend_from_slice(contents);
            batch.datagrams.push(Queued { destination, source_ip, bytes: start..start + contents.len() });
        }
        self.wake.notify_one();
    }

    /// Sends what is queued, for as long as Lookout runs.
    pub async fn run(&self, socket: &SharedSocket) {
        let mut batch = Batch::default();
        let mut contents = Vec::with_capacity(MAX_GSO_BYTES);
        loop {
            self.wake.notified().await;
            std::mem::swap(&mut batch, &mut *self.pending.lock());
            // Stable: each destination's datagrams stay in the order they were written.
            batch.datagrams.sort_by_key(|d| (d.destination, d.source_ip));
            for run in gso_runs(&batch.datagrams, socket.max_gso_segments()) {
                let group = &batch.datagrams[run];
                contents.clear();
                group.iter().for_each(|d| contents.extend_from_slice(&batch.bytes[d.bytes.clone()]));
                let transmit = Transmit {
                    destination: group[0].destination,
                    ecn: None,
                    contents: &contents,
                    segment_size: (group.len() > 1).then(|| group[0].len()),
                    src_ip: group[0].source_ip,
                };
                if let Err(error) = futures::future::poll_fn(|cx| socket.poll_send(cx, &transmit)).await {
                    // One viewer's trouble (an ICMP error, a firewall); others go on.
                    tracing::debug!(%error, destination = %transmit.destination, datagrams = group.len(), "send on the shared media socket failed");
                }
            }
            batch.bytes.clear();
            batch.datagrams.clear();
            self.overloaded.store(false, Ordering::Relaxed);
        }
    }
}

/// Splits datagrams sorted by destination into runs that one GSO send can carry: the same
/// destination and source, at most `max_segments` and `MAX_GSO_BYTES`, every datagram the size
/// of the first except the last, which may be shorter.
fn gso_runs(datagrams: &[Queued], max_segments: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < datagrams.len() {
        let first = &datagrams[start];
        let mut end = start + 1;
        let mut bytes = first.len();
        while end < datagrams.len() && end - start < max_segments {
            let next = &datagrams[end];
            let same_flow = next.destination == first.destination && next.source_ip == first.source_ip;
            if !same_flow || next.len() > first.len() || bytes + next.len() > MAX_GSO_BYTES || datagrams[end - 1].len() < first.len() {
                break;
            }
            bytes += next.len();
            end += 1;
        }
        runs.push(start..end);
        start = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(port: u16, len: usize) -> Queued {
        Queued { destination: SocketAddr::from(([127, 0, 0, 1], port)), source_ip: None, bytes: 0..len }
    }

    #[test]
    fn equal_datagrams_to_one_destination_go_together() {
        let datagrams = [queued(1, 1200), queued(1, 1200), queued(1, 700), queued(1, 1200), queued(2, 1200), queued(2, 1300)];
        assert_eq!(gso_runs(&datagrams, 64), vec![0..3, 3..4, 4..5, 5..6], "a shorter datagram ends a run; a longer one starts one");
    }

    #[test]
    fn runs_respect_the_segment_and_byte_limits() {
        let many: Vec<Queued> = (0..100).map(|_| queued(1, 1200)).collect();
        let runs = gso_runs(&many, 64);
        assert!(runs.iter().all(|r| r.len() * 1200 <= MAX_GSO_BYTES), "{runs:?}");
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 100);
        assert_eq!(gso_runs(&many[..3], 1), vec![0..1, 1..2, 2..3], "without GSO every datagram alone");
    }

    #[test]
    fn queued_datagrams_keep_their_bytes_and_order() {
        let queue = SendQueue::default();
        let to = SocketAddr::from(([127, 0, 0, 1], 9));
        queue.push(to, None, b"first");
        queue.push(to, None, b"second");
        let batch = queue.pending.lock();
        let texts: Vec<&[u8]> = batch.datagrams.iter().map(|d| &batch.bytes[d.bytes.clone()]).collect();
        assert_eq!(texts, vec![&b"first"[..], &b"second"[..]]);
    }
}
