//! SSH to real nodes through the `openssh` crate: one multiplexed master per node, opened
//! lazily and concurrently, reused for every command of the run, closed at the end.
//!
//! Choices forced by the crate (see docs/architecture.md and the pitfalls note):
//! - host keys are checked strictly unless the inventory says `accept-new`; BatchMode always;
//! - `ControlPersist` is bounded so that a crashed ovsup leaves no master behind for long, and a
//!   master that idled out is noticed with `check()` and reopened before the next command;
//! - the control sockets live in a private 0700 directory under /tmp (short enough for the
//!   108-byte socket path limit) that is removed when the transport is dropped;
//! - a connect is retried with backoff when sshd drops it during key exchange (`MaxStartups`).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Mutex, RwLock};

use super::node_lock::{self, LockAnswer};
use super::{OUTPUT_CAP, Output, bounded, text};
use crate::error::{Error, Result};
use crate::inventory::{HostKeyCheck, Node};

/// A master idle this long exits by itself (a crash leaves no orphan for longer).
const CONTROL_PERSIST_SECS: usize = 300;
/// Check that the master still lives before using it after this much idle time.
const RECHECK_AFTER: Duration = Duration::from_secs(240);
/// How often the master probes the server, so a vanished node is noticed.
const SERVER_ALIVE: Duration = Duration::from_secs(15);
/// How long a handshake may go on after ssh's own connect timeout.
const HANDSHAKE_GRACE: Duration = Duration::from_secs(60);
/// Connect attempts when sshd resets the connection during key exchange.
const CONNECT_ATTEMPTS: u32 = 5;
/// Session opens refused by sshd (`MaxSessions`) before we give up.
const SESSION_ATTEMPTS: u32 = 6;
/// Longest control-socket path we accept (Linux: 108 bytes, OpenSSH appends ~17 characters).
const MAX_SOCKET_DIR_LEN: usize = 80;

/// Connections to real nodes.
pub struct SshTransport {
    ssh_config: Option<PathBuf>,
    control_dir: tempfile::TempDir,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The sessions holding the environment's run lock, by node (see `node_lock`).
    locks: Mutex<HashMap<String, openssh::Child<Arc<Session>>>>,
}

/// One node's master, if open, and when it was last used.
#[derive(Default)]
struct Slot {
    session: RwLock<Option<(Arc<Session>, Instant)>>,
    /// Serialises connect attempts to one node.
    connecting: Mutex<()>,
}

impl SshTransport {
    /// A transport using the given OpenSSH client config (`ssh -F`), if any.
    pub fn new(ssh_config: Option<PathBuf>) -> Result<SshTransport> {
        Self::new_in(ssh_config, &std::env::temp_dir())
    }

    /// A transport whose control directory is made in `tmp`.
    pub fn new_in(ssh_config: Option<PathBuf>, tmp: &Path) -> Result<SshTransport> {
        use std::os::unix::fs::PermissionsExt;
        remove_stale_control_dirs(tmp);
        // The pid in the name lets a later run remove the directory of one that was killed.
        let control_dir = tempfile::Builder::new()
            .prefix(&format!("{CONTROL_PREFIX}{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(tmp)
            .map_err(|e| Error::io(tmp, e))?;
        let len = control_dir.path().as_os_str().len();
        if len > MAX_SOCKET_DIR_LEN {
            return Err(Error::Usage(format!(
                "the control socket directory {} is too long for a Unix socket ({len} bytes); set TMPDIR to a shorter directory",
                control_dir.path().display()
            )));
        }
        Ok(SshTransport {
            ssh_config,
            control_dir,
            slots: Mutex::default(),
            locks: Mutex::default(),
        })
    }

    /// The private directory holding the control sockets.
    pub fn control_dir(&self) -> &Path {
        self.control_dir.path()
    }

    async fn slot(&self, node: &Node) -> Arc<Slot> {
        self.slots
            .lock()
            .await
            .entry(node.name.clone())
            .or_default()
            .clone()
    }

    /// The node's open master, opening it if needed; returns it and the connect time spent.
    pub async fn connect(&self, node: &Node) -> Result<(Arc<Session>, Duration)> {
        let slot = self.slot(node).await;
        if let Some((s, last)) = slot.session.read().await.as_ref()
            && last.elapsed() < RECHECK_AFTER
        {
            return Ok((s.clone(), Duration::ZERO));
        }
        let _one_at_a_time = slot.connecting.lock().await;
        if let Some((s, last)) = slot.session.read().await.as_ref()
            && (last.elapsed() < RECHECK_AFTER || s.check().await.is_ok())
        {
            return Ok((s.clone(), Duration::ZERO));
        }
        let started = Instant::now();
        let session = Arc::new(self.open(node).await?);
        *slot.session.write().await = Some((session.clone(), Instant::now()));
        Ok((session, started.elapsed()))
    }

    async fn open(&self, node: &Node) -> Result<Session> {
        let mut b = SessionBuilder::default();
        b.known_hosts_check(match node.host_key_check {
            HostKeyCheck::Strict => KnownHosts::Strict,
            HostKeyCheck::AcceptNew => KnownHosts::Add,
        })
        .connect_timeout(node.connect_timeout)
        .server_alive_interval(SERVER_ALIVE)
        .control_directory(self.control_dir.path())
        .control_persist(ControlPersist::IdleFor(
            NonZeroUsize::new(CONTROL_PERSIST_SECS).unwrap_or(NonZeroUsize::MIN),
        ));
        if let Some(cfg) = &self.ssh_config {
            b.config_file(cfg);
        }
        if let Some(user) = &node.user {
            b.user(user.clone());
        }
        if let Some(port) = node.port {
            b.port(port);
        }
        if let Some(key) = &node.identity_file {
            b.keyfile(key);
        }
        let unreachable = |reason: String| Error::Unreachable {
            node: node.name.clone(),
            reason,
        };
        // ssh's ConnectTimeout bounds the TCP connect (and the banner); this backstop bounds a
        // handshake that stalls after it. It is generous on purpose: key exchange is CPU work,
        // and fifty of them at once on a busy control machine can take many seconds — a tight
        // bound here reported healthy nodes as unreachable (seen in bench/ under load).
        let bound = node.connect_timeout + HANDSHAKE_GRACE;
        let deadline = Instant::now() + bound;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let result = tokio::time::timeout(left, b.connect_mux(&node.host)).await;
            let reason = match result {
                Ok(Ok(session)) => return Ok(session),
                Ok(Err(e)) => error_chain(&e),
                Err(_) => format!("no SSH session after {} s", bound.as_secs()),
            };
            let transient = reason.contains("kex_exchange_identification")
                || reason.contains("Connection reset by peer")
                || reason.contains("Connection closed by remote host");
            if !transient || attempt >= CONNECT_ATTEMPTS || Instant::now() >= deadline {
                return Err(unreachable(reason));
            }
            // Spread the retries of many nodes hitting one sshd's MaxStartups.
            let jitter = u64::from(std::process::id() % 7 + attempt * 13) % 50;
            tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt) + jitter)).await;
        }
    }

    /// Run `line` on `node` under `timeout(1)`.
    pub async fn exec(&self, node: &Node, line: &str, timeout: Duration) -> Result<Output> {
        let (code, stdout, stderr) = self.run(node, line, None, timeout).await?;
        Ok(Output {
            code,
            stdout: text(stdout),
            stderr: text(stderr),
        })
    }

    /// Run `line` on `node` under `timeout(1)`, feeding it `stdin`; the raw streams.
    pub async fn run(
        &self,
        node: &Node,
        line: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(i32, Vec<u8>, Vec<u8>)> {
        let (session, _) = self.connect(node).await?;
        let remote = bounded(line, timeout);
        let mut child = spawn(&session, node, &remote, stdin.is_some()).await?;
        let input = child.stdin().take();
        let out = child.stdout().take();
        let err = child.stderr().take();
        let feed = async move {
            if let (Some(mut input), Some(bytes)) = (input, stdin) {
                use tokio::io::AsyncWriteExt;
                // A command that exits without reading its input is not our error to report.
                let _ = input.write_all(&bytes).await;
                let _ = input.shutdown().await;
            }
        };
        // The node's own `timeout` fires first; this local bound only catches a node that
        // stopped answering altogether.
        let local_bound = timeout + Duration::from_secs(15);
        let collected = tokio::time::timeout(local_bound, async {
            let ((), stdout, stderr) = tokio::join!(feed, read_capped(out), read_capped(err));
            let status = child.wait().await;
            (stdout, stderr, status)
        })
        .await;
        let Ok((stdout, stderr, status)) = collected else {
            return Err(Error::Timeout {
                node: node.name.clone(),
                command: line.to_string(),
                seconds: timeout.as_secs(),
            });
        };
        let code = self.exit_code(node, &session, status).await?;
        self.touch(node).await;
        Ok((code, stdout, stderr))
    }

    /// The exit code of a finished remote command, or the error of a lost connection.
    async fn exit_code(
        &self,
        node: &Node,
        session: &Session,
        status: std::result::Result<std::process::ExitStatus, openssh::Error>,
    ) -> Result<i32> {
        let lost = |reason: String| Error::Unreachable {
            node: node.name.clone(),
            reason,
        };
        match status {
            Ok(s) => Ok(s.code().unwrap_or(255)),
            // The crate turns exit code 127 into an error; to us it is an exit code like any
            // other ("command not found", or the simulator's "not simulated"), with its stderr.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(127),
            Err(openssh::Error::RemoteProcessTerminated) => {
                // The multiplex protocol cannot tell a killed process from a lost connection.
                if session.check().await.is_err() {
                    self.forget(node).await;
                    return Err(lost("connection lost while the command ran".into()));
                }
                Ok(255)
            }
            Err(e) => {
                self.forget(node).await;
                Err(lost(error_chain(&e)))
            }
        }
    }

    async fn touch(&self, node: &Node) {
        let slot = self.slot(node).await;
        if let Some((_, last)) = slot.session.write().await.as_mut() {
            *last = Instant::now();
        }
    }

    async fn forget(&self, node: &Node) {
        let slot = self.slot(node).await;
        let old = slot.session.write().await.take();
        if let Some((s, _)) = old
            && let Ok(s) = Arc::try_unwrap(s)
        {
            let _ = s.close().await;
        }
    }

    /// Ask `node` for the environment's run lock, described by `holder`; when granted, the
    /// session holding it stays open until [`SshTransport::release_locks`] or the connection
    /// dies. Not bounded by `timeout(1)`: it lives as long as the run.
    pub async fn hold_lock(&self, node: &Node, holder: &str) -> Result<LockAnswer> {
        use tokio::io::AsyncBufReadExt;
        let (session, _) = self.connect(node).await?;
        let script = node_lock::script(holder)?;
        let lost = |reason: String| Error::Unreachable {
            node: node.name.clone(),
            reason,
        };
        let mut child = Session::to_raw_command(session, &script)
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::null())
            .spawn()
            .await
            .map_err(|e| lost(error_chain(&e)))?;
        let stdout = child
            .stdout()
            .take()
            .ok_or_else(|| Error::Internal("lock session without stdout".into()))?;
        let mut line = String::new();
        let read = tokio::time::timeout(
            node_lock::ANSWER_TIMEOUT,
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let command = format!("flock {}", node_lock::LOCK_PATH);
        let answer = match read {
            Ok(Ok(_)) => node_lock::answer(&node.name, &command, line.trim_end_matches('\n'))?,
            Ok(Err(e)) => return Err(lost(e.to_string())),
            Err(_) => {
                return Err(Error::Timeout {
                    node: node.name.clone(),
                    command,
                    seconds: node_lock::ANSWER_TIMEOUT.as_secs(),
                });
            }
        };
        match &answer {
            LockAnswer::Held { .. } => {
                self.locks.lock().await.insert(node.name.clone(), child);
            }
            LockAnswer::Busy { .. } => {
                let _ = child.wait().await;
            }
        }
        Ok(answer)
    }

    /// Let go of every run lock this transport holds: close each lock session's stdin, so
    /// that it clears its holder file and exits, and wait for it (bounded).
    pub async fn release_locks(&self) {
        let held: Vec<_> = self.locks.lock().await.drain().map(|(_, c)| c).collect();
        let mut releasing = tokio::task::JoinSet::new();
        for mut child in held {
            releasing.spawn(async move {
                drop(child.stdin().take());
                let _ = tokio::time::timeout(node_lock::ANSWER_TIMEOUT, child.wait()).await;
            });
        }
        while releasing.join_next().await.is_some() {}
    }

    /// Close every master concurrently (the control directory goes with the transport).
    pub async fn close(&self) {
        self.release_locks().await;
        let mut closing = tokio::task::JoinSet::new();
        for (_, slot) in self.slots.lock().await.drain() {
            closing.spawn(async move {
                let taken = slot.session.write().await.take();
                if let Some((s, _)) = taken
                    && let Ok(s) = Arc::try_unwrap(s)
                {
                    let _ = s.close().await;
                }
            });
        }
        while closing.join_next().await.is_some() {}
    }
}

/// Open a session on the master for `remote`. sshd frees a session slot a little after the
/// previous command's exit status reached us; a refused session never ran anything, so it is
/// safe to ask again.
async fn spawn<'s>(
    session: &'s Session,
    node: &Node,
    remote: &str,
    with_stdin: bool,
) -> Result<openssh::RemoteChild<'s>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let spawned = session
            .raw_command(remote)
            .stdin(if with_stdin {
                openssh::Stdio::piped()
            } else {
                openssh::Stdio::null()
            })
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await;
        match spawned {
            Ok(child) => return Ok(child),
            Err(e) => {
                let reason = error_chain(&e);
                if reason.contains("Session open refused") && attempt < SESSION_ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    continue;
                }
                return Err(Error::Unreachable {
                    node: node.name.clone(),
                    reason,
                });
            }
        }
    }
}

/// Control directories are `<tmp>/ovsup-<pid>-XXXXXX`.
const CONTROL_PREFIX: &str = "ovsup-";

/// Remove the control directories of ovsup runs that no longer live (a killed run cannot
/// clean up; its masters exit by themselves after `ControlPersist`). Only directories of this
/// user whose pid is gone are touched.
fn remove_stale_control_dirs(tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CONTROL_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let mine = entry
            .metadata()
            .is_ok_and(|m| m.is_dir() && Some(m.uid()) == me);
        if mine && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Read a stream to its end, keeping at most [`OUTPUT_CAP`] bytes; the rest is drained so the
/// remote command never blocks on a full pipe. (No fixed buffer: a future holding one stays
/// alive per stream of every command in flight.)
async fn read_capped<R: AsyncRead + Unpin>(stream: Option<R>) -> Vec<u8> {
    let Some(mut stream) = stream else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let _ = (&mut stream)
        .take(OUTPUT_CAP as u64)
        .read_to_end(&mut kept)
        .await;
    let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
    kept
}

/// The error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ").replace('\n', " ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_directory_is_private_and_a_dead_runs_is_removed() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        // A run that was killed (no such pid), one that lives (us), and an unrelated directory.
        let dead = tmp.path().join(format!("{CONTROL_PREFIX}4000000000-abc"));
        let alive = tmp
            .path()
            .join(format!("{CONTROL_PREFIX}{}-abc", std::process::id()));
        let other = tmp.path().join("ovsup-notes");
        for d in [&dead, &alive, &other] {
            std::fs::create_dir(d).expect("mkdir");
        }
        remove_stale_control_dirs(tmp.path());
        assert!(!dead.exists() && alive.exists() && other.exists());
        let t = SshTransport::new_in(None, tmp.path()).expect("transport");
        let mode = std::fs::metadata(t.control_dir())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
