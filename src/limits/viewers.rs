//! Viewer sessions counted in all and per path. A session's slot is taken when it is admitted,
//! before anything is built for it, and given back when the session is dropped: sessions set
//! up at the same moment cannot together pass a bound that each alone would not.

use super::SessionRefused;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct ViewerCounts(Arc<Mutex<Counts>>);

#[derive(Default)]
struct Counts {
    total: usize,
    per_path: HashMap<String, usize>,
}

/// One admitted viewer of `path`, counted for as long as it lives.
pub struct ViewerSlot {
    counts: ViewerCounts,
    path: String,
}

impl ViewerCounts {
    /// Takes a slot on `path` unless the server or the path is at its maximum.
    pub fn take(&self, path: &str, max_total: usize, max_per_path: usize) -> Result<ViewerSlot, SessionRefused> {
        let mut counts = self.0.lock();
        if counts.total >= max_total {
            return Err(SessionRefused::ServerFull(max_total));
        }
        let of_path = counts.per_path.get(path).copied().unwrap_or(0);
        if of_path >= max_per_path {
            return Err(SessionRefused::PathFull { path: path.to_owned(), max: max_per_path });
        }
        counts.total += 1;
        counts.per_path.insert(path.to_owned(), of_path + 1);
        Ok(ViewerSlot { counts: self.clone(), path: path.to_owned() })
    }

    pub fn total(&self) -> usize {
        self.0.lock().total
    }

    pub fn of_path(&self, path: &str) -> usize {
        self.0.lock().per_path.get(path).copied().unwrap_or(0)
    }
}

impl Drop for ViewerSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock();
        counts.total -= 1;
        if let Some(of_path) = counts.per_path.get_mut(&self.path) {
            *of_path -= 1;
            if *of_path == 0 {
                counts.per_path.remove(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back_when_dropped() {
        let counts = ViewerCounts::default();
        let a1 = counts.take("a", 3, 2).expect("first of a");
        let _a2 = counts.take("a", 3, 2).expect("second of a");
        assert!(matches!(counts.take("a", 3, 2), Err(SessionRefused::PathFull { max: 2, .. })));
        let _b = counts.take("b", 3, 2).expect("first of b");
        assert_eq!(counts.take("c", 3, 2).err(), Some(SessionRefused::ServerFull(3)));
        assert_eq!((counts.total(), counts.of_path("a")), (3, 2));
        drop(a1);
        assert_eq!((counts.total(), counts.of_path("a")), (2, 1));
        assert!(counts.take("a", 3, 2).is_ok(), "a dropped slot is free again");
    }
}
