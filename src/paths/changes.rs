//! What a new reading of the configuration file changes (SIGHUP), decided without touching
//! anything: the manager then applies exactly these changes.

use super::Origin;
use crate::config::PathDefinition;
use std::collections::BTreeMap;

/// One path a new reading of the file touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// A path the file names now and no one served.
    Add(String),
    /// A path the API made, which the file now names too: the file's replaces it.
    TakeOver(String),
    /// One of the file's paths, written differently now.
    Change(String),
    /// One of the file's paths that the file no longer names.
    Remove(String),
}

impl std::fmt::Display for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Add(name) => write!(f, "{name}: added"),
            Self::TakeOver(name) => write!(f, "{name}: now the file's (the API's is removed)"),
            Self::Change(name) => write!(f, "{name}: changed"),
            Self::Remove(name) => write!(f, "{name}: removed"),
        }
    }
}

/// The changes from the paths served now (`current`, by name, with where each came from) to
/// the file's `new` paths, in name order. The API's paths that the file does not name are
/// left alone, and so are the file's that did not change.
pub fn file_changes(current: &BTreeMap<&str, (Origin, &PathDefinition)>, new: &BTreeMap<String, PathDefinition>) -> Vec<FileChange> {
    let mut changes: Vec<FileChange> = new
        .iter()
        .filter_map(|(name, definition)| match current.get(name.as_str()) {
            None => Some(FileChange::Add(name.clone())),
            Some((Origin::Api, _)) => Some(FileChange::TakeOver(name.clone())),
            Some((Origin::File, served)) if *served != definition => Some(FileChange::Change(name.clone())),
            Some((Origin::File, _)) => None,
        })
        .collect();
    changes.extend(
        current
            .iter()
            .filter(|(name, (origin, _))| *origin == Origin::File && !new.contains_key(**name))
            .map(|(name, _)| FileChange::Remove((*name).to_owned())),
    );
    changes.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    changes
}

fn name_of(change: &FileChange) -> &str {
    match change {
        FileChange::Add(name) | FileChange::TakeOver(name) | FileChange::Change(name) | FileChange::Remove(name) => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PathSpec;

    fn definition(source: &str) -> PathDefinition {
        PathDefinition::from_spec("", PathSpec { source: source.to_owned(), ..Default::default() }).expect("valid")
    }

    #[test]
    fn only_what_the_file_changed_is_touched() {
        let (same, old_source, api, api_only, dropped) =
            (definition("rtsp://10.0.0.1/a"), definition("rtsp://10.0.0.2/b"), definition("rtsp://10.0.0.3/c"), definition("rtsp://10.0.0.4/d"), definition("rtsp://10.0.0.5/e"));
        let current = BTreeMap::from([
            ("same", (Origin::File, &same)),
            ("edited", (Origin::File, &old_source)),
            ("claimed", (Origin::Api, &api)),
            ("api-only", (Origin::Api, &api_only)),
            ("dropped", (Origin::File, &dropped)),
        ]);
        let new = BTreeMap::from([
            ("same".to_owned(), definition("rtsp://10.0.0.1/a")),
            ("edited".to_owned(), definition("rtsp://10.0.0.2/b2")),
            ("claimed".to_owned(), definition("rtsp://10.0.0.3/c")),
            ("fresh".to_owned(), definition("testpattern")),
        ]);
        assert_eq!(
            file_changes(&current, &new),
            vec![
                FileChange::TakeOver("claimed".into()),
                FileChange::Remove("dropped".into()),
                FileChange::Change("edited".into()),
                FileChange::Add("fresh".into()),
            ]
        );
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let a = definition("testpattern");
        let current = BTreeMap::from([("a", (Origin::File, &a))]);
        assert!(file_changes(&current, &BTreeMap::from([("a".to_owned(), definition("testpattern"))])).is_empty());
    }
}
