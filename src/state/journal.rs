//! The run journal: every remote command of a run, one JSON object per line, appended to
//! `<state-dir>/runs/<UTC timestamp>-<runbook>.jsonl` as it ends. It is the audit log of what
//! ran where; each line is written with one `write` on an append-only file, so a crash loses at
//! most the command in flight and never corrupts earlier lines.
//!
//! The first line says who ran what ([`Begin`]: `{"type":"begin", …}`: user, controller host,
//! pid, runbooks, the flags that matter, ovsup's version, the target nodes); the last one how
//! it ended ([`End`]: `{"type":"end", …}`: exit code, duration, the error). Command lines have
//! no `type` and are what they always were (node, command, start, ms, code, bytes, error,
//! dry_run): journals of older versions, without the first and last lines, still read. A run
//! that was killed has no last line.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The version of the first and last lines' format (`format` of [`Begin`]).
pub const FORMAT: u32 = 1;

/// One journal line, as written for a command.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The node.
    pub node: &'a str,
    /// The command, as sent (shell text, before the `timeout` wrapper; secrets redacted).
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

/// A command line of a journal, as read back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Command {
    /// The node.
    pub node: String,
    /// The command, as sent (secrets redacted).
    pub command: String,
    /// When it started (RFC 3339, UTC).
    pub start: String,
    /// How long it took, in milliseconds.
    pub ms: u64,
    /// Its exit code, when it ran to an end.
    pub code: Option<i32>,
    /// Bytes of output.
    #[serde(default)]
    pub bytes: u64,
    /// Why it did not run to an end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when `--dry-run` only printed it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// The first line of a run's journal: who ran what, how, where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Begin {
    /// The version of this line's format ([`FORMAT`]).
    pub format: u32,
    /// When the run started (RFC 3339, UTC).
    pub start: String,
    /// The user ovsup ran as.
    pub user: String,
    /// The user who ran it through sudo (`$SUDO_USER`), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    /// The host name of the machine ovsup ran on (the controller).
    pub controller: String,
    /// ovsup's process id.
    pub pid: u32,
    /// ovsup's version.
    pub ovsup: String,
    /// The runbooks run, in order (`eval` for `ovsup eval`, `ping` for `nodes --ping`).
    pub runbooks: Vec<String>,
    /// Where each came from, as errors name it (`runbooks/alba.rhai` is a shipped one).
    #[serde(default)]
    pub scripts: Vec<String>,
    /// The inventory: its file, or `sim:N`.
    pub inventory: String,
    /// `ssh` or `sim`.
    pub backend: String,
    /// The target nodes (the inventory minus the excluded ones, within `--limit`).
    pub nodes: Vec<String>,
    /// The command-line flags that change what a run does.
    pub flags: Flags,
}

/// The flags of a run that change what it does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flags {
    /// `--dry-run`.
    #[serde(default)]
    pub dry_run: bool,
    /// `--skip-vm`.
    #[serde(default)]
    pub skip_vm: bool,
    /// `--force`.
    #[serde(default)]
    pub force: bool,
    /// `--yes`.
    #[serde(default)]
    pub yes: bool,
    /// `--limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `--forks`.
    #[serde(default)]
    pub forks: usize,
    /// `--set KEY=VALUE` (the last value of a key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
}

impl Flags {
    /// The flags as they would be given on the command line, those at their default left out
    /// (`--forks 32` is the default).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (on, flag) in [
            (self.dry_run, "--dry-run"),
            (self.skip_vm, "--skip-vm"),
            (self.force, "--force"),
            (self.yes, "--yes"),
        ] {
            if on {
                args.push(flag.to_string());
            }
        }
        if let Some(limit) = &self.limit {
            args.push(format!("--limit {}", word(limit)));
        }
        if self.forks != 0 && self.forks != 32 {
            args.push(format!("--forks {}", self.forks));
        }
        for (k, v) in &self.set {
            args.push(format!("--set {}", word(&format!("{k}={v}"))));
        }
        args
    }
}

/// A word as a shell would need it typed: as it is when nothing in it is special, else quoted.
fn word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_=.,:/@%+-".contains(c));
    if plain {
        text.to_string()
    } else {
        shlex::try_quote(text).map_or_else(|_| format!("{text:?}"), |q| q.into_owned())
    }
}

/// The last line of a run's journal: how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct End {
    /// When it ended (RFC 3339, UTC).
    pub end: String,
    /// How long the run took, in milliseconds.
    pub ms: u64,
    /// ovsup's exit code.
    pub code: i32,
    /// The error it ended with: the object of `--json`'s result event (`kind`, `message`,
    /// `node`, `command`, `code`, …; docs/errors.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// A run lock asked of a node (not a command: bookkeeping, kept for the audit).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockNote {
    /// The node.
    pub node: String,
    /// When it was asked (RFC 3339, UTC).
    pub start: String,
    /// How long the answer took, in milliseconds.
    pub ms: u64,
    /// `held`, `taken over`, `busy`, or why it could not be asked.
    pub outcome: String,
}

/// The first or last line, or a note, tagged with its `type`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum MarkRef<'a> {
    Begin(&'a Begin),
    End(&'a End),
    Lock(&'a LockNote),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Mark {
    Begin(Box<Begin>),
    End(End),
    Lock(LockNote),
}

/// One line of a journal, as read back.
#[derive(Debug, Clone)]
pub enum Line {
    /// The first line.
    Begin(Box<Begin>),
    /// A command.
    Command(Command),
    /// The last line.
    End(End),
    /// A run lock asked of a node.
    Lock(LockNote),
    /// A line this version does not understand (a later format, a torn write).
    Unknown,
}

impl Line {
    /// Read one line.
    pub fn parse(text: &str) -> Line {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return Line::Unknown;
        };
        if value.get("type").is_some() {
            return match serde_json::from_value::<Mark>(value) {
                Ok(Mark::Begin(b)) => Line::Begin(b),
                Ok(Mark::End(e)) => Line::End(e),
                Ok(Mark::Lock(l)) => Line::Lock(l),
                Err(_) => Line::Unknown,
            };
        }
        serde_json::from_value(value).map_or(Line::Unknown, Line::Command)
    }
}

/// The open journal of one run. Clones share the file: the host records commands through
/// one, `run.rs` closes the run through another (see [`RunJournals`]).
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    file: Mutex<File>,
    began: Instant,
    ended: AtomicBool,
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
            inner: Arc::new(Inner {
                path,
                file: Mutex::new(file),
                began: Instant::now(),
                ended: AtomicBool::new(false),
            }),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Append one command entry (one `write`).
    pub fn record(&self, entry: &Entry<'_>) -> Result<()> {
        self.append(entry)
    }

    /// Note a run lock asked of a node.
    pub fn lock(&self, note: &LockNote) -> Result<()> {
        self.append(&MarkRef::Lock(note))
    }

    /// Write the first line: who runs what.
    pub fn begin(&self, begin: &Begin) -> Result<()> {
        self.append(&MarkRef::Begin(begin))
    }

    /// Write the last line: the exit code, how long the run took since the journal was
    /// created, and the error. Only the first call writes.
    pub fn end(&self, code: i32, error: Option<&Error>) -> Result<()> {
        if self.inner.ended.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let end = End {
            end: now_rfc3339(),
            ms: u64::try_from(self.inner.began.elapsed().as_millis()).unwrap_or(u64::MAX),
            code,
            error: error.map(Error::to_json),
        };
        self.append(&MarkRef::End(&end))
    }

    fn append(&self, line: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(line).map_err(|e| Error::Internal(e.to_string()))?;
        line.push(b'\n');
        let mut file = self
            .inner
            .file
            .lock()
            .map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        file.write_all(&line)
            .map_err(|e| Error::io(&self.inner.path, e))
    }
}

/// The journals a command opened, for `run.rs` to close with the command's exit code and
/// error once they are known (before the outcome is rendered).
#[derive(Default)]
pub struct RunJournals {
    open: Mutex<Vec<Journal>>,
}

impl RunJournals {
    /// Close `journal` with the command's outcome, later.
    pub fn add(&self, journal: Journal) {
        if let Ok(mut open) = self.open.lock() {
            open.push(journal);
        }
    }

    /// Write the last line of every journal opened; the errors of those that could not be
    /// written.
    pub fn close(&self, code: i32, error: Option<&Error>) -> Vec<Error> {
        let open = match self.open.lock() {
            Ok(mut open) => std::mem::take(&mut *open),
            Err(_) => return vec![Error::Internal("journal list lock poisoned".into())],
        };
        open.iter()
            .filter_map(|j| j.end(code, error).err())
            .collect()
    }
}

/// Every line of a journal file (an unreadable line is [`Line::Unknown`]).
pub fn read(path: &Path) -> Result<Vec<Line>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(Line::parse)
        .collect())
}

/// The name of the user ovsup runs as (its effective uid), else `$USER`, else the uid.
pub fn user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => std::env::var("USER").unwrap_or_else(|_| format!("uid {uid}")),
    }
}

/// The host name of the machine ovsup runs on.
pub fn controller() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown host".into())
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_reads_back_with_its_first_and_last_lines_and_old_ones_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::create(dir.path(), "alba").expect("create");
        let begin = Begin {
            format: FORMAT,
            start: now_rfc3339(),
            user: "root".into(),
            sudo_user: Some("alice".into()),
            controller: "ctl-01".into(),
            pid: 42,
            ovsup: "0.1.0".into(),
            runbooks: vec!["alba".into()],
            scripts: vec!["runbooks/alba.rhai".into()],
            inventory: "sim:3".into(),
            backend: "sim".into(),
            nodes: vec!["node-01".into()],
            flags: Flags {
                skip_vm: true,
                forks: 32,
                set: BTreeMap::from([("batch".into(), "2".into())]),
                ..Flags::default()
            },
        };
        j.begin(&begin).expect("begin");
        j.record(&Entry {
            node: "node-01",
            command: "true",
            start: now_rfc3339(),
            ms: 3,
            code: Some(0),
            bytes: 0,
            error: None,
            dry_run: false,
        })
        .expect("record");
        j.clone()
            .end(1, Some(&Error::Refused("no".into())))
            .expect("end");
        j.end(0, None).expect("a second end writes nothing");
        let lines = read(j.path()).expect("read");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(matches!(&lines[0], Line::Begin(b) if **b == begin));
        assert!(matches!(&lines[1], Line::Command(c) if c.command == "true" && c.code == Some(0)));
        assert!(
            matches!(&lines[2], Line::End(e) if e.code == 1 && e.error.as_ref().is_some_and(|e| e["kind"] == "refused"))
        );
        let text = std::fs::read_to_string(j.path()).expect("text");
        assert!(
            text.starts_with("{\"type\":\"begin\",\"format\":1,"),
            "{text}"
        );
        // A line of an older ovsup is a command; garbage is unknown, not an error.
        let old = r#"{"node":"n","command":"x","start":"2024-01-01T00:00:00.000Z","ms":1,"code":2,"bytes":5}"#;
        assert!(matches!(Line::parse(old), Line::Command(c) if c.code == Some(2)));
        assert!(matches!(Line::parse("{\"node\":"), Line::Unknown));
        assert_eq!(
            begin.flags.to_args(),
            ["--skip-vm", "--set batch=2"],
            "{:?}",
            begin.flags
        );
    }
}
