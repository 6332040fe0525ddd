//! Where a node's state lives: one JSON file per node. Every command is a read-modify-write
//! under an exclusive lock on a sibling `.lock` file, and the write is atomic (temp file,
//! fsync, rename, fsync of the directory), so commands running in parallel on one node —
//! threads of one process or separate `ovs-sim` processes — see one consistent node.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use atomic_write_file::AtomicWriteFile;

use super::error::SimError;
use super::state::NodeState;

/// The state file of one node and its lock.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    lock_path: PathBuf,
}

/// Holds the node's exclusive lock until dropped.
struct LockGuard {
    _file: File,
}

impl Store {
    /// The store of the node whose state is at `path` (the lock is `path` + `.lock`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        Store {
            path,
            lock_path: PathBuf::from(lock),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> SimError + '_ {
        move |source| SimError::Io {
            path: self.path.clone(),
            action,
            source,
        }
    }

    fn lock(&self) -> Result<LockGuard, SimError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|source| SimError::Io {
                path: self.lock_path.clone(),
                action: "open lock file",
                source,
            })?;
        file.lock().map_err(|source| SimError::Io {
            path: self.lock_path.clone(),
            action: "lock",
            source,
        })?;
        Ok(LockGuard { _file: file })
    }

    fn load(&self) -> Result<NodeState, SimError> {
        let text = std::fs::read_to_string(&self.path).map_err(self.io("read"))?;
        serde_json::from_str(&text).map_err(|source| SimError::Parse {
            path: self.path.clone(),
            source,
        })
    }

    fn save(&self, state: &NodeState) -> Result<(), SimError> {
        let json = serde_json::to_vec_pretty(state).map_err(SimError::Serialize)?;
        let mut file = AtomicWriteFile::open(&self.path).map_err(self.io("write"))?;
        file.write_all(&json).map_err(self.io("write"))?;
        file.write_all(b"\n").map_err(self.io("write"))?;
        file.commit().map_err(self.io("write"))
    }

    /// Replaces the whole state (creating the file).
    pub fn create(&self, state: &NodeState) -> Result<(), SimError> {
        let _guard = self.lock()?;
        self.save(state)
    }

    /// Reads the state under the lock.
    pub fn read(&self) -> Result<NodeState, SimError> {
        let _guard = self.lock()?;
        self.load()
    }

    /// Read-modify-write under the lock; the state is written back atomically.
    pub fn update<R>(&self, f: impl FnOnce(&mut NodeState) -> R) -> Result<R, SimError> {
        let _guard = self.lock()?;
        let mut state = self.load()?;
        let r = f(&mut state);
        self.save(&state)?;
        Ok(r)
    }
}
