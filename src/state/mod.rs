//! The state directory: everything ovsup keeps between runs of one environment — the run
//! journal, the VM record, the steps in progress, the run lock — one directory per
//! environment (`$XDG_STATE_HOME/ovsup/<environment name>`), private to the user (0700, its
//! files 0600), marked with the environment it belongs to. The SSH masters' control sockets
//! live in its `ssh/` directory (`control`), so that they outlive a run.

pub mod control;
pub mod environment;
pub mod journal;
pub mod lock;
pub mod migrate;
pub mod steps;
pub mod vm_record;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where every environment's state directory lives: `$XDG_STATE_HOME/ovsup`, falling back to
/// `~/.local/state/ovsup`.
pub fn base_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/state"),
            None => {
                return Err(Error::Usage(
                    "neither XDG_STATE_HOME nor HOME is set: give --state-dir".into(),
                ));
            }
        },
    };
    Ok(base.join("ovsup"))
}

/// The default state directory of the environment called `name`.
pub fn default_dir(name: &str) -> Result<PathBuf> {
    Ok(base_dir()?.join(name))
}

/// Create `dir` (and parents) if missing, private to the user (0700).
pub fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

/// [`ensure_dir`] for a state directory, and refuse one that others can enter: it holds the
/// VM record and the run lock, and an operator may pass any `--state-dir`.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    ensure_dir(dir)?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| Error::io(dir, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::Refused(format!(
            "the state directory {} is open to its group or others (mode {:04o}): it holds the \
             VM record and the run lock; make it private (chmod 700 {}) or give another \
             --state-dir",
            dir.display(),
            mode & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

/// Write a state file atomically (temporary file, fsync, rename, fsync of the directory:
/// `atomic-write-file`), readable by the user only, whatever the file it replaces allowed.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use atomic_write_file::unix::OpenOptionsExt as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = atomic_write_file::AtomicWriteFile::options()
        .mode(0o600)
        .preserve_mode(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.commit().map_err(|e| Error::io(path, e))
}
