//! What upstart's `initctl list`, `status JOB` and `initctl version` print:
//! `ovs-watcher-framework start/running, process 1234`, `ovs-volumedriver_vpool1 stop/waiting`,
//! instance jobs `network-interface (eth0) start/running`, and tab-indented lines for a job's
//! other processes (`\tpre-start process 1230`). Anything else is an [`Error::Unexpected`].

use super::unexpected;
use crate::error::Result;

/// One job (or job instance) as upstart lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstartJob {
    /// The job name.
    pub name: String,
    /// The instance name, for instance jobs.
    pub instance: Option<String>,
    /// The goal: `start` or `stop`.
    pub goal: String,
    /// The state: `running`, `waiting`, `pre-start`, `stopping`…
    pub state: String,
    /// The main process, when there is one.
    pub pid: Option<u32>,
}

impl UpstartJob {
    /// Running: goal `start`, state `running`.
    pub fn running(&self) -> bool {
        self.goal == "start" && self.state == "running"
    }
}

const GOALS: [&str; 2] = ["start", "stop"];
const STATES: [&str; 10] = [
    "waiting",
    "starting",
    "pre-start",
    "spawned",
    "post-start",
    "running",
    "pre-stop",
    "stopping",
    "killed",
    "post-stop",
];

fn job_line(line: &str) -> Option<UpstartJob> {
    let (head, process) = match line.split_once(", process ") {
        Some((h, p)) => (h, Some(p.trim().parse::<u32>().ok()?)),
        None => (line, None),
    };
    let (name, rest) = head.split_once(' ')?;
    let (instance, goal_state) = match rest.strip_prefix('(') {
        Some(r) => {
            let (inst, gs) = r.split_once(") ")?;
            (Some(inst.to_string()), gs)
        }
        None => (None, rest),
    };
    let (goal, state) = goal_state.split_once('/')?;
    if name.is_empty() || !GOALS.contains(&goal) || !STATES.contains(&state) {
        return None;
    }
    Some(UpstartJob {
        name: name.to_string(),
        instance,
        goal: goal.to_string(),
        state: state.to_string(),
        pid: process,
    })
}

/// A tab-indented line listing another process of the job above: `\tpost-start process 1240`.
fn is_process_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('\t') else {
        return false;
    };
    let mut w = rest.split_whitespace();
    matches!(
        (w.next(), w.next(), w.next(), w.next()),
        (Some(_), Some("process"), Some(pid), None) if pid.parse::<u32>().is_ok()
    )
}

/// Parse `initctl list` (or `status JOB`, which prints the same line for one job).
pub fn list(text: &str, node: &str, command: &str) -> Result<Vec<UpstartJob>> {
    let mut jobs: Vec<UpstartJob> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if is_process_line(line) && !jobs.is_empty() {
            continue;
        }
        match job_line(line) {
            Some(job) => jobs.push(job),
            None => {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "expected `JOB GOAL/STATE[, process PID]`",
                ));
            }
        }
    }
    Ok(jobs)
}

/// Whether `initctl version` says upstart: `init (upstart 1.12.1)`.
pub fn is_upstart_version(text: &str) -> bool {
    text.lines()
        .next()
        .is_some_and(|l| l.starts_with("init (upstart "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::parse::assert_rejected;

    #[test]
    fn initctl_list() {
        let text = "ovs-watcher-framework start/running, process 1234\n\
                    ovs-arakoon-ovsdb start/running, process 2210\n\
                    alba-asd-6Xk0aTbq start/running, process 3001\n\
                    ovs-volumedriver_vpool1 stop/waiting\n\
                    network-interface (lo) start/running\n\
                    ssh start/post-start, process 900\n\
                    \tpost-start process 905\n";
        let jobs = list(text, "n1", "initctl list").unwrap();
        assert_eq!(jobs.len(), 6);
        assert_eq!(jobs[0].name, "ovs-watcher-framework");
        assert_eq!(jobs[0].pid, Some(1234));
        assert!(jobs[0].running());
        assert_eq!(jobs[2].name, "alba-asd-6Xk0aTbq");
        assert!(!jobs[3].running());
        assert_eq!(jobs[3].pid, None);
        assert_eq!(jobs[4].instance.as_deref(), Some("lo"));
        assert!(jobs[4].running());
        assert!(!jobs[5].running());
        assert_eq!(jobs[5].pid, Some(900));
    }

    #[test]
    fn status_line() {
        let jobs = list(
            "ovs-webapp-api start/running, process 1302\n",
            "n1",
            "status ovs-webapp-api",
        )
        .unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].pid, Some(1302));
    }

    #[test]
    fn version() {
        assert!(is_upstart_version("init (upstart 1.12.1)\n"));
        assert!(!is_upstart_version("systemd 229\n"));
        assert!(!is_upstart_version(""));
    }

    #[test]
    fn rejects_unexpected_lines() {
        for bad in [
            "ovs-webapp-api running",
            "ovs-webapp-api start/flying, process 1",
            "ovs-webapp-api start/running, process abc",
            "status: Unknown job: foo",
            "\tpost-start process 905",
        ] {
            let parsed = list(&format!("{bad}\n"), "node-01", "initctl list");
            assert_rejected(parsed, "node-01", "initctl list", bad);
        }
    }
}
