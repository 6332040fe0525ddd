//! The state directory: everything ovsup keeps between runs of one environment (the run
//! journal now; the VM record and the run lock live here too).

pub mod journal;
pub mod lock;
pub mod steps;
pub mod vm_record;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The default state directory for an inventory: `$XDG_STATE_HOME/ovsup/<stem>`, falling back
/// to `~/.local/state/ovsup/<stem>`.
pub fn default_dir(inventory_stem: &str) -> Result<PathBuf> {
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
    Ok(base.join("ovsup").join(inventory_stem))
}

/// Create `dir` (and parents) if missing, private to the user.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}
