//! Who reads a path now: each reader (a viewer's session, an LL-HLS muxer, a snapshot) holds a
//! `ReaderHold` while it reads, so that a source on demand knows when to open and close the
//! camera.

use tokio::sync::watch;

/// One reader of a path, counted until dropped.
pub struct ReaderHold {
    readers: watch::Sender<usize>,
}

impl ReaderHold {
    pub(super) fn new(readers: &watch::Sender<usize>) -> Self {
        readers.send_modify(|count| *count += 1);
        Self { readers: readers.clone() }
    }
}

impl Drop for ReaderHold {
    fn drop(&mut self) {
        self.readers.send_modify(|count| *count = count.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_counted_while_held() {
        let readers = watch::channel(0).0;
        let watching = readers.subscribe();
        let first = ReaderHold::new(&readers);
        let second = ReaderHold::new(&readers);
        assert_eq!(*watching.borrow(), 2);
        drop(first);
        assert_eq!(*watching.borrow(), 1);
        drop(second);
        assert_eq!(*watching.borrow(), 0);
    }
}
