//! The inputs of a mount's evaluation, as plain data.
//!
//! The evaluator records every input it reads (files, listings, probes,
//! environment variables, fetched trees, impure builtins: see
//! `attrfs_eval::record`); a worker sends them along its answers (an
//! inputs frame in [`crate::protocol`]), a [`Backend`](crate::Backend)
//! hands them to the service ([`Backend::take_inputs`](crate::Backend::take_inputs)),
//! and the service gathers them into one [`InputSet`] per service (one
//! service is one generation of a live mount). This crate only carries
//! them: what a fingerprint means, and how to observe an input again, is
//! the evaluator's business.

use rustc_hash::FxHashMap;

/// What sort of input (the evaluator's `InputKind`, one to one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    /// A file's contents.
    File,
    /// A directory's listing.
    Dir,
    /// A path's type (not following a final symlink).
    FileType,
    /// Whether a path exists.
    Exists,
    /// A symlink's target.
    Link,
    /// A file's executable bit.
    Executable,
    /// An environment variable.
    Env,
    /// A fetched store object named by its hash.
    Fetch,
    /// A local tree taken whole (watched recursively).
    Tree,
    /// Something that makes the evaluation unrepeatable.
    Impure,
}

impl InputKind {
    /// Every kind; a kind's index is its wire code.
    pub const ALL: [InputKind; 10] = [
        InputKind::File,
        InputKind::Dir,
        InputKind::FileType,
        InputKind::Exists,
        InputKind::Link,
        InputKind::Executable,
        InputKind::Env,
        InputKind::Fetch,
        InputKind::Tree,
        InputKind::Impure,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    /// The kind of a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The lower-case name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::File => "file",
            InputKind::Dir => "directory",
            InputKind::FileType => "type of",
            InputKind::Exists => "existence of",
            InputKind::Link => "link",
            InputKind::Executable => "executable bit of",
            InputKind::Env => "environment variable",
            InputKind::Fetch => "fetched",
            InputKind::Tree => "tree",
            InputKind::Impure => "impure",
        }
    }

    /// Whether the input names a path on the local filesystem.
    pub fn is_local_path(self) -> bool {
        !matches!(self, InputKind::Env | InputKind::Fetch | InputKind::Impure)
    }
}

/// One input: what was consulted and the fingerprint of what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Input {
    /// What sort of input.
    pub kind: InputKind,
    /// The path, variable name or description.
    pub name: String,
    /// What was observed.
    pub fingerprint: String,
}

/// The inputs of one generation: one entry per kind and name, the first
/// observation kept.
///
/// Two observations of the same input that differ mean the sources changed
/// while the generation was being evaluated (a worker replaced after an
/// edit read the new file while the daemon still serves answers of the
/// old): the set remembers that it is [`InputSet::inconsistent`].
#[derive(Clone, Debug, Default)]
pub struct InputSet {
    inputs: Vec<Input>,
    index: FxHashMap<(InputKind, String), usize>,
    conflict: Option<Input>,
}

impl InputSet {
    /// Adds inputs; returns those that were new.
    pub fn extend(&mut self, inputs: Vec<Input>) -> Vec<Input> {
        let mut new = Vec::new();
        for input in inputs {
            let key = (input.kind, input.name.clone());
            match self.index.get(&key) {
                Some(&i) => {
                    if self.inputs[i].fingerprint != input.fingerprint && self.conflict.is_none() {
                        self.conflict = Some(input);
                    }
                }
                None => {
                    self.index.insert(key, self.inputs.len());
                    self.inputs.push(input.clone());
                    new.push(input);
                }
            }
        }
        new
    }

    /// Every input, first observed first.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// An input that was observed differently since it was first recorded.
    pub fn inconsistent(&self) -> Option<&Input> {
        self.conflict.as_ref()
    }

    /// Whether the evaluation used something unrepeatable.
    pub fn is_impure(&self) -> bool {
        self.inputs.iter().any(|i| i.kind == InputKind::Impure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, fp: &str) -> Input {
        Input {
            kind: InputKind::File,
            name: name.into(),
            fingerprint: fp.into(),
        }
    }

    #[test]
    fn a_set_keeps_the_first_observation_and_notices_a_different_one() {
        let mut set = InputSet::default();
        assert_eq!(set.extend(vec![file("/a", "1"), file("/b", "1")]).len(), 2);
        assert!(set.extend(vec![file("/a", "1")]).is_empty());
        assert!(set.inconsistent().is_none());
        assert!(set.extend(vec![file("/a", "2")]).is_empty());
        assert_eq!(set.inconsistent(), Some(&file("/a", "2")));
        assert_eq!(set.inputs()[0], file("/a", "1"));
        assert!(!set.is_impure());
    }

    #[test]
    fn codes_round_trip() {
        for kind in InputKind::ALL {
            assert_eq!(InputKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(InputKind::from_code(200), None);
    }
}
