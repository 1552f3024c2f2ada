//! Batches what every session sends through a shared socket. A connection's driver hands each
//! datagram over and goes on; the socket's sender takes the queue, grouped by destination, and
//! sends each group of equal-sized datagrams (the FU-A fragments of a frame are) as one UDP GSO
//! send: one system call for up to 64 datagrams instead of one each, which is where a sender of
//! many small packets spends its time.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use parking_lot::{Mutex, MutexGuard};
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

/// Datagrams taken from the queue, sorted by destination.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    datagrams: Vec<Queued>,
}

/// One GSO send: datagrams to one destination from one source, each `segment_size` long but
/// the last (none: a single datagram).
pub struct GsoSend {
    pub destination: SocketAddr,
    pub source_ip: Option<IpAddr>,
    pub segment_size: Option<usize>,
    pub datagrams: usize,
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
    /// Queues datagrams (a frame's packets for one viewer) under one lock, and wakes the
    /// sender once; drops those that find the sender hopelessly behind.
    pub fn push_all<C: AsRef<[u8]>>(&self, datagrams: impl IntoIterator<Item = (SocketAddr, Option<IpAddr>, C)>) {
        let mut writer = self.writer();
        for (destination, source_ip, contents) in datagrams {
            writer.write(source_ip, |buffer| {
                buffer.extend_from_slice(contents.as_ref());
                Some(destination)
            });
        }
    }

    /// Lets datagrams be written straight into the next batch, under its lock (a connection's
    /// RTP is encrypted where the sender reads it: no copy); the sender is woken once, when
    /// the writer is dropped.
    pub fn writer(&self) -> BatchWriter<'_> {
        BatchWriter { queue: self, batch: self.pending.lock(), queued: false, dropped: false }
    }

    /// Waits until datagrams are queued and takes them all into `batch` (emptied first).
    pub async fn take(&self, batch: &mut Batch) {
        batch.bytes.clear();
        batch.datagrams.clear();
        self.wake.notified().await;
        std::mem::swap(batch, &mut *self.pending.lock());
        self.overloaded.store(false, Ordering::Relaxed);
        // Stable: each destination's datagrams stay in the order they were written.
        batch.datagrams.sort_by_key(|d| (d.destination, d.source_ip));
    }
}

pub struct BatchWriter<'a> {
    queue: &'a SendQueue,
    batch: MutexGuard<'a, Batch>,
    queued: bool,
    dropped: bool,
}

impl BatchWriter<'_> {
    /// Appends one datagram: `write` puts its bytes at the end of the buffer it is given and
    /// says where it goes, or `None` to send nothing (it may leave bytes behind: they are
    /// taken off). A datagram that finds the sender hopelessly behind is dropped. Says
    /// whether one was queued.
    pub fn write(&mut self, source_ip: Option<IpAddr>, write: impl FnOnce(&mut Vec<u8>) -> Option<SocketAddr>) -> bool {
        let start = self.batch.bytes.len();
        let destination = write(&mut self.batch.bytes);
        match destination {
            Some(_) if self.batch.bytes.len() > MAX_QUEUED_BYTES => {
                self.dropped = true;
                self.batch.bytes.truncate(start);
                false
            }
            Some(destination) => {
                let end = self.batch.bytes.len();
                self.batch.datagrams.push(Queued { destination, source_ip, bytes: start..end });
                self.queued = true;
                true
            }
            None => {
                self.batch.bytes.truncate(start);
                false
            }
        }
    }

    /// Offers the datagram queued last to `divert` (a viewer on ICE-TCP is reached over its
    /// connection), and takes it back out of the batch if `divert` took it.
    pub fn divert_last(&mut self, divert: impl FnOnce(SocketAddr, &[u8]) -> bool) {
        let Some(last) = self.batch.datagrams.last() else { return };
        if divert(last.destination, &self.batch.bytes[last.bytes.clone()]) {
            let start = last.bytes.start;
            self.batch.datagrams.pop();
            self.batch.bytes.truncate(start);
        }
    }
}

impl Drop for BatchWriter<'_> {
    fn drop(&mut self) {
        if self.dropped && !self.queue.overloaded.swap(true, Ordering::Relaxed) {
            tracing::warn!("the shared media socket cannot send as fast as sessions write: dropping datagrams");
        }
        if self.queued {
            self.queue.wake.notify_one();
        }
    }
}

impl Batch {
    /// The batch as GSO sends of at most `max_segments` datagrams each, in order.
    pub fn gso_sends(&self, max_segments: usize) -> Vec<Range<usize>> {
        gso_runs(&self.datagrams, max_segments)
    }

    /// One send's datagrams, their bytes one after another: where they already lie so in the
    /// batch (a frame's packets for one viewer, queued together), the batch's own bytes;
    /// otherwise gathered into `scratch`.
    pub fn gather<'a>(&'a self, send: Range<usize>, scratch: &'a mut Vec<u8>) -> (GsoSend, &'a [u8]) {
        let group = &self.datagrams[send];
        let send = GsoSend {
            destination: group[0].destination,
            source_ip: group[0].source_ip,
            segment_size: (group.len() > 1).then(|| group[0].len()),
            datagrams: group.len(),
        };
        let adjacent = group.windows(2).all(|pair| pair[0].bytes.end == pair[1].bytes.start);
        if adjacent {
            return (send, &self.bytes[group[0].bytes.start..group[group.len() - 1].bytes.end]);
        }
        scratch.clear();
        group.iter().for_each(|d| scratch.extend_from_slice(&self.bytes[d.bytes.clone()]));
        (send, scratch)
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
    fn a_run_is_read_in_place_when_its_datagrams_lie_together_and_gathered_otherwise() {
        let queue = SendQueue::default();
        let (viewer, other) = (SocketAddr::from(([127, 0, 0, 1], 9)), SocketAddr::from(([127, 0, 0, 1], 10)));
        queue.push_all([(viewer, None, &b"aaaa"[..]), (viewer, None, b"bbbb")]);
        queue.push_all([(other, None, &b"xxxx"[..])]);
        queue.push_all([(viewer, None, &b"cc"[..])]);
        let mut batch = std::mem::take(&mut *queue.pending.lock());
        batch.datagrams.sort_by_key(|d| (d.destination, d.source_ip));
        let runs = batch.gso_sends(64);
        assert_eq!(runs, vec![0..3, 3..4], "the viewer's three datagrams, then the other's");
        let mut scratch = Vec::new();
        let (send, contents) = batch.gather(runs[0].clone(), &mut scratch);
        assert_eq!((contents, send.segment_size, send.datagrams), (&b"aaaabbbbcc"[..], Some(4), 3), "gathered past the other's datagram");
        let together = Batch { bytes: batch.bytes.clone(), datagrams: batch.datagrams[..2].to_vec() };
        let (_, contents) = together.gather(0..2, &mut scratch);
        assert!(std::ptr::eq(contents.as_ptr(), together.bytes.as_ptr()), "read where they lie");
        assert_eq!(contents, b"aaaabbbb");
    }

    #[test]
    fn queued_datagrams_keep_their_bytes_and_order() {
        let queue = SendQueue::default();
        let to = SocketAddr::from(([127, 0, 0, 1], 9));
        queue.push_all([(to, None, &b"first"[..])]);
        queue.push_all([(to, None, &b"second"[..])]);
        let batch = queue.pending.lock();
        let texts: Vec<&[u8]> = batch.datagrams.iter().map(|d| &batch.bytes[d.bytes.clone()]).collect();
        assert_eq!(texts, vec![&b"first"[..], &b"second"[..]]);
    }
}
