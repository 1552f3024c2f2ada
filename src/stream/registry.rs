//! All paths of this server, by name. Paths come and go while it runs (the API, SIGHUP):
//! whoever looks one up gets the stream as it was then, and keeps it while it reads.

use super::Stream;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct Registry {
    streams: Arc<RwLock<BTreeMap<String, Arc<Stream>>>>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().get(name).cloned()
    }

    /// Every path now, in name order.
    pub fn list(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    /// Adds a path, or puts `stream` in the place of the one of the same name.
    pub fn insert(&self, stream: Arc<Stream>) {
        self.streams.write().insert(stream.name().to_owned(), stream);
    }

    pub fn remove(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.write().remove(name)
    }
}
