//! One run at a time per environment: an exclusive lock on `<state-dir>/run.lock`, held for
//! the whole run. The lock file also says who holds it (pid, host, runbook, since), so that a
//! refused second run can name the holder. The lock is the kernel's (`flock` through
//! `File::try_lock`): it is released when the holder exits, even when it crashes, so a stale
//! lock cannot block the next run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who holds the lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name of the machine running it.
    pub host: String,
    /// The runbook it runs.
    pub runbook: String,
    /// When it started (RFC 3339, UTC).
    pub since: String,
}

/// The held lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Take the environment's lock for a run of `runbook`, or refuse (exit 3) naming the holder.
    pub fn acquire(state_dir: &Path, runbook: &str) -> Result<RunLock> {
        let path = state_dir.join("run.lock");
        let mut file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let who = read_holder(&mut file)
                    .map(|h| {
                        format!(
                            "pid {} on {}, running {:?} since {}",
                            h.pid, h.host, h.runbook, h.since
                        )
                    })
                    .unwrap_or_else(|_| "a process that did not say who it is".into());
                return Err(Error::Refused(format!(
                    "another ovsup run holds this environment's lock ({}): {who}; wait for it to finish (only one run at a time may change an environment)",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let holder = Holder {
            pid: std::process::id(),
            host: crate::state::journal::controller(),
            runbook: runbook.to_string(),
            since: crate::state::journal::now_rfc3339(),
        };
        let text = serde_json::to_string(&holder).map_err(|e| Error::Internal(e.to_string()))?;
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Say nobody holds it before letting go; the kernel lock goes with the file anyway.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// What the lock file says of its holder. The holder writes it just after taking the lock, so
/// an empty file is read again for a moment before it is taken for a holder that says nothing.
fn read_holder(file: &mut File) -> std::result::Result<Holder, serde_json::Error> {
    const TRIES: usize = 20;
    let mut last = serde_json::from_str::<Holder>("");
    for _ in 0..TRIES {
        let mut text = String::new();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text));
        last = serde_json::from_str::<Holder>(&text);
        if last.is_ok() || read.is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_naming_the_holder_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = RunLock::acquire(dir.path(), "alba").expect("first");
        let err = RunLock::acquire(dir.path(), "check").expect_err("second must be refused");
        assert_eq!(err.code(), 3);
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("\"alba\""), "{text}");
        drop(first);
        RunLock::acquire(dir.path(), "check").expect("free again");
    }
}
