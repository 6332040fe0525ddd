//! The run journal: every remote command of a run, one JSON object per line, appended to
//! `<state-dir>/runs/<UTC timestamp>-<runbook>.jsonl` as it ends. It is the audit log of what
//! ran where; each line is written with one `write` on an append-only file, so a crash loses at
//! most the command in flight and never corrupts earlier lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, Result};

/// One journal line.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The node.
    pub node: &'a str,
    /// The command, as sent (shell text, before the `timeout` wrapper).
    pub command: &'a str,
    /// When it started (RFC 3339, UTC).
    pub start: String,
    /// How long it took, in milliseconds.
    pub ms: u64,
    /// Its exit code, when it ran to an end.
    pub code: Option<i32>,
    /// Bytes of output (stdout + stderr).
    pub bytes: u64,
    /// Why it did not run to an end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// Set when `--dry-run` only printed it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// The open journal of one run.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Start the journal of a run of `runbook` in `state_dir`.
    pub fn create(state_dir: &Path, runbook: &str) -> Result<Journal> {
        let dir = state_dir.join("runs");
        super::ensure_dir(&dir)?;
        let stamp = humantime::format_rfc3339_millis(SystemTime::now())
            .to_string()
            .replace(':', "");
        let safe: String = runbook
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{stamp}-{safe}.jsonl"));
        let file = OpenOptions::new()
            .mode(0o600)
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry (one `write`).
    pub fn record(&self, entry: &Entry<'_>) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::Internal(e.to_string()))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        file.write_all(&line).map_err(|e| Error::io(&self.path, e))
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
