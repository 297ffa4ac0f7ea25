//! The evaluator's recorded inputs (`attrfs_eval::record`) and the
//! boundary's plain data (`attrfs_vfs::inputs`), one to one.

use attrfs_eval::record::{Input as Recorded, InputKind as RecordedKind};
use attrfs_vfs::inputs::{Input, InputKind};

const KINDS: [(RecordedKind, InputKind); 10] = [
    (RecordedKind::File, InputKind::File),
    (RecordedKind::Dir, InputKind::Dir),
    (RecordedKind::FileType, InputKind::FileType),
    (RecordedKind::Exists, InputKind::Exists),
    (RecordedKind::Link, InputKind::Link),
    (RecordedKind::Executable, InputKind::Executable),
    (RecordedKind::Env, InputKind::Env),
    (RecordedKind::Fetch, InputKind::Fetch),
    (RecordedKind::Tree, InputKind::Tree),
    (RecordedKind::Impure, InputKind::Impure),
];

/// Recorded inputs as the boundary's plain data.
pub fn to_wire(recorded: Vec<Recorded>) -> Vec<Input> {
    recorded
        .into_iter()
        .map(|i| Input {
            kind: KINDS
                .iter()
                .find(|(r, _)| *r == i.kind)
                .map_or(InputKind::Impure, |(_, w)| *w),
            name: i.name,
            fingerprint: i.fingerprint,
        })
        .collect()
}

/// An input from the boundary as the evaluator's, which can be observed
/// again ([`Recorded::current`]).
pub fn from_wire(input: &Input) -> Recorded {
    Recorded {
        kind: KINDS
            .iter()
            .find(|(_, w)| *w == input.kind)
            .map_or(RecordedKind::Impure, |(r, _)| *r),
        name: input.name.clone(),
        fingerprint: input.fingerprint.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_crosses_both_ways() {
        assert_eq!(KINDS.len(), RecordedKind::ALL.len());
        assert_eq!(KINDS.len(), InputKind::ALL.len());
        for (r, w) in KINDS {
            let recorded = Recorded {
                kind: r,
                name: "/x".into(),
                fingerprint: "f".into(),
            };
            let wire = to_wire(vec![recorded.clone()]);
            assert_eq!(wire[0].kind, w);
            assert_eq!(from_wire(&wire[0]), recorded);
        }
    }
}
