//! One run at a time per environment, wherever it is started from. A run that may change
//! nodes takes, before its first change, the environment's run lock on every node it targets
//! (see `transport::node_lock`: held by a session that dies with the run's connection) and the
//! state directory's lock (`state::lock`). A second run against any of the same nodes is
//! refused (exit 3) naming the holder — user, controller host, pid, runbook, since when —
//! whatever its state directory or controller machine. A lock whose holder is gone is taken
//! over, and the run says so. Read-only runs (`check`, `plan`, `nodes`, `--dry-run`) never
//! change anything, never take it, and are never refused.

use crate::error::{Error, Result};
use crate::host::{Host, OnFailure};
use crate::inventory::Node;
use crate::lock_holder::{Holder, describe_line};
use crate::report::{Event, Level};
use crate::transport::node_lock::LockAnswer;

/// The environment's lock as this run holds it.
pub struct Held {
    /// The state directory's lock.
    _local: crate::state::lock::RunLock,
    /// What the nodes' holder files say of us.
    line: String,
    /// Target nodes that could not be asked when the lock was taken (unreachable): each is
    /// asked before its own first change.
    pending: std::sync::Mutex<Vec<String>>,
}

/// How many times every target is asked for the lock while another run is taking it at the
/// same moment.
const TRIES: u32 = 4;

/// Take the environment's lock: the state directory's, then every reachable target node's,
/// in parallel. Refused (exit 3) when another run holds any of them, naming it, after letting
/// go of what was taken. Two runs started at the same moment on the same nodes can each win
/// some of them: a run that finds the lock taken on some nodes only lets go of its own, waits
/// a random while and asks again (up to [`TRIES`] times), so that one of the two goes on and
/// the other is refused — not both. Found taken on every node it asked, it is refused at
/// once. A node that cannot be reached now is said so and asked again before its own first
/// change ([`Held::before_change_on`]); any other failure to ask fails the run.
pub async fn acquire(host: &Host, runbook: &str) -> Result<Held> {
    let local = crate::state::lock::RunLock::acquire(&host.state_dir, runbook)?;
    let holder = Holder::this_process(&host.inventory.name, runbook);
    let line = serde_json::to_string(&holder).map_err(|e| Error::Internal(e.to_string()))?;
    let targets = host.targets(None);
    let mut attempt = 1;
    let (answers, pending) = loop {
        let (answers, pending) = ask(host, &targets, &line).await?;
        let Some(refusal) = refusal(&answers) else {
            break (answers, pending);
        };
        host.release_locks().await;
        let split = answers
            .iter()
            .any(|(_, a)| matches!(a, LockAnswer::Held { .. }));
        if !split || attempt == TRIES {
            return Err(refusal);
        }
        let wait = backoff(attempt);
        host.report(Event::Log {
            level: Level::Info,
            message: format!(
                "another run is taking the environment's lock at this moment ({refusal}): \
                 asking again in {} ms",
                wait.as_millis()
            ),
        });
        tokio::time::sleep(wait).await;
        attempt += 1;
    };
    report_taken_over(host, &answers);
    if !pending.is_empty() {
        host.report(Event::Log {
            level: Level::Warn,
            message: format!(
                "the environment's lock could not be asked of {} (unreachable): it will be, \
                 before anything changes there",
                pending.join(", ")
            ),
        });
    }
    Ok(Held {
        _local: local,
        line,
        pending: std::sync::Mutex::new(pending),
    })
}

/// A random wait of 50–250 ms times `attempt`, so that two runs that collided ask again at
/// different moments.
fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(fastrand::u64(50..250) * u64::from(attempt))
}

/// Ask every node of `targets` for the lock as `line`, in parallel: the answers, and the
/// nodes that could not be reached. Any other failure lets go of what was taken and fails.
async fn ask(
    host: &Host,
    targets: &[Node],
    line: &str,
) -> Result<(Vec<(String, LockAnswer)>, Vec<String>)> {
    let results = host
        .fan_out(
            "run lock",
            targets,
            OnFailure::Continue,
            |node| async move { host.hold_lock(&node, line).await },
        )
        .await;
    let mut answers = Vec::new();
    let mut pending = Vec::new();
    let mut failures = Vec::new();
    for (node, r) in results {
        match r {
            Ok(a) => answers.push((node, a)),
            Err(Error::Unreachable { .. }) => pending.push(node),
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        return Ok((answers, pending));
    }
    host.release_locks().await;
    Err(if failures.len() == 1 {
        failures.remove(0)
    } else {
        Error::Nodes {
            total: targets.len(),
            failures,
        }
    })
}

impl Held {
    /// Before the first change on `node`: ask it for the lock if it could not be asked when
    /// the run took the lock.
    pub async fn before_change_on(&self, host: &Host, node: &Node) -> Result<()> {
        let asked = self
            .pending
            .lock()
            .map(|p| p.contains(&node.name))
            .unwrap_or(false);
        if !asked {
            return Ok(());
        }
        let answer = host.hold_lock(node, &self.line).await?;
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|n| n != &node.name);
        }
        let answers = vec![(node.name.clone(), answer)];
        if let Some(refusal) = refusal(&answers) {
            return Err(refusal);
        }
        report_taken_over(host, &answers);
        Ok(())
    }
}

/// The refusal when another run holds the lock on any node, naming the nodes and the holder.
fn refusal(answers: &[(String, LockAnswer)]) -> Option<Error> {
    let busy: Vec<(&String, &String)> = answers
        .iter()
        .filter_map(|(n, a)| match a {
            LockAnswer::Busy { holder } => Some((n, holder)),
            LockAnswer::Held { .. } => None,
        })
        .collect();
    let (_, first) = busy.first()?;
    let nodes: Vec<&str> = busy.iter().map(|(n, _)| n.as_str()).collect();
    Some(Error::Refused(format!(
        "another ovsup run holds the environment's lock on {}: {}; wait for it to finish \
         (only one run at a time may change an environment; read-only runs such as check, \
         plan and --dry-run are not refused)",
        nodes.join(", "),
        describe_line(first)
    )))
}

/// Say whose lock was taken over, where a gone holder left its name.
fn report_taken_over(host: &Host, answers: &[(String, LockAnswer)]) {
    for (node, answer) in answers {
        if let LockAnswer::Held {
            previous: Some(previous),
        } = answer
        {
            host.report(Event::Log {
                level: Level::Warn,
                message: format!(
                    "{node}: took over the environment's lock of a run that is gone ({})",
                    describe_line(previous)
                ),
            });
        }
    }
}
