//! SSH to real nodes: one OpenSSH master per node, opened lazily and concurrently, reused for
//! every command of the run (native mux: no `ssh` process per command) — and by the next runs:
//! a master outlives the run that opened it by `--control-persist` (ControlPersist) so that the
//! guide's dozen invocations pay one handshake per node, not one per invocation.
//!
//! - The control sockets live in the environment's private control directory
//!   (`state::control`), each named by a hash of everything that makes the connection what it
//!   is ([`SshTransport::key`]: host, port, user, identity file, host-key policy, the ssh config
//!   file and its text). A run uses a live master of exactly that connection, never another.
//! - A socket whose master is gone (it idled out, the node rebooted) is noticed (`check()`)
//!   and a new master is started on it; a master idle for a while is checked again before use.
//! - Starting a master is serialised across processes by a lock on its log file, so two runs
//!   never start two masters on one socket (the loser would keep a connection without one).
//! - Host keys are checked strictly unless the inventory says `accept-new`; BatchMode always.
//! - A connect is retried with backoff when sshd drops it during key exchange (`MaxStartups`).
//! - With `--control-persist 0` the masters are closed at the end of the run, as before.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssh::Session;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Mutex, RwLock};

use super::node_lock::{self, LockAnswer};
use super::{OUTPUT_CAP, Output, bounded, text};
use crate::error::{Error, Result};
use crate::inventory::{HostKeyCheck, Node};
use crate::state::control::{SOCKET_NAME_LEN, fnv1a64};

/// With `--control-persist 0` (closed at the end of each run), a master left by a killed run
/// still idles out after this long.
const CRASH_PERSIST: Duration = Duration::from_secs(60);
/// Check that the master still lives before using it after this much idle time (at most; less
/// when masters persist for less).
const RECHECK_AFTER: Duration = Duration::from_secs(240);
/// How long an alive check of an existing master may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the master probes the server, so a vanished node is noticed.
const SERVER_ALIVE: Duration = Duration::from_secs(15);
/// How long a handshake may go on after ssh's own connect timeout.
const HANDSHAKE_GRACE: Duration = Duration::from_secs(60);
/// Connect attempts when sshd resets the connection during key exchange.
const CONNECT_ATTEMPTS: u32 = 5;
/// Session opens refused by sshd (`MaxSessions`) before we give up.
const SESSION_ATTEMPTS: u32 = 6;
/// Masters `disconnect` closes at once.
const DISCONNECT_PARALLEL: usize = 32;
/// Changes when the way masters are started changes what a connection is.
const KEY_VERSION: &str = "ovsup-master-1";

/// How the transport reaches nodes.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// The OpenSSH client config (`ssh -F`), if any.
    pub ssh_config: Option<PathBuf>,
    /// The environment's private control directory (created).
    pub control_dir: PathBuf,
    /// How long a master outlives the last run that used it; zero: closed at the run's end.
    pub persist: Duration,
}

/// Connections to real nodes.
pub struct SshTransport {
    ssh_config: Option<PathBuf>,
    /// A hash of the ssh config's text: a config that changed makes other connections.
    ssh_config_digest: u64,
    control_dir: PathBuf,
    persist: Duration,
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
    /// A transport with these options; the ssh config is read once, for the connections' keys.
    pub fn new(options: SshOptions) -> Result<SshTransport> {
        let ssh_config_digest = match &options.ssh_config {
            Some(p) => fnv1a64(&std::fs::read(p).map_err(|e| Error::io(p, e))?),
            None => 0,
        };
        Ok(SshTransport {
            ssh_config: options.ssh_config,
            ssh_config_digest,
            control_dir: options.control_dir,
            persist: options.persist,
            slots: Mutex::default(),
            locks: Mutex::default(),
        })
    }

    /// The private directory holding the control sockets.
    pub fn control_dir(&self) -> &Path {
        &self.control_dir
    }

    /// The `ControlPersist` the masters get.
    fn master_persist(&self) -> Duration {
        if self.persist.is_zero() {
            CRASH_PERSIST
        } else {
            self.persist
        }
    }

    /// After how long without use a master is checked before the next command.
    fn recheck_after(&self) -> Duration {
        RECHECK_AFTER.min(self.master_persist().mul_f64(0.8))
    }

    /// What makes a connection to `node` what it is, hashed: the socket's name. Two runs
    /// share a master only when all of it is equal.
    pub fn key(&self, node: &Node) -> u64 {
        let mut s = String::from(KEY_VERSION);
        let _ = write!(
            s,
            "\0{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:016x}",
            node.host,
            node.port,
            node.user,
            node.identity_file,
            node.host_key_check,
            self.ssh_config,
            self.ssh_config_digest
        );
        fnv1a64(s.as_bytes())
    }

    /// The control socket of `node`'s master.
    pub fn socket(&self, node: &Node) -> PathBuf {
        self.control_dir.join(format!("{:016x}", self.key(node)))
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
        let recheck = self.recheck_after();
        if let Some((s, last)) = slot.session.read().await.as_ref()
            && last.elapsed() < recheck
        {
            return Ok((s.clone(), Duration::ZERO));
        }
        let _one_at_a_time = slot.connecting.lock().await;
        if let Some((s, last)) = slot.session.read().await.as_ref()
            && (last.elapsed() < recheck || alive(s).await)
        {
            return Ok((s.clone(), Duration::ZERO));
        }
        let started = Instant::now();
        let session = Arc::new(self.open(node).await?);
        *slot.session.write().await = Some((session.clone(), Instant::now()));
        Ok((session, started.elapsed()))
    }

    /// A live master of this connection: the one an earlier (or a concurrent) run left on
    /// the socket, or a new one.
    async fn open(&self, node: &Node) -> Result<Session> {
        let socket = self.socket(node);
        if let Some(s) = resume(&socket).await {
            return Ok(s);
        }
        let log = socket.with_extension("log");
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
        let log_file = lock_file(&log, deadline)
            .await
            .map_err(|e| unreachable(format!("{}: {e}", log.display())))?;
        // Another process may have started the master while we waited for the lock.
        if let Some(s) = resume(&socket).await {
            return Ok(s);
        }
        // A socket no master answers on is left by one that died: ssh would not bind it.
        let _ = std::fs::remove_file(&socket);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let _ = log_file.set_len(0);
            let left = deadline.saturating_duration_since(Instant::now());
            let started = tokio::time::timeout(left, self.start_master(node, &socket, &log)).await;
            let reason = match started {
                Ok(Ok(())) => return Ok(Session::resume_mux(socket.into_boxed_path(), None)),
                Ok(Err(reason)) => reason,
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

    /// `ssh -M -f -N -S SOCKET …`: authenticate, then go to the background as the master on
    /// `socket`; the error is what ssh logged.
    async fn start_master(
        &self,
        node: &Node,
        socket: &Path,
        log: &Path,
    ) -> std::result::Result<(), String> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .arg("-E")
            .arg(log)
            .arg("-S")
            .arg(socket)
            .args(["-M", "-f", "-N", "-o"])
            .arg(format!(
                "ControlPersist={}s",
                self.master_persist().as_secs().max(1)
            ))
            .args(["-o", "BatchMode=yes", "-o"])
            .arg(match node.host_key_check {
                HostKeyCheck::Strict => "StrictHostKeyChecking=yes",
                HostKeyCheck::AcceptNew => "StrictHostKeyChecking=accept-new",
            })
            .arg("-o")
            .arg(format!(
                "ConnectTimeout={}",
                node.connect_timeout.as_secs().max(1)
            ))
            .arg("-o")
            .arg(format!("ServerAliveInterval={}", SERVER_ALIVE.as_secs()));
        if let Some(port) = node.port {
            cmd.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &node.user {
            cmd.arg("-l").arg(user);
        }
        if let Some(key) = &node.identity_file {
            cmd.args(["-o", "IdentitiesOnly=yes", "-i"]).arg(key);
        }
        if let Some(cfg) = &self.ssh_config {
            cmd.arg("-F").arg(cfg);
        }
        cmd.arg("--").arg(&node.host);
        let status = cmd.status().await.map_err(|e| format!("ssh: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        let logged = logged.trim().replace('\n', " ");
        Err(if logged.is_empty() {
            format!("ssh exited with {status}")
        } else {
            logged
        })
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
        let remote = bounded(line, timeout);
        let first = self.connect(node).await?.0;
        let second: Arc<Session>;
        let (session, mut child) = match spawn(&first, node, &remote, stdin.is_some()).await {
            Ok(child) => (&first, child),
            // The master went away since it was last checked (it idled out, or was told to
            // exit): nothing was sent, so start another and send the command there.
            Err(Spawn::MasterGone(_)) => {
                self.forget(node).await;
                second = self.connect(node).await?.0;
                let child = spawn(&second, node, &remote, stdin.is_some())
                    .await
                    .map_err(Spawn::into_error)?;
                (&second, child)
            }
            Err(e) => return Err(e.into_error()),
        };
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
        let code = self.exit_code(node, session, status).await?;
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

    /// Stop using the node's master after its connection was lost: the next command checks
    /// the socket again and starts a new master if none answers.
    async fn forget(&self, node: &Node) {
        let slot = self.slot(node).await;
        slot.session.write().await.take();
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

    /// The end of the run: let go of the run locks; the masters stay for the next run (each
    /// exits by itself after `ControlPersist` without use), or with `--control-persist 0` are
    /// asked to stop now (they exit once their last session ends).
    pub async fn close(&self) {
        self.release_locks().await;
        let slots: Vec<Arc<Slot>> = self.slots.lock().await.drain().map(|(_, s)| s).collect();
        if !self.persist.is_zero() {
            return;
        }
        let mut closing = tokio::task::JoinSet::new();
        for slot in slots {
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

/// Why a session could not be opened on a master.
enum Spawn {
    /// Nothing answers on the control socket any more.
    MasterGone(Error),
    /// Anything else.
    Failed(Error),
}

impl Spawn {
    fn into_error(self) -> Error {
        match self {
            Spawn::MasterGone(e) | Spawn::Failed(e) => e,
        }
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
) -> std::result::Result<openssh::RemoteChild<'s>, Spawn> {
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
                let gone = master_gone(&e);
                let e = Error::Unreachable {
                    node: node.name.clone(),
                    reason,
                };
                return Err(if gone {
                    Spawn::MasterGone(e)
                } else {
                    Spawn::Failed(e)
                });
            }
        }
    }
}

/// Whether the error says the control socket has no master behind it (missing, refused).
fn master_gone(e: &openssh::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The master on `socket`, if one answers there (left by an earlier run, or started by a
/// concurrent one).
async fn resume(socket: &Path) -> Option<Session> {
    if !socket.exists() {
        return None;
    }
    let s = Session::resume_mux(socket.to_path_buf().into_boxed_path(), None);
    alive(&s).await.then_some(s)
}

/// Whether the master answers an alive check (bounded: a wedged master is a dead one).
async fn alive(s: &Session) -> bool {
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, s.check()).await,
        Ok(Ok(()))
    )
}

/// Open (creating it, 0600) and lock `path` exclusively, waiting until `deadline`.
async fn lock_file(path: &Path, deadline: Instant) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(
                    "another process kept the master's lock too long",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// What `disconnect` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnected {
    /// Masters asked to exit (`ssh -O exit`), which did.
    pub closed: usize,
    /// Sockets no master answered on any more (removed).
    pub stale: usize,
    /// Masters that did not exit when asked, with what ssh said.
    pub failed: Vec<String>,
}

/// Close every master whose socket is in `dir` (`ssh -O exit`, a few at a time), wait until
/// each is gone, and remove the sockets nobody answers on and the masters' logs.
pub async fn disconnect_all(dir: &Path) -> Disconnected {
    let mut done = Disconnected::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return done;
    };
    let sockets: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.len() == SOCKET_NAME_LEN && n.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
        .collect();
    let mut outcomes = futures_util::StreamExt::buffer_unordered(
        futures_util::stream::iter(sockets.into_iter().map(|socket| async move {
            let outcome = exit_master(&socket).await;
            let _ = std::fs::remove_file(socket.with_extension("log"));
            (socket, outcome)
        })),
        DISCONNECT_PARALLEL,
    );
    while let Some((socket, outcome)) = futures_util::StreamExt::next(&mut outcomes).await {
        match outcome {
            Exit::Closed => done.closed += 1,
            Exit::Stale => done.stale += 1,
            Exit::Failed(why) => done.failed.push(format!("{}: {why}", socket.display())),
        }
    }
    for log in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = log.path();
        if path.extension().is_some_and(|e| e == "log") && !path.with_extension("").exists() {
            let _ = std::fs::remove_file(path);
        }
    }
    done
}

enum Exit {
    Closed,
    Stale,
    Failed(String),
}

/// `ssh -O exit` on one socket, then wait (bounded) for the master to remove it as it exits.
async fn exit_master(socket: &Path) -> Exit {
    if resume(socket).await.is_none() {
        let _ = std::fs::remove_file(socket);
        return Exit::Stale;
    }
    let out = tokio::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-S"])
        .arg(socket)
        .args(["-O", "exit", "ovsup-master"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(CHECK_TIMEOUT, out).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Exit::Failed(format!("ssh: {e}")),
        Err(_) => return Exit::Failed("ssh -O exit did not return".into()),
    };
    let deadline = Instant::now() + CHECK_TIMEOUT;
    while socket.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if socket.exists() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Exit::Failed(format!("the master did not exit ({said})"));
    }
    Exit::Closed
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
    use crate::inventory::HostKeyCheck;

    fn node(host: &str, port: Option<u16>, user: Option<&str>) -> Node {
        Node {
            name: "n".into(),
            host: host.into(),
            port,
            user: user.map(str::to_string),
            identity_file: None,
            groups: Vec::new(),
            host_key_check: HostKeyCheck::Strict,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            apt_lock_wait: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_socket_is_named_by_everything_that_makes_the_connection() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("ssh_config");
        std::fs::write(&cfg, "Host *\n  User root\n").expect("config");
        let transport = |config: Option<PathBuf>| {
            SshTransport::new(SshOptions {
                ssh_config: config,
                control_dir: tmp.path().to_path_buf(),
                persist: Duration::from_secs(300),
            })
            .expect("transport")
        };
        let t = transport(Some(cfg.clone()));
        let base = node("10.0.0.1", Some(22), Some("root"));
        let key = t.key(&base);
        // Another node name for the same connection: the same master.
        assert_eq!(
            t.key(&Node {
                name: "m".into(),
                ..base.clone()
            }),
            key
        );
        let others = [
            node("10.0.0.2", Some(22), Some("root")),
            node("10.0.0.1", Some(2222), Some("root")),
            node("10.0.0.1", None, Some("root")),
            node("10.0.0.1", Some(22), Some("ovs")),
            Node {
                identity_file: Some("/k".into()),
                ..base.clone()
            },
            Node {
                host_key_check: HostKeyCheck::AcceptNew,
                ..base.clone()
            },
        ];
        for other in &others {
            assert_ne!(t.key(other), key, "{other:?}");
        }
        assert_ne!(transport(None).key(&base), key);
        std::fs::write(
            &cfg,
            "Host *\n  User root\n  KexAlgorithms curve25519-sha256\n",
        )
        .expect("config changed");
        assert_ne!(transport(Some(cfg)).key(&base), key);
        let name = t.socket(&base);
        let name = name.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name.len(), SOCKET_NAME_LEN);
    }
}
