//! The runs of an environment, read back from their journals (`<state-dir>/runs/*.jsonl`, see
//! [`crate::state::journal`]): who ran what, when, with which flags, how it ended, and every
//! command per node. `ovsup history` lists them, `ovsup history show RUN` tells one, and
//! `--timeline` draws it (`src/timeline.rs`).
//!
//! A journal of an older ovsup has neither a first nor a last line: its run is listed, with
//! what its commands tell ([`Status::Unknown`]). A run whose journal has a first line and no
//! last one was killed ([`Status::Unfinished`]), unless its process still runs on this
//! machine ([`Status::Running`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::state::journal::{self, Begin, Command, End, Line};

/// One run, as its journal tells it.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its id: the journal's file name without `.jsonl` (`2025-06-01T120000.123Z-alba`).
    pub id: String,
    /// The journal file.
    pub path: PathBuf,
    /// The first line, when the journal has one.
    pub begin: Option<Begin>,
    /// The last line, when the run ended.
    pub end: Option<End>,
    /// Every command, in the order they ended.
    pub commands: Vec<Command>,
    /// Lines that could not be read (a torn last write, a later format).
    pub unreadable: usize,
}

/// How a run ended, as far as its journal tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit code 0.
    Ok,
    /// A non-zero exit code.
    Failed(i32),
    /// No last line, and its process still runs on this machine (this pid).
    Running(u32),
    /// No last line: the run was killed (or the machine went down).
    Unfinished,
    /// A journal of an older ovsup, without first and last lines.
    Unknown,
}

impl Status {
    /// The status as `--json` names it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed(_) => "failed",
            Status::Running(_) => "running",
            Status::Unfinished => "unfinished",
            Status::Unknown => "unknown",
        }
    }
}

/// What became of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Ok,
    /// Ran to an end with a non-zero exit code.
    NonZero(i32),
    /// Did not run to an end (unreachable, timed out, interrupted).
    Error,
    /// Only printed by `--dry-run`.
    DryRun,
}

/// What became of `command`.
pub fn outcome(command: &Command) -> Outcome {
    match (command.dry_run, command.code, &command.error) {
        (true, _, _) => Outcome::DryRun,
        (_, _, Some(_)) | (_, None, None) => Outcome::Error,
        (_, Some(0), None) => Outcome::Ok,
        (_, Some(code), None) => Outcome::NonZero(code),
    }
}

impl Outcome {
    /// The outcome as `--json` names it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NonZero(_) => "non_zero",
            Outcome::Error => "error",
            Outcome::DryRun => "dry_run",
        }
    }

    /// Whether the command went wrong (a non-zero exit or no end).
    pub fn failed(self) -> bool {
        matches!(self, Outcome::NonZero(_) | Outcome::Error)
    }
}

impl Run {
    /// Read a run's journal.
    pub fn load(path: &Path) -> Result<Run> {
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".jsonl").to_string())
            .unwrap_or_default();
        let mut run = Run {
            id,
            path: path.to_path_buf(),
            begin: None,
            end: None,
            commands: Vec::new(),
            unreadable: 0,
        };
        for line in journal::read(path)? {
            match line {
                Line::Begin(b) if run.begin.is_none() => run.begin = Some(*b),
                Line::End(e) => run.end = Some(e),
                Line::Command(c) => run.commands.push(c),
                Line::Lock(_) => {}
                Line::Begin(_) | Line::Unknown => run.unreadable += 1,
            }
        }
        Ok(run)
    }

    /// How the run ended.
    pub fn status(&self) -> Status {
        match (&self.begin, &self.end) {
            (_, Some(end)) if end.code == 0 => Status::Ok,
            (_, Some(end)) => Status::Failed(end.code),
            (Some(begin), None) if still_running(begin) => Status::Running(begin.pid),
            (Some(_), None) => Status::Unfinished,
            (None, None) => Status::Unknown,
        }
    }

    /// What it ran: the runbooks joined with `+` (for an older journal, the name its file
    /// carries).
    pub fn runbook(&self) -> String {
        match &self.begin {
            Some(b) => b.runbooks.join("+"),
            None => self
                .id
                .split_once("Z-")
                .map_or_else(|| self.id.clone(), |(_, label)| label.to_string()),
        }
    }

    /// When it started: its first line, else its first command, else its file name.
    pub fn start(&self) -> Option<SystemTime> {
        if let Some(t) = self.begin.as_ref().and_then(|b| parse_time(&b.start)) {
            return Some(t);
        }
        if let Some(t) = self
            .commands
            .iter()
            .filter_map(|c| parse_time(&c.start))
            .min()
        {
            return Some(t);
        }
        // `2025-06-01T120000.123Z-alba`: the colons were taken out of the time.
        let (stamp, _) = self.id.split_once("Z-")?;
        let (date, time) = stamp.split_once('T')?;
        if time.len() < 6 {
            return None;
        }
        parse_time(&format!(
            "{date}T{}:{}:{}Z",
            &time[..2],
            &time[2..4],
            &time[4..]
        ))
    }

    /// How long it took: from its last line, else up to the end of its last command.
    pub fn duration(&self) -> Option<Duration> {
        if let Some(end) = &self.end {
            return Some(Duration::from_millis(end.ms));
        }
        self.last_activity()
    }

    /// From the start to the end of the command that ended last.
    pub fn last_activity(&self) -> Option<Duration> {
        self.commands
            .iter()
            .filter_map(|c| self.offset(c).map(|o| o + Duration::from_millis(c.ms)))
            .max()
    }

    /// When `command` started, from the start of the run.
    pub fn offset(&self, command: &Command) -> Option<Duration> {
        let start = self.start()?;
        let at = parse_time(&command.start)?;
        Some(at.duration_since(start).unwrap_or(Duration::ZERO))
    }

    /// The target nodes: the first line's, and any other node a command ran on.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .begin
            .as_ref()
            .map(|b| b.nodes.clone())
            .unwrap_or_default();
        let mut others: Vec<String> = Vec::new();
        for c in &self.commands {
            if !nodes.contains(&c.node) && !others.contains(&c.node) {
                others.push(c.node.clone());
            }
        }
        others.sort();
        nodes.extend(others);
        nodes
    }

    /// The commands that went wrong, the one(s) the run failed on first (those the error of
    /// its last line names), then the others in the order they ended. Each comes with
    /// whether the run failed on it.
    pub fn failures(&self) -> Vec<(bool, &Command)> {
        let named = self
            .end
            .as_ref()
            .and_then(|e| e.error.as_ref())
            .map(named_commands)
            .unwrap_or_default();
        let failed: Vec<&Command> = self
            .commands
            .iter()
            .filter(|c| outcome(c).failed())
            .collect();
        let mut fatal: Vec<&Command> = Vec::new();
        for (node, command) in &named {
            // The last failed command with this node and command line is the one.
            let exact = failed.iter().rev().find(|c| {
                &c.node == node && command.as_ref().is_none_or(|line| &c.command == line)
            });
            if let Some(c) = exact
                && !fatal.iter().any(|f| std::ptr::eq(*f, *c))
            {
                fatal.push(c);
            }
        }
        let mut out: Vec<(bool, &Command)> = fatal.iter().map(|c| (true, *c)).collect();
        out.extend(
            failed
                .into_iter()
                .filter(|c| !fatal.iter().any(|f| std::ptr::eq(*f, *c)))
                .map(|c| (false, c)),
        );
        out
    }
}

/// The (node, command) pairs an error object names: itself, and each of its `failures`.
fn named_commands(error: &serde_json::Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    if let Some(node) = error["node"].as_str() {
        out.push((
            node.to_string(),
            error["command"].as_str().map(str::to_string),
        ));
    }
    for f in error["failures"].as_array().into_iter().flatten() {
        if f["kind"] != "not_started" {
            out.extend(named_commands(f));
        }
    }
    out.dedup();
    out
}

/// Whether the process of a run without a last line still runs here.
fn still_running(begin: &Begin) -> bool {
    if begin.controller != journal::controller() || begin.pid == 0 {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{}/comm", begin.pid))
        .is_ok_and(|comm| comm.trim() == "ovsup")
}

/// An RFC 3339 time of a journal.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// The directory of a state directory's journals.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// Every run of an environment, oldest first (journals without any line are left out: they
/// recorded nothing).
pub fn list(state_dir: &Path) -> Result<Vec<Run>> {
    let dir = runs_dir(state_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut runs = Vec::with_capacity(paths.len());
    for path in paths {
        let run = Run::load(&path)?;
        if run.begin.is_some() || run.end.is_some() || !run.commands.is_empty() {
            runs.push(run);
        }
    }
    Ok(runs)
}

/// The run `spec` names: `last`, an id as `ovsup history` lists it, or the start of one id.
pub fn find(state_dir: &Path, spec: &str) -> Result<Run> {
    let mut runs = list(state_dir)?;
    let none = || {
        Error::Usage(format!(
            "no run {spec:?} in {}: `ovsup history` lists the runs",
            runs_dir(state_dir).display()
        ))
    };
    if spec == "last" {
        return runs.pop().ok_or_else(none);
    }
    if let Some(i) = runs.iter().position(|r| r.id == spec) {
        return Ok(runs.swap_remove(i));
    }
    let mut matching: Vec<Run> = runs
        .into_iter()
        .filter(|r| r.id.starts_with(spec))
        .collect();
    match matching.len() {
        0 => Err(none()),
        1 => Ok(matching.remove(0)),
        n => Err(Error::Usage(format!(
            "{spec:?} names {n} runs ({} … {}): give more of the id",
            matching[0].id,
            matching[n - 1].id
        ))),
    }
}

/// A duration as people read it: `340 ms`, `12.3 s`, `4m 05s`, `2h 13m`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A time as people read it, in UTC: `2025-06-01 12:00:00Z`.
pub fn human_time(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(node: &str, line: &str, code: Option<i32>, error: Option<&str>) -> Command {
        Command {
            node: node.into(),
            command: line.into(),
            start: "2025-06-01T12:00:01.000Z".into(),
            ms: 5,
            code,
            bytes: 0,
            error: error.map(str::to_string),
            dry_run: false,
        }
    }

    #[test]
    fn the_command_the_run_failed_on_comes_first() {
        let run = Run {
            id: "2025-06-01T120000.000Z-alba".into(),
            path: PathBuf::new(),
            begin: None,
            end: Some(End {
                end: "2025-06-01T12:00:02.000Z".into(),
                ms: 2000,
                code: 1,
                error: Some(serde_json::json!({
                    "kind": "remote", "node": "node-02", "command": "apt-get install -y x",
                    "code": 100, "message": "…"
                })),
            }),
            commands: vec![
                command("node-01", "test -d /run/systemd/system", Some(1), None),
                command("node-02", "apt-get install -y x", Some(100), None),
                command("node-01", "true", Some(0), None),
                command("node-03", "true", None, Some("unreachable")),
            ],
            unreadable: 0,
        };
        let failures: Vec<(bool, &str, &str)> = run
            .failures()
            .into_iter()
            .map(|(fatal, c)| (fatal, c.node.as_str(), c.command.as_str()))
            .collect();
        assert_eq!(
            failures,
            [
                (true, "node-02", "apt-get install -y x"),
                (false, "node-01", "test -d /run/systemd/system"),
                (false, "node-03", "true"),
            ]
        );
        assert_eq!(run.status(), Status::Failed(1));
        assert_eq!(run.runbook(), "alba");
        assert_eq!(
            run.start().map(human_time).as_deref(),
            Some("2025-06-01 12:00:01Z"),
            "no first line: the first command's start"
        );
        assert_eq!(run.nodes(), ["node-01", "node-02", "node-03"]);
        assert_eq!(human_duration(Duration::from_millis(245_000)), "4m 05s");
    }
}
