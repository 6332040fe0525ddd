//! The simulated Open vStorage node. It answers the commands runbook primitives send to a
//! node (apt, dpkg, upstart/systemd, virsh, fuser, arakoon, ays, the post-upgrade hooks…)
//! with the real tools' output and exit codes (`/work/shared/design/node-commands.md` is the
//! contract), from a persistent per-node state, so that runbooks can be rehearsed on a
//! simulated cluster and tested end to end. One model serves two uses: the in-process
//! transport ([`SimNode::open_virtual`], with a virtual filesystem) and the multi-call
//! `ovs-sim` binary on SSH test nodes ([`SimNode::open_real`]).
//!
//! Which node runs what comes from a [`layout::Layout`] (Arakoon members, vpools, ALBA jobs,
//! ASDs per node). A cluster's nodes keep their state files in one directory — the
//! in-process `<state-dir>/sim/`, or on the test bed a directory shared into every node —
//! and the tools that span nodes (`arakoon`, `arakoon-restart.py`) reach the others there
//! ([`peers`]), one node's lock at a time, outside their own node's lock.

pub mod arakoon;
pub mod capture;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod fs;
pub mod layout;
pub mod peers;
pub mod seed;
pub mod shell;
pub mod state;
pub mod store;
pub mod summary;
pub mod tools;
pub mod version;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use error::SimError;
pub use fs::{Fs, FsEntry, RealFs, VirtualFs};
pub use state::{AptVariant, Init, NodeState};
pub use store::Store;

use state::Faults;
use tools::{Ctx, basename, join};

/// How long a hanging tool hangs when the caller gave no deadline.
pub const HANG_WITHOUT_DEADLINE: Duration = Duration::from_secs(3600);

/// What a command printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimOutput {
    /// Exit status (124: killed at its deadline, 127: not found / not simulated).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl SimOutput {
    /// Exit 0 with this standard output.
    pub fn ok(stdout: impl Into<String>) -> Self {
        SimOutput {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// A failure with this exit code and standard error.
    pub fn fail(code: i32, stderr: impl Into<String>) -> Self {
        SimOutput {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    /// The answer to a command the simulator does not know: exit 127, never success.
    pub fn not_simulated(line: &str) -> Self {
        SimOutput::fail(127, format!("ovs-sim: not simulated: {line}\n"))
    }

    /// A command killed at its deadline (exit 124, like `timeout`).
    pub fn timed_out() -> Self {
        SimOutput::fail(124, "")
    }

    /// Appends another command's output (for command lists).
    fn append(&mut self, other: SimOutput) {
        self.stdout.push_str(&other.stdout);
        self.stderr.push_str(&other.stderr);
        self.code = other.code;
    }
}

/// One simulated node: a state file plus the filesystem its commands see.
#[derive(Debug, Clone)]
pub struct SimNode {
    store: Store,
    real: Option<RealFs>,
}

/// Sleeps `dur`, but never past `deadline`; true when the deadline cut the sleep short.
pub(crate) fn pause(dur: Duration, deadline: Option<Instant>) -> bool {
    let now = Instant::now();
    match deadline {
        Some(d) if now + dur >= d => {
            std::thread::sleep(d.saturating_duration_since(now));
            true
        }
        _ => {
            std::thread::sleep(dur);
            false
        }
    }
}

pub(crate) fn deadline_passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Parses a `sleep`/`timeout` duration: a decimal number with an optional s/m/h/d suffix.
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, mult) = match s.chars().last()? {
        's' => (&s[..s.len() - 1], 1.0),
        'm' => (&s[..s.len() - 1], 60.0),
        'h' => (&s[..s.len() - 1], 3600.0),
        'd' => (&s[..s.len() - 1], 86400.0),
        _ => (s, 1.0),
    };
    let secs: f64 = num.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs * mult))
}

impl SimNode {
    /// An in-process node whose filesystem is the `files` map of its state document.
    /// The state file must exist (see [`SimNode::create_virtual`]).
    pub fn open_virtual(state_path: impl Into<PathBuf>) -> Result<Self, SimError> {
        let node = SimNode {
            store: Store::new(state_path),
            real: None,
        };
        node.state()?;
        Ok(node)
    }

    /// A node on the real filesystem (a test node with its own `/etc /opt /var /run`).
    pub fn open_real(state_path: impl Into<PathBuf>) -> Result<Self, SimError> {
        Self::open_real_at(state_path, "/")
    }

    /// A node on the real filesystem rooted at `root` instead of `/`.
    pub fn open_real_at(
        state_path: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
    ) -> Result<Self, SimError> {
        let node = SimNode {
            store: Store::new(state_path),
            real: Some(RealFs::new(root)),
        };
        node.state()?;
        Ok(node)
    }

    /// Writes `state` as a new in-process node's state file and opens it.
    pub fn create_virtual(
        state_path: impl Into<PathBuf>,
        state: &NodeState,
    ) -> Result<Self, SimError> {
        let store = Store::new(state_path);
        store.create(state)?;
        Ok(SimNode { store, real: None })
    }

    /// The node's current state.
    pub fn state(&self) -> Result<NodeState, SimError> {
        self.store.read()
    }

    /// Changes the node's state (read-modify-write under the node's lock).
    pub fn update<R>(&self, f: impl FnOnce(&mut NodeState) -> R) -> Result<R, SimError> {
        self.store.update(f)
    }

    /// The node's state file.
    pub fn state_path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Runs one command given as argv (no shell). Never blocks past `deadline`: a command
    /// still running then ends with code 124. A state-file failure becomes exit 1 with the
    /// error on stderr (see [`SimNode::try_run_argv`] for the typed error).
    pub fn run_argv(&self, argv: &[String], deadline: Option<Instant>) -> SimOutput {
        self.try_run_argv(argv, deadline)
            .unwrap_or_else(|e| SimOutput::fail(1, format!("ovs-sim: {e}\n")))
    }

    /// Runs one shell line (`;`, `&&`, `||`, `sh -c`; see [`shell`]). Same deadline rules
    /// as [`SimNode::run_argv`].
    pub fn run_line(&self, line: &str, deadline: Option<Instant>) -> SimOutput {
        self.try_run_line(line, deadline)
            .unwrap_or_else(|e| SimOutput::fail(1, format!("ovs-sim: {e}\n")))
    }

    /// [`SimNode::run_argv`], with state-file failures as errors.
    pub fn try_run_argv(
        &self,
        argv: &[String],
        deadline: Option<Instant>,
    ) -> Result<SimOutput, SimError> {
        let faults = self.receive(join(argv))?;
        if faults.slow_ms > 0 && pause(Duration::from_millis(faults.slow_ms), deadline) {
            return Ok(SimOutput::timed_out());
        }
        self.exec(argv, deadline, &faults)
    }

    /// [`SimNode::run_line`], with state-file failures as errors.
    pub fn try_run_line(
        &self,
        line: &str,
        deadline: Option<Instant>,
    ) -> Result<SimOutput, SimError> {
        let faults = self.receive(line.to_owned())?;
        if faults.slow_ms > 0 && pause(Duration::from_millis(faults.slow_ms), deadline) {
            return Ok(SimOutput::timed_out());
        }
        self.exec_line(line, deadline, &faults)
    }

    /// Records a received command line; returns the fault knobs in force.
    fn receive(&self, line: String) -> Result<Faults, SimError> {
        self.store.update(|s| {
            s.history.push(line);
            s.faults.clone()
        })
    }

    fn exec_line(
        &self,
        line: &str,
        deadline: Option<Instant>,
        faults: &Faults,
    ) -> Result<SimOutput, SimError> {
        let list = match shell::parse(line) {
            Ok(list) => list,
            Err(e) => return Ok(SimOutput::not_simulated(&e.line)),
        };
        let mut out = SimOutput::default();
        for (i, (op, argv)) in list.iter().enumerate() {
            let run = i == 0
                || match op {
                    shell::Op::Seq => true,
                    shell::Op::And => out.code == 0,
                    shell::Op::Or => out.code != 0,
                };
            if !run {
                continue;
            }
            out.append(self.exec(argv, deadline, faults)?);
            if deadline_passed(deadline) {
                out.code = 124;
                break;
            }
        }
        Ok(out)
    }

    /// Runs one simple command: the commands about time and shells here, the others under
    /// the node's lock. Hangs and sleeps never hold the lock.
    fn exec(
        &self,
        argv: &[String],
        deadline: Option<Instant>,
        faults: &Faults,
    ) -> Result<SimOutput, SimError> {
        let Some(cmd) = argv.first() else {
            return Ok(SimOutput::ok(""));
        };
        let tool = basename(cmd);
        if faults.hang.iter().any(|h| h == tool) {
            pause(HANG_WITHOUT_DEADLINE, deadline);
            return Ok(SimOutput::timed_out());
        }
        match tool {
            "sh" | "bash" => match argv {
                [_, c, line] if c == "-c" => self.exec_line(line, deadline, faults),
                _ => Ok(SimOutput::not_simulated(&join(argv))),
            },
            "sleep" => match argv {
                [_, d] => match parse_duration(d) {
                    Some(d) if pause(d, deadline) => Ok(SimOutput::timed_out()),
                    Some(_) => Ok(SimOutput::ok("")),
                    None => Ok(SimOutput::fail(
                        1,
                        format!(
                            "sleep: invalid time interval '{d}'\nTry 'sleep --help' for more information.\n"
                        ),
                    )),
                },
                _ => Ok(SimOutput::not_simulated(&join(argv))),
            },
            "timeout" => self.exec_timeout(argv, deadline, faults),
            "arakoon" => tools::arakoon::run(self, argv),
            "apt-get" if faults.download_ms > 0 => self.exec_slow_fetch(argv, deadline, faults),
            _ => match tools::python::hook_call(argv) {
                Some((cluster, address)) => {
                    tools::restart_hook::run(self, &cluster, &address, deadline)
                }
                None => self.exec_locked(argv),
            },
        }
    }

    /// `apt-get` when each `.deb` fetch takes time: counts the fetches under the lock, sleeps
    /// without it (the node answers other commands meanwhile), then runs the command.
    fn exec_slow_fetch(
        &self,
        argv: &[String],
        deadline: Option<Instant>,
        faults: &Faults,
    ) -> Result<SimOutput, SimError> {
        let fetches = self.locked(|ctx| tools::apt::pending_fetches(ctx, argv))?;
        let wait = Duration::from_millis(faults.download_ms.saturating_mul(fetches as u64));
        if fetches > 0 && pause(wait, deadline) {
            return Ok(SimOutput::timed_out());
        }
        self.exec_locked(argv)
    }

    /// `timeout [-k K] SECS CMD…`: runs CMD with a deadline, exit 124 when it passes.
    fn exec_timeout(
        &self,
        argv: &[String],
        deadline: Option<Instant>,
        faults: &Faults,
    ) -> Result<SimOutput, SimError> {
        let mut rest = &argv[1..];
        loop {
            match rest {
                [k, v, tail @ ..] if k == "-k" || k == "--kill-after" => {
                    if parse_duration(v).is_none() {
                        return Ok(SimOutput::not_simulated(&join(argv)));
                    }
                    rest = tail;
                }
                [k, tail @ ..] if k.starts_with("--kill-after=") => rest = tail,
                _ => break,
            }
        }
        let [secs, cmd @ ..] = rest else {
            return Ok(SimOutput::not_simulated(&join(argv)));
        };
        let Some(limit) = parse_duration(secs) else {
            return Ok(SimOutput::fail(
                125,
                format!(
                    "timeout: invalid time interval '{secs}'\nTry 'timeout --help' for more information.\n"
                ),
            ));
        };
        if cmd.is_empty() {
            return Ok(SimOutput::not_simulated(&join(argv)));
        }
        let mine = Instant::now() + limit;
        let effective = Some(deadline.map_or(mine, |d| d.min(mine)));
        let mut out = self.exec(cmd, effective, faults)?;
        if deadline_passed(effective) {
            out.code = 124;
        }
        Ok(out)
    }

    /// Reads a file of the node's filesystem (what `cat` would print), for the host's file
    /// copies. `Ok(None)` when there is no such file.
    pub fn read_file(&self, path: &str) -> Result<Option<String>, SimError> {
        self.with_fs(|fs| fs.read(path).ok())
    }

    /// Writes a file of the node's filesystem, creating its parent directories.
    pub fn write_file(&self, path: &str, contents: &str) -> Result<std::io::Result<()>, SimError> {
        self.with_fs(|fs| {
            if let Some((dir, _)) = path.rsplit_once('/')
                && !dir.is_empty()
            {
                fs.create_dir_all(dir)?;
            }
            fs.write(path, contents)
        })
    }

    /// Runs `f` on the node's filesystem under the node's lock.
    fn with_fs<R>(&self, f: impl FnOnce(&dyn Fs) -> R) -> Result<R, SimError> {
        self.store.update(|s| match &self.real {
            Some(real) => f(real),
            None => {
                let vfs = VirtualFs::new(std::mem::take(&mut s.files));
                let out = f(&vfs);
                s.files = vfs.into_entries();
                out
            }
        })
    }

    fn exec_locked(&self, argv: &[String]) -> Result<SimOutput, SimError> {
        self.locked(|ctx| tools::dispatch(ctx, argv))
    }

    /// Runs `f` on the node's tool context under the node's lock.
    fn locked<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> R) -> Result<R, SimError> {
        let now_ms = state::now_ms();
        self.store.update(|s| {
            s.settle_domains(now_ms);
            match &self.real {
                Some(real) => f(&mut Ctx {
                    state: s,
                    fs: real,
                    now_ms,
                }),
                None => {
                    let vfs = VirtualFs::new(std::mem::take(&mut s.files));
                    let out = f(&mut Ctx {
                        state: s,
                        fs: &vfs,
                        now_ms,
                    });
                    s.files = vfs.into_entries();
                    out
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
