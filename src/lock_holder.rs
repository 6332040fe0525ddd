//! Who holds the environment's run lock: the one line of JSON a holder writes beside the lock
//! on every node (`transport::node_lock`), and how a later run reads it — whether its process
//! still runs, whether it is this process, how a refusal names it. Shared by the lock's taking
//! (`host::env_lock`) and the simulated nodes' lock (`transport::sim`).

use serde::{Deserialize, Serialize};

/// Who holds the environment's lock (what the holder file on the nodes says, one line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// The environment.
    pub environment: String,
    /// The user running ovsup.
    pub user: String,
    /// The controller machine's host name.
    pub controller: String,
    /// The ovsup process.
    pub pid: u32,
    /// That process's start time (clock ticks since boot, `/proc/PID/stat`), so that a reused
    /// pid is not taken for the holder.
    #[serde(default)]
    pub process_start: u64,
    /// The runbook(s) it runs.
    pub runbook: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl Holder {
    /// This process, running `runbook` on `environment`.
    pub fn this_process(environment: &str, runbook: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            environment: environment.to_string(),
            user: crate::state::journal::user(),
            controller: crate::state::journal::controller(),
            pid,
            process_start: process_start(pid).unwrap_or(0),
            runbook: runbook.to_string(),
            since: crate::state::journal::now_rfc3339(),
        }
    }

    /// How a refusal names it.
    pub fn describe(&self) -> String {
        format!(
            "{} on {}, pid {}, running {:?} since {}",
            self.user, self.controller, self.pid, self.runbook, self.since
        )
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it runs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process a holder line names still runs (on this machine: a holder of another
/// controller is taken to run — on a real node its lock, not this guess, decides).
pub fn holder_alive(line: &str) -> bool {
    let Ok(h) = serde_json::from_str::<Holder>(line) else {
        return true;
    };
    if h.controller != crate::state::journal::controller() {
        return true;
    }
    process_start(h.pid).is_some_and(|start| h.process_start == 0 || start == h.process_start)
}

/// Whether a holder line names this process.
pub fn holder_is_this_process(line: &str) -> bool {
    serde_json::from_str::<Holder>(line).is_ok_and(|h| {
        h.pid == std::process::id()
            && h.controller == crate::state::journal::controller()
            && h.process_start == process_start(h.pid).unwrap_or(0)
    })
}

/// A holder line as people read it.
pub fn describe_line(line: &str) -> String {
    match serde_json::from_str::<Holder>(line) {
        Ok(h) => h.describe(),
        Err(_) if line.trim().is_empty() => "a run that did not say who it is".into(),
        Err(_) => line.trim().to_string(),
    }
}
