//! Steps in progress: a runbook marks a dangerous step as begun before its first change and
//! as done after its last, in `<state-dir>/steps.json` (written atomically). A run that was
//! interrupted in between leaves the mark, so the next run of the same runbook knows it must
//! finish the step (restart services, start VMs) even though no package is pending any more:
//! that is how an interrupted run, re-run, converges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One step in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    /// When it was begun (RFC 3339, UTC).
    pub since: String,
}

/// The steps in progress of an environment.
pub struct Steps {
    path: PathBuf,
}

impl Steps {
    /// The steps file of a state directory.
    pub fn new(state_dir: &Path) -> Steps {
        Steps {
            path: state_dir.join("steps.json"),
        }
    }

    /// Every step in progress, by name.
    pub fn read(&self) -> Result<BTreeMap<String, Step>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::io(
                    &self.path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "not a steps file ({e}); it records interrupted upgrade steps: \
                             inspect it, and remove it only if no step is unfinished"
                        ),
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Whether `name` was begun and not finished.
    pub fn in_progress(&self, name: &str) -> Result<bool> {
        Ok(self.read()?.contains_key(name))
    }

    /// Mark `name` as begun (kept if it already was: the original time stays).
    pub fn begin(&self, name: &str) -> Result<()> {
        let mut steps = self.read()?;
        steps.entry(name.to_string()).or_insert_with(|| Step {
            since: crate::state::journal::now_rfc3339(),
        });
        self.write(&steps)
    }

    /// Mark `name` as finished.
    pub fn done(&self, name: &str) -> Result<()> {
        let mut steps = self.read()?;
        if steps.remove(name).is_some() {
            self.write(&steps)?;
        }
        Ok(())
    }

    fn write(&self, steps: &BTreeMap<String, Step>) -> Result<()> {
        let text = serde_json::to_vec_pretty(steps).map_err(|e| Error::Internal(e.to_string()))?;
        super::write_private(&self.path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_is_remembered_until_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let steps = Steps::new(dir.path());
        assert!(!steps.in_progress("alba").expect("read"));
        steps.begin("alba").expect("begin");
        let since = steps.read().expect("read")["alba"].since.clone();
        steps.begin("alba").expect("begin again");
        assert_eq!(steps.read().expect("read")["alba"].since, since);
        // Another process (a re-run) sees it.
        assert!(Steps::new(dir.path()).in_progress("alba").expect("read"));
        steps.done("alba").expect("done");
        assert!(!steps.in_progress("alba").expect("read"));
        std::fs::write(dir.path().join("steps.json"), "{oops").expect("write");
        let e = steps.read().expect_err("malformed");
        assert_eq!(e.code(), 1);
        assert!(e.to_string().contains("steps.json"), "{e}");
    }
}
