//! The host side of a run: the target nodes, the transport, `--forks`, dry-run, cancellation,
//! and the reporting and journaling of every command. Primitives are written against [`Host`];
//! they never touch a transport, the journal or the terminal themselves.

pub mod env_lock;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::inventory::{Inventory, Limit, Node};
use crate::report::{Event, Reporter};
use crate::secret::CommandLine;
use crate::state::journal::{Entry, Journal, now_rfc3339};
use crate::transport::{Output, TIMEOUT_EXIT, Transport};

/// sshd refuses more than `MaxSessions` (default 10) sessions per connection, and the crate
/// then fails with a misleading "Session open refused by peer": stay below it.
pub const MAX_COMMANDS_PER_NODE: usize = 8;

/// Whether a command changes the node (skipped by `--dry-run`) or only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes the node: printed, not run, in a dry run.
    Change,
    /// Reads the node: runs in a dry run too.
    Read,
}

/// What to do with the nodes not yet started when one node of a fan-out fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Start no further node (the default: a failure stops the fleet).
    Stop,
    /// Go on with every node (`try_*`, read-only queries).
    Continue,
}

/// Everything a run needs to reach nodes.
pub struct Host {
    /// The inventory.
    pub inventory: Inventory,
    /// `--limit`.
    pub limit: Option<Limit>,
    /// The state directory of this environment.
    pub state_dir: PathBuf,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--force`: safety guards warn instead of refusing.
    pub force: bool,
    /// `--yes`: confirmations are answered yes.
    pub assume_yes: bool,
    /// Set by Ctrl-C: nothing new starts.
    pub cancel: CancellationToken,
    /// The runtime the primitives run on.
    pub runtime: tokio::runtime::Handle,
    transport: Transport,
    forks: Arc<Semaphore>,
    forks_count: usize,
    per_node: HashMap<String, Arc<Semaphore>>,
    reporter: Arc<dyn Reporter>,
    journal: Option<Journal>,
    facts: std::sync::Mutex<HashMap<(String, &'static str), String>>,
    /// Values computed once per run (the Arakoon clusters' layout…), by key.
    memo: std::sync::Mutex<HashMap<String, Arc<dyn std::any::Any + Send + Sync>>>,
    /// The value a failing runbook still gives (`refuse(message, value)`).
    kept_value: std::sync::Mutex<Option<serde_json::Value>>,
    /// What the run runs (its journal's and lock's label).
    label: String,
    /// The environment's run lock, taken before the first change (never by a dry run).
    env_lock: tokio::sync::OnceCell<std::result::Result<env_lock::Held, Error>>,
    /// Time the script thread spent blocked in primitives (waiting on nodes, a confirmation):
    /// not the runbook's own computation, which is bounded (see `engine::budget`).
    waited_ns: std::sync::atomic::AtomicU64,
}

/// The parts a [`Host`] is built from.
pub struct HostParts {
    /// The inventory.
    pub inventory: Inventory,
    /// `--limit`.
    pub limit: Option<Limit>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--force`.
    pub force: bool,
    /// `--yes`.
    pub assume_yes: bool,
    /// `--forks`.
    pub forks: usize,
    /// How nodes are reached.
    pub transport: Transport,
    /// Where events go.
    pub reporter: Arc<dyn Reporter>,
    /// The run's journal, if any.
    pub journal: Option<Journal>,
    /// What the run runs (`alba`, `check+update`, `eval`): its lock's label.
    pub label: String,
    /// The runtime.
    pub runtime: tokio::runtime::Handle,
}

impl Host {
    /// Assemble a host.
    pub fn new(p: HostParts) -> Host {
        let per_node = p
            .inventory
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    Arc::new(Semaphore::new(MAX_COMMANDS_PER_NODE)),
                )
            })
            .collect();
        let forks = p.forks.max(1);
        Host {
            inventory: p.inventory,
            limit: p.limit,
            state_dir: p.state_dir,
            dry_run: p.dry_run,
            force: p.force,
            assume_yes: p.assume_yes,
            cancel: CancellationToken::new(),
            runtime: p.runtime,
            transport: p.transport,
            forks: Arc::new(Semaphore::new(forks)),
            forks_count: forks,
            per_node,
            reporter: p.reporter,
            journal: p.journal,
            facts: std::sync::Mutex::default(),
            memo: std::sync::Mutex::default(),
            kept_value: std::sync::Mutex::default(),
            waited_ns: std::sync::atomic::AtomicU64::new(0),
            label: p.label,
            env_lock: tokio::sync::OnceCell::new(),
        }
    }

    /// A fact learnt about a node earlier in this run (its init system, its apt version…),
    /// so that it is detected once per node and run.
    pub fn fact(&self, node: &Node, key: &'static str) -> Option<String> {
        self.facts
            .lock()
            .ok()?
            .get(&(node.name.clone(), key))
            .cloned()
    }

    /// Remember a fact about a node for the rest of the run.
    pub fn set_fact(&self, node: &Node, key: &'static str, value: String) {
        if let Ok(mut facts) = self.facts.lock() {
            facts.insert((node.name.clone(), key), value);
        }
    }

    /// A value read from the nodes once per run (what does not change during a run: the
    /// clusters' members, a node's id): `compute` runs the first time `key` is asked for, and
    /// its value is kept when it succeeds.
    pub async fn once<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        compute: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let known = self
            .memo
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .and_then(|v| v.downcast_ref::<T>().cloned());
        if let Some(v) = known {
            return Ok(v);
        }
        let v = compute.await?;
        if let Ok(mut m) = self.memo.lock() {
            m.insert(key.to_string(), Arc::new(v.clone()));
        }
        Ok(v)
    }

    /// Keep `value` as the run's value even though the runbook is about to fail.
    pub fn keep_value(&self, value: serde_json::Value) {
        if let Ok(mut v) = self.kept_value.lock() {
            *v = Some(value);
        }
    }

    /// The value kept by [`Host::keep_value`], if any.
    pub fn take_value(&self) -> Option<serde_json::Value> {
        self.kept_value.lock().ok()?.take()
    }

    /// The target nodes (not excluded, inside `--limit`), optionally of one group.
    pub fn targets(&self, group: Option<&str>) -> Vec<Node> {
        self.inventory
            .targets(self.limit.as_ref(), group)
            .cloned()
            .collect()
    }

    /// Report an event.
    pub fn report(&self, event: Event) {
        self.reporter.report(event);
    }

    /// The run's journal file, if there is one.
    pub fn journal_path(&self) -> Option<PathBuf> {
        self.journal.as_ref().map(|j| j.path().to_path_buf())
    }

    /// The run's journal, if there is one (for its first and last lines: who ran what, and
    /// how it ended).
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Run a future to completion from synchronous code (the script thread); the time it
    /// takes counts as waiting, not as the script's own computation.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        let began = Instant::now();
        let out = self.runtime.block_on(f);
        self.waited(began.elapsed());
        out
    }

    /// Count `d` as time the script thread spent waiting (in a primitive, on the operator).
    pub fn waited(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.waited_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// How long the script thread has waited in primitives so far.
    pub fn time_waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed))
    }

    /// Fail with [`Error::Interrupted`] once Ctrl-C was pressed.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Run shell text on a node and return what it left, whatever its exit code. Unreachable
    /// nodes and timeouts are errors. A [`Effect::Change`] command is only reported in a dry run.
    /// `line` is shell text, or a [`CommandLine`] holding secrets: the node gets
    /// [`CommandLine::sent`], the journal, the events and the errors [`CommandLine::shown`],
    /// and the output comes back with the secret texts redacted.
    pub async fn exec(
        &self,
        node: &Node,
        line: impl Into<CommandLine>,
        effect: Effect,
        timeout: Option<Duration>,
    ) -> Result<Output> {
        let line = line.into();
        self.check_cancelled()?;
        if line.sent().contains('\0') {
            return Err(Error::argument(format!(
                "{}: the command contains a NUL byte",
                node.name
            )));
        }
        if effect == Effect::Change {
            self.before_change_on(node).await?;
        }
        if self.dry_run && effect == Effect::Change {
            self.record(
                node,
                line.shown(),
                &now_rfc3339(),
                Duration::ZERO,
                None,
                0,
                None,
                true,
            );
            return Ok(Output::default());
        }
        let timeout = timeout.unwrap_or(node.command_timeout);
        let began = Instant::now();
        let result = self
            .guarded(node, line.shown(), async {
                let out = self
                    .transport
                    .exec(node, line.sent(), timeout)
                    .await
                    .map_err(|e| line.redact_error(e))?;
                let bytes = (out.stdout.len() + out.stderr.len()) as u64;
                Ok((Some(out.code), bytes, out))
            })
            .await;
        match result {
            // 124 is also an exit code a command may choose: only past the deadline is it ours.
            Ok(out)
                if out.code == TIMEOUT_EXIT
                    && began.elapsed() + Duration::from_millis(500) >= timeout =>
            {
                Err(Error::Timeout {
                    node: node.name.clone(),
                    command: line.shown().to_string(),
                    seconds: timeout.as_secs(),
                })
            }
            // What a node answers a command holding a secret may echo it: redacted too.
            Ok(mut out) if line.has_secret() => {
                out.stdout = line.redact(&out.stdout).into_owned();
                out.stderr = line.redact(&out.stderr).into_owned();
                Ok(out)
            }
            other => other,
        }
    }

    /// Run one operation on a node under the run's rules: nothing new after Ctrl-C, at most
    /// `--forks` operations at once and [`MAX_COMMANDS_PER_NODE`] per node, and one `Exec`
    /// event and one journal line (labelled `label`) for it. `op` yields the exit code and the
    /// bytes to record with its value.
    async fn guarded<T>(
        &self,
        node: &Node,
        label: &str,
        op: impl Future<Output = Result<(Option<i32>, u64, T)>>,
    ) -> Result<T> {
        let node_slots = self.per_node.get(&node.name).cloned().ok_or_else(|| {
            Error::Internal(format!("node {} is not in the inventory", node.name))
        })?;
        let _node_permit = node_slots
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("node semaphore closed".into()))?;
        let _fork_permit = self
            .forks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("forks semaphore closed".into()))?;
        self.check_cancelled()?;
        self.report(Event::Exec {
            node: node.name.clone(),
            command: label.to_string(),
        });
        let start = now_rfc3339();
        let began = Instant::now();
        let result = op.await;
        let took = began.elapsed();
        match result {
            Ok((code, bytes, value)) => {
                self.record(node, label, &start, took, code, bytes, None, false);
                Ok(value)
            }
            Err(e) => {
                self.record(
                    node,
                    label,
                    &start,
                    took,
                    None,
                    0,
                    Some(&e.to_string()),
                    false,
                );
                Err(e)
            }
        }
    }

    /// Read a file on a node (raw bytes), as a read-only step (runs in a dry run too).
    pub async fn read_file(&self, node: &Node, path: &str) -> Result<Vec<u8>> {
        self.check_cancelled()?;
        let label = format!("read {path}");
        self.guarded(node, &label, async {
            let bytes = self
                .transport
                .read_file(node, path, node.command_timeout)
                .await?;
            Ok((Some(0), bytes.len() as u64, bytes))
        })
        .await
    }

    /// Write a file on a node atomically; only reported in a dry run.
    pub async fn write_file(&self, node: &Node, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.check_cancelled()?;
        let label = format!("write {path} ({} bytes)", bytes.len());
        self.before_change_on(node).await?;
        if self.dry_run {
            self.record(
                node,
                &label,
                &now_rfc3339(),
                Duration::ZERO,
                None,
                0,
                None,
                true,
            );
            return Ok(());
        }
        let size = bytes.len() as u64;
        self.guarded(node, &label, async {
            self.transport
                .write_file(node, path, bytes, node.command_timeout)
                .await?;
            Ok((Some(0), size, ()))
        })
        .await
    }

    /// Like [`Host::exec`], but a non-zero exit is an [`Error::Remote`] naming the node, the
    /// command, the exit code and the tail of stderr (secrets redacted).
    pub async fn exec_ok(
        &self,
        node: &Node,
        line: impl Into<CommandLine>,
        effect: Effect,
        timeout: Option<Duration>,
    ) -> Result<Output> {
        let line = line.into();
        let out = self.exec(node, &line, effect, timeout).await?;
        if out.code == 0 {
            Ok(out)
        } else {
            Err(line.redact_error(failed(&node.name, line.shown(), &out)))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        node: &Node,
        line: &str,
        start: &str,
        took: Duration,
        code: Option<i32>,
        bytes: u64,
        error: Option<&str>,
        dry_run: bool,
    ) {
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        if let Some(j) = &self.journal {
            let entry = Entry {
                node: &node.name,
                command: line,
                start: start.to_string(),
                ms,
                code,
                bytes,
                error,
                dry_run,
            };
            if let Err(e) = j.record(&entry) {
                self.report(Event::Log {
                    level: crate::report::Level::Warn,
                    message: format!("journal: {e}"),
                });
            }
        }
        self.report(Event::Done {
            node: node.name.clone(),
            command: line.to_string(),
            code,
            ms,
            bytes,
            error: error.map(str::to_string),
            dry_run,
        });
    }

    /// Run `work` on every node, at most `--forks` nodes at a time, and return each node's
    /// result in node order. With [`OnFailure::Stop`], once a node failed no further node is
    /// started (those report "not started").
    pub async fn fan_out<T, F, Fut>(
        &self,
        label: &str,
        nodes: &[Node],
        on_failure: OnFailure,
        work: F,
    ) -> PerNode<T>
    where
        F: Fn(Node) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if nodes.len() > 1 {
            self.report(Event::Begin {
                label: label.to_string(),
                nodes: nodes.iter().map(|n| n.name.clone()).collect(),
            });
        }
        let failed = AtomicBool::new(false);
        let work = &work;
        let failed = &failed;
        let mut results: Vec<(usize, String, Result<T>)> =
            futures_util::stream::iter(nodes.iter().cloned().enumerate())
                .map(|(i, node)| async move {
                    let name = node.name.clone();
                    if on_failure == OnFailure::Stop && failed.load(Ordering::SeqCst) {
                        return (i, name.clone(), Err(Error::NotStarted { node: name }));
                    }
                    let r = work(node).await;
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    (i, name, r)
                })
                .buffer_unordered(self.forks_count)
                .collect()
                .await;
        results.sort_by_key(|(i, _, _)| *i);
        if nodes.len() > 1 {
            self.report(Event::End {
                label: label.to_string(),
            });
        }
        results.into_iter().map(|(_, n, r)| (n, r)).collect()
    }

    /// Before the run's first change (a changing command, a file written, the VM record or a
    /// step mark saved): take the environment's run lock, once (see [`crate::env_lock`]). A
    /// dry run changes nothing and takes none. Every later change gets the same answer.
    pub async fn before_change(&self) -> Result<()> {
        self.held_lock().await.map(|_| ())
    }

    /// [`Host::before_change`], before the first change on `node`: a node that could not be
    /// asked for the lock when it was taken (unreachable then) is asked now.
    pub async fn before_change_on(&self, node: &Node) -> Result<()> {
        match self.held_lock().await? {
            Some(held) => held.before_change_on(self, node).await,
            None => Ok(()),
        }
    }

    /// The environment's lock, taken the first time (none in a dry run).
    async fn held_lock(&self) -> Result<Option<&env_lock::Held>> {
        if self.dry_run {
            return Ok(None);
        }
        self.env_lock
            .get_or_init(|| env_lock::acquire(self, &self.label))
            .await
            .as_ref()
            .map(Some)
            .map_err(Clone::clone)
    }

    /// Ask `node` for the environment's run lock; the answer is noted in the journal (as
    /// bookkeeping, not a command).
    pub async fn hold_lock(
        &self,
        node: &Node,
        holder: &str,
    ) -> Result<crate::transport::node_lock::LockAnswer> {
        use crate::transport::node_lock::LockAnswer;
        self.check_cancelled()?;
        let start = now_rfc3339();
        let began = Instant::now();
        let answer = self.transport.hold_lock(node, holder).await;
        if let Some(j) = &self.journal {
            let outcome = match &answer {
                Ok(LockAnswer::Held { previous: None }) => "held".to_string(),
                Ok(LockAnswer::Held { previous: Some(_) }) => "taken over".to_string(),
                Ok(LockAnswer::Busy { .. }) => "busy".to_string(),
                Err(e) => e.to_string(),
            };
            let note = crate::state::journal::LockNote {
                node: node.name.clone(),
                start,
                ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
                outcome,
            };
            if let Err(e) = j.lock(&note) {
                self.report(Event::Log {
                    level: crate::report::Level::Warn,
                    message: format!("journal: {e}"),
                });
            }
        }
        answer
    }

    /// Let go of the run locks held on the nodes.
    pub async fn release_locks(&self) {
        self.transport.release_locks().await;
    }

    /// Close every connection.
    pub async fn close(&self) {
        self.transport.close().await;
    }
}

/// Each node's outcome of a fan-out, in node order.
pub type PerNode<T> = Vec<(String, Result<T>)>;

/// Ctrl-C during a fan-out is the whole fan-out's outcome: [`Error::Interrupted`] when any
/// node was interrupted.
pub fn interrupted<T>(results: &PerNode<T>) -> Result<()> {
    if results
        .iter()
        .any(|(_, r)| matches!(r, Err(Error::Interrupted)))
    {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Collect a fan-out: every node's value, or one error naming every node that failed.
pub fn all_ok<T>(results: PerNode<T>) -> Result<Vec<(String, T)>> {
    let total = results.len();
    let mut ok = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for (name, r) in results {
        match r {
            Ok(v) => ok.push((name, v)),
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Ok(ok),
        1 if total == 1 => Err(failures.remove(0)),
        _ => Err(Error::Nodes { total, failures }),
    }
}

/// The error for a command that exited non-zero: the node, the command, its exit code and
/// the last lines of its stderr.
pub fn failed(node: &str, command: &str, out: &Output) -> Error {
    Error::Remote {
        node: node.to_string(),
        command: command.to_string(),
        code: out.code,
        stderr: tail(&out.stderr, crate::error::STDERR_TAIL_LINES),
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Host {
    /// Open the connection to `node` now; returns how long that took.
    pub async fn connect(&self, node: &Node) -> Result<Duration> {
        self.check_cancelled()?;
        let began = Instant::now();
        self.transport.connect(node).await?;
        Ok(began.elapsed())
    }
}
