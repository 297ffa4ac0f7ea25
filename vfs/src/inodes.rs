//! Stable inode numbers per attribute path.
//!
//! The same attribute path gets the same inode number for the whole life of
//! a mount, whichever way it was reached (lookup, readdir), so `find`, `du`
//! and `ls -i` see a consistent tree. Numbers are handed out in order of
//! first sight and never reused; the kernel's `forget` is ignored, since
//! forgetting would break that promise. The table costs one path per node
//! that was ever looked up, which is bounded by what the user visits.

use rustc_hash::FxHashMap;

use parking_lot::RwLock;

use crate::node::{AttrPath, Segment};

/// The inode number of the mounted root value.
pub const ROOT_INODE: u64 = 1;

struct Entry {
    parent: u64,
    path: AttrPath,
}

#[derive(Default)]
struct Table {
    by_path: FxHashMap<AttrPath, u64>,
    /// `entries[ino - 1]`.
    entries: Vec<Entry>,
}

impl Table {
    /// The inode of `path` and the path the table keeps for it, if known.
    fn known(&self, path: &AttrPath) -> Option<(u64, AttrPath)> {
        self.by_path
            .get_key_value(path)
            .map(|(kept, &ino)| (ino, kept.clone()))
    }

    /// The inode of `path`, allocated if new. Called under the write
    /// lock: another thread may have allocated it since the caller looked
    /// under the read lock.
    fn intern(&mut self, parent: u64, path: AttrPath) -> (u64, AttrPath) {
        if let Some(known) = self.known(&path) {
            return known;
        }
        let ino = self.entries.len() as u64 + 1;
        self.by_path.insert(path.clone(), ino);
        self.entries.push(Entry {
            parent,
            path: path.clone(),
        });
        (ino, path)
    }
}

/// The thread-safe map between inode numbers and attribute paths.
pub struct InodeTable {
    table: RwLock<Table>,
}

impl Default for InodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl InodeTable {
    /// A table holding only the root (inode 1, its own parent).
    pub fn new() -> Self {
        let root = AttrPath::root();
        let mut table = Table::default();
        table.by_path.insert(root.clone(), ROOT_INODE);
        table.entries.push(Entry {
            parent: ROOT_INODE,
            path: root,
        });
        InodeTable {
            table: RwLock::new(table),
        }
    }

    /// The inode of entry `segment` of directory `parent`, allocating it on
    /// first sight. `None` if `parent` is not a known inode.
    pub fn child(&self, parent: u64, segment: &Segment) -> Option<(u64, AttrPath)> {
        let path = self.path(parent)?.child(segment.clone());
        Some(self.intern(parent, path))
    }

    /// The inode of `path`, whose parent directory is inode `parent`,
    /// allocating it on first sight. Lets a caller check that a name exists
    /// before it costs an inode.
    pub fn intern(&self, parent: u64, path: AttrPath) -> (u64, AttrPath) {
        if let Some(known) = self.table.read().known(&path) {
            return known;
        }
        self.table.write().intern(parent, path)
    }

    /// [`InodeTable::intern`] of a batch of children of `parent` (the
    /// entries of a READDIRPLUS reply): one read lock when all are known
    /// (a directory read again), else one write lock for the whole batch
    /// (a walk's first sight of them), instead of a lock or two per entry.
    pub fn intern_many(&self, parent: u64, paths: Vec<AttrPath>) -> Vec<(u64, AttrPath)> {
        {
            let table = self.table.read();
            let known: Option<Vec<(u64, AttrPath)>> =
                paths.iter().map(|path| table.known(path)).collect();
            if let Some(known) = known {
                return known;
            }
        }
        let mut table = self.table.write();
        paths
            .into_iter()
            .map(|path| table.intern(parent, path))
            .collect()
    }

    /// The attribute path of an inode.
    pub fn path(&self, ino: u64) -> Option<AttrPath> {
        let table = self.table.read();
        let i = usize::try_from(ino.checked_sub(1)?).ok()?;
        table.entries.get(i).map(|e| e.path.clone())
    }

    /// The parent directory of an inode (the root is its own parent).
    pub fn parent(&self, ino: u64) -> Option<u64> {
        let table = self.table.read();
        let i = usize::try_from(ino.checked_sub(1)?).ok()?;
        table.entries.get(i).map(|e| e.parent)
    }

    /// The inode already allocated to a path, if any.
    pub fn lookup(&self, path: &AttrPath) -> Option<u64> {
        self.table.read().by_path.get(path).copied()
    }

    /// Every inode handed out so far, with its parent and path (the live
    /// view tells the kernel to forget them all in a new generation).
    pub fn snapshot(&self) -> Vec<(u64, u64, AttrPath)> {
        let table = self.table.read();
        table
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64 + 1, e.parent, e.path.clone()))
            .collect()
    }

    /// How many inodes have been allocated (including the root).
    pub fn len(&self) -> usize {
        self.table.read().entries.len()
    }

    /// Always false: the root is always there. Present for the usual
    /// `len`/`is_empty` pairing.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_one_and_its_own_parent() {
        let table = InodeTable::new();
        assert_eq!(table.path(ROOT_INODE), Some(AttrPath::root()));
        assert_eq!(table.parent(ROOT_INODE), Some(ROOT_INODE));
        assert_eq!(table.lookup(&AttrPath::root()), Some(ROOT_INODE));
        assert_eq!(table.path(0), None);
        assert_eq!(table.path(2), None);
    }

    #[test]
    fn inodes_are_stable_and_distinct() {
        let table = InodeTable::new();
        let (a, a_path) = table.child(ROOT_INODE, &Segment::name("a")).unwrap();
        let (b, _) = table.child(ROOT_INODE, &Segment::name("b")).unwrap();
        let (ab, ab_path) = table.child(a, &Segment::name("b")).unwrap();
        assert_ne!(a, b);
        assert_ne!(b, ab);
        assert_eq!(table.child(ROOT_INODE, &Segment::name("a")).unwrap().0, a);
        assert_eq!(table.child(a, &Segment::name("b")).unwrap().0, ab);
        assert_eq!(a_path, AttrPath::root().child(Segment::name("a")));
        assert_eq!(ab_path.parent().as_ref(), Some(&a_path));
        assert_eq!(table.parent(ab), Some(a));
        assert_eq!(table.lookup(&ab_path), Some(ab));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn a_batch_interns_as_one_by_one_would() {
        let table = InodeTable::new();
        let (a, _) = table.child(ROOT_INODE, &Segment::name("a")).unwrap();
        let root = AttrPath::root();
        let batch = table.intern_many(
            ROOT_INODE,
            ["b", "a", "c"]
                .map(|n| root.child(Segment::name(n)))
                .to_vec(),
        );
        let inos: Vec<u64> = batch.iter().map(|(ino, _)| *ino).collect();
        assert_eq!(inos[1], a);
        assert!(inos[0] != a && inos[2] != a && inos[0] != inos[2]);
        for (ino, path) in &batch {
            assert_eq!(table.lookup(path), Some(*ino));
            assert_eq!(table.path(*ino).as_ref(), Some(path));
            assert_eq!(table.parent(*ino), Some(ROOT_INODE));
        }
        assert_eq!(
            table.child(ROOT_INODE, &Segment::name("c")).unwrap().0,
            inos[2]
        );
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn synthetic_entries_and_same_named_attributes_differ() {
        let table = InodeTable::new();
        let (drv, _) = table.child(ROOT_INODE, &Segment::Drv).unwrap();
        let (attr, _) = table.child(ROOT_INODE, &Segment::name(".drv")).unwrap();
        assert_ne!(drv, attr);
    }

    #[test]
    fn unknown_parents_are_refused() {
        let table = InodeTable::new();
        assert!(table.child(42, &Segment::name("x")).is_none());
    }

    #[test]
    fn concurrent_allocation_agrees() {
        let table = std::sync::Arc::new(InodeTable::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let table = table.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .map(|i| table.child(ROOT_INODE, &Segment::index(i)).unwrap().0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(results.iter().all(|r| r == &results[0]));
        assert_eq!(table.len(), 201);
    }
}
