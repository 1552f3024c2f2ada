//! Places counted in all and per key (viewers per path, unauthenticated sockets per address).
//! A place is taken before anything is built for its holder and given back when it is
//! dropped, so holders arriving at the same moment cannot together pass a bound that each
//! alone would not.

use parking_lot::Mutex;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

pub struct Occupancy<K: Hash + Eq + Clone>(Arc<Mutex<Counts<K>>>);

struct Counts<K> {
    total: usize,
    per_key: HashMap<K, usize>,
}

/// Which bound a refused place would have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    Key,
}

/// One place under `key`, counted for as long as it lives.
pub struct Place<K: Hash + Eq + Clone> {
    occupancy: Occupancy<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Clone for Occupancy<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: Hash + Eq + Clone> Default for Occupancy<K> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Counts { total: 0, per_key: HashMap::new() })))
    }
}

impl<K: Hash + Eq + Clone> Occupancy<K> {
    /// Takes a place under `key` unless `max_total` or `max_per_key` places are taken.
    pub fn take<Q>(&self, key: &Q, max_total: usize, max_per_key: usize) -> Result<Place<K>, Full>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut counts = self.0.lock();
        if counts.total >= max_total {
            return Err(Full::Total);
        }
        let of_key = counts.per_key.get(key).copied().unwrap_or(0);
        if of_key >= max_per_key {
            return Err(Full::Key);
        }
        counts.total += 1;
        counts.per_key.insert(key.to_owned(), of_key + 1);
        Ok(Place { occupancy: self.clone(), key: key.to_owned() })
    }

    pub fn total(&self) -> usize {
        self.0.lock().total
    }

    pub fn of<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
    {
        self.0.lock().per_key.get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq + Clone> Drop for Place<K> {
    fn drop(&mut self) {
        let mut counts = self.occupancy.0.lock();
        counts.total -= 1;
        if let Some(of_key) = counts.per_key.get_mut(&self.key) {
            *of_key -= 1;
            if *of_key == 0 {
                counts.per_key.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back_when_dropped() {
        let occupancy = Occupancy::<String>::default();
        let a1 = occupancy.take("a", 3, 2).expect("first of a");
        let _a2 = occupancy.take("a", 3, 2).expect("second of a");
        assert_eq!(occupancy.take("a", 3, 2).err(), Some(Full::Key));
        let _b = occupancy.take("b", 3, 2).expect("first of b");
        assert_eq!(occupancy.take("c", 3, 2).err(), Some(Full::Total));
        assert_eq!((occupancy.total(), occupancy.of("a")), (3, 2));
        drop(a1);
        assert_eq!((occupancy.total(), occupancy.of("a")), (2, 1));
        assert!(occupancy.take("a", 3, 2).is_ok(), "a dropped place is free again");
    }
}
