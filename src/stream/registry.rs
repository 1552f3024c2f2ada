//! All paths of this server, by name.

use super::Stream;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct Registry {
    streams: Arc<BTreeMap<String, Arc<Stream>>>,
}

impl Registry {
    pub fn new(streams: impl IntoIterator<Item = Arc<Stream>>) -> Self {
        let streams = streams.into_iter().map(|s| (s.name().to_owned(), s)).collect();
        Self { streams: Arc::new(streams) }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Stream>> {
        self.streams.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Stream>> {
        self.streams.values()
    }
}
