//! The paths made through the API, kept in `state_dir/paths.json` so that they outlive a
//! restart and a crash.
//!
//! The file is replaced whole: written beside it, flushed to disk, renamed over it, and the
//! folder flushed, so that after a kill -9 or a power cut it holds either the old set or the
//! new one, never half of one. The API answers a change only after that. One small JSON
//! document is all there is to keep, so it needs no database, and people can read it.

use crate::config::PathSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "paths.json";
/// The format of the file; a later Lookout that changes it can tell.
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state folder {dir}: {source}")]
    CreateDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot read {file}: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file} is not a paths file Lookout can read: {source}; move it away to start without the paths it holds")]
    Parse { file: PathBuf, source: serde_json::Error },
    #[error("{file} has format version {found}; this Lookout reads version {VERSION}")]
    Version { file: PathBuf, found: u32 },
    #[error("cannot write {file}: {source}")]
    Write { file: PathBuf, source: std::io::Error },
}

#[derive(Serialize, Deserialize)]
struct StoredPaths {
    version: u32,
    paths: BTreeMap<String, PathSpec>,
}

/// Where the API's paths are kept.
#[derive(Debug, Clone)]
pub struct PathStore {
    file: PathBuf,
    /// Held for a whole write: a write whose caller went away (a client that hung up) still
    /// finishes, and the next one waits for it rather than racing it to the rename.
    writing: std::sync::Arc<std::sync::Mutex<()>>,
}

impl PathStore {
    /// The store in `state_dir`; the folder is made when the first path is kept.
    pub fn new(state_dir: &Path) -> Self {
        Self { file: state_dir.join(FILE_NAME), writing: Default::default() }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The kept paths; none before the first is made.
    pub fn load(&self) -> Result<BTreeMap<String, PathSpec>, StoreError> {
        let text = match std::fs::read(&self.file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(StoreError::Read { file: self.file.clone(), source }),
        };
        let stored: StoredPaths = serde_json::from_slice(&text).map_err(|source| StoreError::Parse { file: self.file.clone(), source })?;
        if stored.version != VERSION {
            return Err(StoreError::Version { file: self.file.clone(), found: stored.version });
        }
        Ok(stored.paths)
    }

    /// Replaces the kept paths with `paths`, durably: when this returns `Ok`, a crash keeps
    /// them. Blocks on the disk; call it off the async threads.
    pub fn save(&self, paths: &BTreeMap<String, PathSpec>) -> Result<(), StoreError> {
        let write_error = |source| StoreError::Write { file: self.file.clone(), source };
        let _writing = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { dir: dir.to_owned(), source })?;
        }
        let text = serde_json::to_vec_pretty(&StoredPaths { version: VERSION, paths: paths.clone() }).map_err(|error| write_error(error.into()))?;
        let partial = self.file.with_extension("json.partial");
        // Only Lookout's user may read it: it holds the cameras' passwords.
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial).map_err(write_error)?;
        file.write_all(&text).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        drop(file);
        std::fs::rename(&partial, &self.file).map_err(write_error)?;
        // The rename itself is durable only once the folder is.
        if let Some(dir) = self.file.parent() {
            std::fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(write_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lookout-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn what_is_saved_is_loaded_and_nothing_is_left_beside_it() {
        let dir = scratch_dir("roundtrip");
        let store = PathStore::new(&dir.join("nested"));
        assert!(store.load().expect("no file yet").is_empty());
        assert!(!dir.exists(), "nothing is made before a path is kept");
        let spec = PathSpec { source: "rtsp://10.0.0.5/stream1".into(), username: Some("admin".into()), password: Some("pw".into()), ..Default::default() };
        let paths = BTreeMap::from([("front".to_owned(), spec)]);
        store.save(&paths).expect("saved");
        assert_eq!(store.load().expect("loaded"), paths);
        let files: Vec<_> = std::fs::read_dir(dir.join("nested")).expect("folder").map(|entry| entry.expect("entry").file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from(FILE_NAME)]);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(store.file()).expect("metadata").permissions());
        assert_eq!(mode & 0o777, 0o600, "the passwords are for Lookout's user alone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_or_newer_file_is_an_error_that_names_it() {
        let dir = scratch_dir("damaged");
        let store = PathStore::new(&dir);
        std::fs::create_dir_all(&dir).expect("folder");
        std::fs::write(store.file(), b"{\"version\": 1, \"paths\": {\"a\": ").expect("write");
        let error = store.load().expect_err("half a document");
        assert!(matches!(error, StoreError::Parse { .. }) && error.to_string().contains("paths.json"), "{error}");
        std::fs::write(store.file(), b"{\"version\": 7, \"paths\": {}}").expect("write");
        assert!(matches!(store.load(), Err(StoreError::Version { found: 7, .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
