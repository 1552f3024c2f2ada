//! The paths this server serves, and where each came from: the configuration file (with
//! `--source`) or the API. Paths are added, changed and removed while the server runs: each
//! change starts or stops only the sources it touches, and the API's paths are kept in the
//! store before the change is made.
//!
//! The file stays the source of the paths it names: the API refuses to change them, and a
//! path the API made gives way to one of the same name that the file gains (on SIGHUP).

mod changes;
mod demand_schedule;
mod merge_patch;
mod on_demand;
mod store;

pub use changes::{file_changes, FileChange};
pub use merge_patch::apply_merge_patch;
pub use store::{PathStore, StoreError};

use crate::config::{validate_path_name, ConfigError, PathDefinition, PathSpec};
use crate::egress::webrtc::Sessions;
use crate::source::{self, SourceHandle};
use crate::stream::{layer_name, PathState, Registry, Stream};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a path was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The configuration file, or `--source`: changed there, and applied by SIGHUP.
    File,
    /// The API: kept in `state_dir`.
    Api,
}

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error("path {name:?} exists already")]
    Exists { name: String, field: String },
    #[error("no path {0:?}")]
    NotFound(String),
    #[error("path {0:?} comes from the configuration file: change it there and send SIGHUP")]
    FromFile(String),
    #[error("the change was not made, as it could not be kept: {0}")]
    Store(#[from] StoreError),
}

/// A path as the API shows it.
#[derive(Clone)]
pub struct PathEntry {
    pub name: String,
    pub origin: Origin,
    pub spec: PathSpec,
    pub stream: Arc<Stream>,
}

/// A path being served: its hub and what feeds it: its sources (its own first, then its lower
/// layers', in the order of `Stream::layers`), or the task that opens them on demand.
struct Running {
    origin: Origin,
    definition: PathDefinition,
    stream: Arc<Stream>,
    sources: Vec<SourceHandle>,
}

impl Running {
    /// Builds the path's hub and starts its sources. Must be called within a Tokio runtime.
    fn start(name: &str, origin: Origin, definition: PathDefinition) -> Self {
        let layers: Vec<Arc<Stream>> = definition
            .lower_layers
            .iter()
            .zip(1..)
            // ':' is not allowed in path names, so a layer's name never meets a path's.
            .map(|(layer, index)| Stream::new(format!("{name}:{}", layer_name(index)), source::describe(layer)))
            .collect();
        let stream = Stream::with_lower_layers(name, source::describe(&definition.source), layers);
        let sources = start_sources(&stream, &definition);
        tracing::info!(path = %name, source = %stream.source_description(), layers = definition.lower_layers.len(), origin = ?origin, on_demand = definition.on_demand.is_some(), "path started");
        Self { origin, definition, stream, sources }
    }

    /// Gives the path a new definition. With as many layers as before, only the sources that
    /// changed restart, on the same hub, so that viewers stay (as across a camera reconnect);
    /// otherwise the path starts afresh and its viewers are ended.
    fn redefine(&mut self, definition: PathDefinition, sessions: &Sessions, registry: &Registry) {
        let name = self.stream.name().to_owned();
        if definition.lower_layers.len() != self.definition.lower_layers.len() {
            let fresh = Self::start(&name, self.origin, definition);
            registry.insert(fresh.stream.clone());
            let old = std::mem::replace(self, fresh);
            old.stop("its layers changed; watch it again", sessions);
            return;
        }
        let layers = self.stream.layers();
        if self.definition.on_demand.is_some() || definition.on_demand.is_some() {
            // What opens the sources on demand starts again, with the new settings; it opens
            // them at once if the path has readers.
            self.sources.clear();
            for (layer, config) in layers.iter().zip(definition.sources()) {
                layer.set_source_description(source::describe(config));
            }
            self.sources = start_sources(&self.stream, &definition);
            tracing::info!(path = %name, source = %self.stream.source_description(), on_demand = definition.on_demand.is_some(), "path changed");
            self.definition = definition;
            return;
        }
        let changed: Vec<usize> = (0..layers.len()).filter(|&index| self.definition.sources().nth(index) != definition.sources().nth(index)).collect();
        for &index in &changed {
            let config = definition.sources().nth(index).expect("as many layers as before");
            // The old source stops as the new one takes its place.
            self.sources[index] = source::spawn(config, layers[index].clone());
            layers[index].set_source_description(source::describe(config));
        }
        tracing::info!(path = %name, restarted = changed.len(), source = %self.stream.source_description(), "path changed");
        self.definition = definition;
    }

    /// Stops the sources and ends every reader and viewer, telling them `reason`.
    fn stop(self, reason: &str, sessions: &Sessions) {
        drop(self.sources);
        self.stream.remove(reason);
        let viewers = sessions.end_path(self.stream.name());
        tracing::info!(path = self.stream.name(), viewers, "path removed: {reason}");
    }

    /// Stops the path for good: as `stop`, and its metrics go with it.
    fn delete(self, reason: &str, sessions: &Sessions) {
        let stream = self.stream.clone();
        self.stop(reason, sessions);
        sessions.forget_path(&stream);
    }
}

/// Starts what feeds a path's hub: its sources, or the task that opens them on demand.
fn start_sources(stream: &Arc<Stream>, definition: &PathDefinition) -> Vec<SourceHandle> {
    let layers = stream.layers();
    stream.set_start_timeout(definition.on_demand.map(|settings| settings.start_timeout));
    match definition.on_demand {
        None => layers
            .iter()
            .zip(definition.sources())
            .map(|(layer, config)| {
                // From idle, when the path was on demand before: its first frame makes it live.
                layer.set_state(PathState::Connecting);
                source::spawn(config, layer.clone())
            })
            .collect(),
        Some(settings) => {
            // Idle from now, not once the task runs: nothing opens the camera before a reader.
            for layer in &layers {
                layer.set_state(PathState::Idle);
            }
            vec![SourceHandle::Task(tokio::spawn(on_demand::run(layers, definition.sources().cloned().collect(), settings)))]
        }
    }
}

/// The running paths and the store of the API's, changed one change at a time.
pub struct PathManager {
    registry: Registry,
    sessions: Sessions,
    store: PathStore,
    state: tokio::sync::Mutex<ManagedPaths>,
}

struct ManagedPaths {
    running: BTreeMap<String, Running>,
    /// What the store holds: the API's paths, including any that no longer validate (kept,
    /// and logged, rather than lost).
    stored: BTreeMap<String, PathSpec>,
}

impl PathManager {
    /// Starts the file's paths and the ones kept in `store`. A kept path of the same name as
    /// one of the file's gives way to it. Must be called within a Tokio runtime.
    pub fn start(file: BTreeMap<String, PathDefinition>, store: PathStore, registry: Registry, sessions: Sessions) -> Result<Self, StoreError> {
        let mut stored = store.load()?;
        let mut running = BTreeMap::new();
        for (name, definition) in file {
            running.insert(name.clone(), Running::start(&name, Origin::File, definition));
        }
        let shadowed: Vec<String> = stored.keys().filter(|name| running.contains_key(*name)).cloned().collect();
        for name in &shadowed {
            tracing::warn!(path = %name, "the configuration file names this path too: the file's is served, the API's is removed from {}", store.file().display());
            stored.remove(name);
        }
        if !shadowed.is_empty() {
            store.save(&stored)?;
        }
        for (name, spec) in &stored {
            match validate(name, spec.clone()) {
                Ok(definition) => {
                    running.insert(name.clone(), Running::start(name, Origin::Api, definition));
                }
                Err(error) => tracing::error!(path = %name, "a path kept in {} is not valid, so it is not served: {error}", store.file().display()),
            }
        }
        for path in running.values() {
            registry.insert(path.stream.clone());
        }
        Ok(Self { registry, sessions, store, state: tokio::sync::Mutex::new(ManagedPaths { running, stored }) })
    }

    pub async fn list(&self) -> Vec<PathEntry> {
        self.state.lock().await.running.iter().map(|(name, path)| entry(name, path)).collect()
    }

    pub async fn get(&self, name: &str) -> Option<PathEntry> {
        self.state.lock().await.running.get(name).map(|path| entry(name, path))
    }

    /// Adds paths through the API, all or none: every name and spec is checked, the store
    /// keeps them, and then their sources start. An error names the field as the caller
    /// writes it: `fields(index)` gives the name's field and the prefix of the spec's.
    pub async fn add(&self, paths: Vec<(String, PathSpec)>, fields: impl Fn(usize) -> (String, String)) -> Result<(), PathError> {
        let mut state = self.state.lock().await;
        let mut definitions = Vec::with_capacity(paths.len());
        for (index, (name, spec)) in paths.iter().enumerate() {
            let (name_field, spec_field) = fields(index);
            validate_path_name(&name_field, name)?;
            if state.running.contains_key(name) || state.stored.contains_key(name) || paths[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(PathError::Exists { name: name.clone(), field: name_field });
            }
            definitions.push(PathDefinition::from_spec(&spec_field, spec.clone())?);
        }
        let mut stored = state.stored.clone();
        stored.extend(paths.iter().cloned());
        self.save(&stored).await?;
        state.stored = stored;
        for ((name, _), definition) in paths.into_iter().zip(definitions) {
            let path = Running::start(&name, Origin::Api, definition);
            self.registry.insert(path.stream.clone());
            state.running.insert(name, path);
        }
        Ok(())
    }

    /// Gives a path the API made a new spec: the store keeps it, then the sources that changed
    /// restart (see `Running::redefine`).
    pub async fn replace(&self, name: &str, spec: PathSpec) -> Result<(), PathError> {
        self.modify(name, |_| Ok::<_, PathError>(spec)).await
    }

    /// Replaces a path the API made with what `change` makes of its spec as written (with its
    /// secrets: a merge patch), all under one lock, so that two changes at once both apply.
    pub async fn modify<E: From<PathError>>(&self, name: &str, change: impl FnOnce(&PathSpec) -> Result<PathSpec, E>) -> Result<(), E> {
        let mut state = self.state.lock().await;
        check_api_path(&state, name)?;
        let spec = change(state.stored.get(name).ok_or_else(|| PathError::NotFound(name.to_owned()))?)?;
        let definition = PathDefinition::from_spec("", spec.clone()).map_err(PathError::from)?;
        let mut stored = state.stored.clone();
        stored.insert(name.to_owned(), spec);
        self.save(&stored).await.map_err(PathError::from)?;
        state.stored = stored;
        match state.running.get_mut(name) {
            Some(path) => path.redefine(definition, &self.sessions, &self.registry),
            None => {
                let path = Running::start(name, Origin::Api, definition);
                self.registry.insert(path.stream.clone());
                state.running.insert(name.to_owned(), path);
            }
        }
        Ok(())
    }

    /// Removes a path the API made: the store forgets it, its sources stop, its viewers end.
    pub async fn delete(&self, name: &str) -> Result<(), PathError> {
        let mut state = self.state.lock().await;
        check_api_path(&state, name)?;
        let mut stored = state.stored.clone();
        stored.remove(name);
        self.save(&stored).await?;
        state.stored = stored;
        if let Some(path) = state.running.remove(name) {
            self.registry.remove(name);
            path.delete("deleted through the API", &self.sessions);
        }
        Ok(())
    }

    /// Applies a new reading of the file (SIGHUP): only the paths it adds, changes or drops
    /// are touched. A path the API made gives way to one of the file's of the same name.
    pub async fn apply_file(&self, file: BTreeMap<String, PathDefinition>) -> Result<Vec<FileChange>, StoreError> {
        let mut state = self.state.lock().await;
        let current: BTreeMap<&str, (Origin, &PathDefinition)> = state.running.iter().map(|(name, path)| (name.as_str(), (path.origin, &path.definition))).collect();
        let changes = file_changes(&current, &file);
        let taken_over: Vec<&str> = changes.iter().filter_map(|change| match change {
            FileChange::TakeOver(name) => Some(name.as_str()),
            _ => None,
        }).collect();
        if !taken_over.is_empty() {
            let mut stored = state.stored.clone();
            stored.retain(|name, _| !taken_over.contains(&name.as_str()));
            self.save(&stored).await?;
            state.stored = stored;
        }
        let mut file = file;
        for change in &changes {
            match change {
                FileChange::Add(name) | FileChange::TakeOver(name) => {
                    let definition = file.remove(name).expect("changes name the file's paths");
                    if let Some(old) = state.running.remove(name) {
                        tracing::warn!(path = %name, "the configuration file now names this path: it replaces the one made through the API");
                        old.stop("replaced by the configuration file's path of the same name; watch it again", &self.sessions);
                    }
                    let path = Running::start(name, Origin::File, definition);
                    self.registry.insert(path.stream.clone());
                    state.running.insert(name.clone(), path);
                }
                FileChange::Change(name) => {
                    let definition = file.remove(name).expect("changes name the file's paths");
                    if let Some(path) = state.running.get_mut(name) {
                        path.redefine(definition, &self.sessions, &self.registry);
                    }
                }
                FileChange::Remove(name) => {
                    if let Some(path) = state.running.remove(name) {
                        self.registry.remove(name);
                        path.delete("removed from the configuration file", &self.sessions);
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Stops every path's sources (the server is stopping). Paths being changed at this moment
    /// stop when the last handle on the manager goes.
    pub fn stop_all(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            state.running.clear();
        }
    }

    async fn save(&self, stored: &BTreeMap<String, PathSpec>) -> Result<(), StoreError> {
        let (store, stored) = (self.store.clone(), stored.clone());
        tokio::task::spawn_blocking(move || store.save(&stored))
            .await
            .unwrap_or_else(|error| Err(StoreError::Write { file: self.store.file().to_owned(), source: std::io::Error::other(error) }))
    }
}

fn entry(name: &str, path: &Running) -> PathEntry {
    PathEntry { name: name.to_owned(), origin: path.origin, spec: path.definition.spec.redacted(), stream: path.stream.clone() }
}

fn validate(name: &str, spec: PathSpec) -> Result<PathDefinition, ConfigError> {
    validate_path_name("name", name)?;
    PathDefinition::from_spec("", spec)
}

/// Only paths the API made may be changed through it.
fn check_api_path(state: &ManagedPaths, name: &str) -> Result<(), PathError> {
    match state.running.get(name).map(|path| path.origin) {
        Some(Origin::File) => Err(PathError::FromFile(name.to_owned())),
        Some(Origin::Api) => Ok(()),
        None if state.stored.contains_key(name) => Ok(()),
        None => Err(PathError::NotFound(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// An RTSP path whose camera never answers (the discard port): its source only retries.
    fn spec(url_path: &str) -> PathSpec {
        PathSpec { source: format!("rtsp://127.0.0.1:9/{url_path}"), ..Default::default() }
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lookout-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn manager(dir: &std::path::Path, file: &[(&str, &str)]) -> PathManager {
        let file = file.iter().map(|(name, url_path)| (name.to_string(), PathDefinition::from_spec("", spec(url_path)).expect("valid"))).collect();
        PathManager::start(file, PathStore::new(dir), Registry::default(), Sessions::default()).expect("starts")
    }

    async fn names(paths: &PathManager) -> Vec<(String, Origin)> {
        paths.list().await.into_iter().map(|entry| (entry.name, entry.origin)).collect()
    }

    #[tokio::test]
    async fn api_paths_are_kept_and_file_paths_are_left_to_the_file() {
        let dir = scratch_dir("kept");
        let paths = manager(&dir, &[("front", "a")]);
        paths.add(vec![("back".into(), spec("b")), ("side".into(), spec("c"))], |_| ("name".into(), String::new())).await.expect("added");
        assert!(paths.registry.get("back").is_some(), "served at once");
        assert!(matches!(paths.add(vec![("front".into(), spec("x"))], |_| ("name".into(), String::new())).await, Err(PathError::Exists { .. })));
        assert!(matches!(paths.delete("front").await, Err(PathError::FromFile(_))));
        assert!(matches!(paths.replace("front", spec("x")).await, Err(PathError::FromFile(_))));
        let invalid = paths.add(vec![("ok".into(), spec("d")), ("bad name".into(), spec("e"))], |index| (format!("paths[{index}].name"), format!("paths[{index}]"))).await;
        assert!(matches!(invalid, Err(PathError::Invalid(ConfigError::Invalid { ref field, .. })) if field == "paths[1].name"), "{invalid:?}");
        assert!(paths.get("ok").await.is_none(), "a batch is added whole or not at all");
        paths.delete("side").await.expect("deleted");
        let side = paths.registry.get("side");
        assert!(side.is_none(), "no longer served");
        drop(paths);

        let restarted = manager(&dir, &[("front", "a")]);
        assert_eq!(names(&restarted).await, vec![("back".to_owned(), Origin::Api), ("front".to_owned(), Origin::File)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_change_keeps_the_hub_and_a_removal_ends_its_readers() {
        let dir = scratch_dir("change");
        let paths = manager(&dir, &[]);
        paths.add(vec![("cam".into(), spec("a"))], |_| ("name".into(), String::new())).await.expect("added");
        let before = paths.registry.get("cam").expect("served");
        let mut reader = before.subscribe();
        paths.replace("cam", PathSpec { transport: Some(crate::config::RtspTransport::Udp), ..spec("b") }).await.expect("replaced");
        let after = paths.registry.get("cam").expect("served");
        assert!(Arc::ptr_eq(&before, &after), "the same hub: its viewers stay");
        assert_eq!(after.source_description(), "rtsp://127.0.0.1:9/b (udp)");
        paths.delete("cam").await.expect("deleted");
        let ended = tokio::time::timeout(std::time::Duration::from_secs(2), reader.next()).await.expect("the reader is told at once");
        assert!(ended.is_none(), "the reader ends");
        assert_eq!(before.state().name(), "removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn two_changes_at_once_both_apply() {
        let dir = scratch_dir("modify");
        let paths = manager(&dir, &[]);
        paths.add(vec![("cam".into(), spec("a"))], |_| ("name".into(), String::new())).await.expect("added");
        let transport = paths.modify("cam", |stored| Ok::<_, PathError>(PathSpec { transport: Some(crate::config::RtspTransport::Udp), ..stored.clone() }));
        let username = paths.modify("cam", |stored| Ok::<_, PathError>(PathSpec { username: Some("viewer".into()), ..stored.clone() }));
        let (first, second) = tokio::join!(transport, username);
        first.and(second).expect("both changed");
        let kept = &PathStore::new(&dir).load().expect("loads")["cam"];
        assert_eq!((kept.transport, kept.username.as_deref()), (Some(crate::config::RtspTransport::Udp), Some("viewer")), "neither change lost the other");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_file_wins_over_a_kept_path_of_the_same_name() {
        let dir = scratch_dir("wins");
        let paths = manager(&dir, &[]);
        paths.add(vec![("cam".into(), spec("api"))], |_| ("name".into(), String::new())).await.expect("added");
        drop(paths);
        let restarted = manager(&dir, &[("cam", "file")]);
        assert_eq!(names(&restarted).await, vec![("cam".to_owned(), Origin::File)]);
        assert!(PathStore::new(&dir).load().expect("loads").is_empty(), "the API's copy is gone from the store");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
