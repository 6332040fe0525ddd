//! How a command reaches a node: over SSH to a real node, or in-process to a simulated one.
//!
//! A closed enum rather than a trait object: there are exactly two transports, both known here,
//! and `async fn` in an enum needs no boxing. Everything above this module sees one
//! [`Transport::exec`] that takes shell text and returns an [`Output`], or an error that names
//! the node.

pub mod node_lock;
pub mod sim;
pub mod ssh;

use std::time::Duration;

use crate::error::Result;
use crate::inventory::Node;

/// What a finished remote command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (124 when the node's `timeout` killed it).
    pub code: i32,
    /// Standard output (lossy UTF-8, capped at [`OUTPUT_CAP`]).
    pub stdout: String,
    /// Standard error (lossy UTF-8, capped at [`OUTPUT_CAP`]).
    pub stderr: String,
}

/// At most this many bytes of each stream are kept; the rest is read and dropped so that the
/// remote process never blocks on a full pipe.
pub const OUTPUT_CAP: usize = 8 << 20;

/// The exit code `timeout(1)` gives a command it had to kill.
pub const TIMEOUT_EXIT: i32 = 124;

/// One of the two ways of reaching nodes.
pub enum Transport {
    /// Real nodes, one multiplexed OpenSSH master each.
    Ssh(ssh::SshTransport),
    /// The built-in simulated cluster.
    Sim(sim::SimTransport),
}

impl Transport {
    /// Run shell text on `node`, bounded by `timeout` on the node itself.
    pub async fn exec(&self, node: &Node, line: &str, timeout: Duration) -> Result<Output> {
        match self {
            Transport::Ssh(t) => t.exec(node, line, timeout).await,
            Transport::Sim(t) => t.exec(node, line, timeout).await,
        }
    }

    /// The bytes of a file on `node` (for copies between nodes that do not trust each other).
    pub async fn read_file(&self, node: &Node, path: &str, timeout: Duration) -> Result<Vec<u8>> {
        match self {
            Transport::Ssh(t) => {
                let line = crate::quote::join(&["cat", "--", path])?;
                let (code, stdout, stderr) = t.run(node, &line, None, timeout).await?;
                file_op_result(node, &line, code, &stderr).map(|()| stdout)
            }
            Transport::Sim(t) => t.read_file(node, path).await,
        }
    }

    /// Write a file on `node` atomically (a temporary file beside it, then a rename), creating
    /// its directory.
    pub async fn write_file(
        &self,
        node: &Node,
        path: &str,
        bytes: Vec<u8>,
        timeout: Duration,
    ) -> Result<()> {
        match self {
            Transport::Ssh(t) => {
                let (dir, tmp) = temp_beside(path);
                let line = format!(
                    "mkdir -p -- {dir} && cat > {tmp} && mv -f -- {tmp} {dest}",
                    dir = shlex::try_quote(&dir).unwrap_or_default(),
                    tmp = shlex::try_quote(&tmp).unwrap_or_default(),
                    dest = shlex::try_quote(path).unwrap_or_default(),
                );
                let (code, _, stderr) = t.run(node, &line, Some(bytes), timeout).await?;
                file_op_result(node, &line, code, &stderr)
            }
            Transport::Sim(t) => t.write_file(node, path, bytes).await,
        }
    }

    /// Open the connection to `node` now (it is otherwise opened by the first command).
    pub async fn connect(&self, node: &Node) -> Result<()> {
        match self {
            Transport::Ssh(t) => t.connect(node).await.map(|_| ()),
            Transport::Sim(_) => Ok(()),
        }
    }

    /// Ask `node` for the environment's run lock (see [`node_lock`]), held until
    /// [`Transport::close`] or until this process's connection to the node is gone.
    pub async fn hold_lock(&self, node: &Node, holder: &str) -> Result<node_lock::LockAnswer> {
        match self {
            Transport::Ssh(t) => t.hold_lock(node, holder).await,
            Transport::Sim(t) => t.hold_lock(node, holder).await,
        }
    }

    /// Let go of the run locks held on the nodes (the connections stay).
    pub async fn release_locks(&self) {
        match self {
            Transport::Ssh(t) => t.release_locks().await,
            Transport::Sim(t) => t.release_locks().await,
        }
    }

    /// Close every connection cleanly (the run locks it holds first).
    pub async fn close(&self) {
        match self {
            Transport::Ssh(t) => t.close().await,
            Transport::Sim(t) => t.release_locks().await,
        }
    }
}

/// The command line that bounds `line` on the node: `timeout(1)` kills it (and its process
/// group) when the deadline passes, so a timed-out command does not live on after ovsup gave up
/// on it — dropping an SSH channel does not kill the remote process. A simple command (a
/// program and its arguments, nothing for a shell to interpret) runs under `timeout` directly;
/// anything else through `sh -c`, which costs one more process per command.
pub fn bounded(line: &str, timeout: Duration) -> String {
    let secs = timeout.as_secs().max(1);
    if is_simple_command(line) {
        return format!("timeout -k 5 {secs} {line}");
    }
    // `shlex::try_quote` only fails on NUL, which `exec` has already refused.
    let quoted = shlex::try_quote(line).unwrap_or_default();
    format!("timeout -k 5 {secs} sh -c {quoted}")
}

/// Shell builtins and keywords that `timeout` cannot exec as a program.
const SHELL_ONLY: &[&str] = &[
    ".", ":", "alias", "break", "case", "cd", "continue", "declare", "eval", "exec", "exit",
    "export", "for", "function", "hash", "if", "let", "local", "read", "readonly", "return", "set",
    "shift", "source", "trap", "type", "ulimit", "umask", "unset", "until", "wait", "while", "{",
    "[[",
];

/// True when `line` is a program and its arguments with nothing a shell would interpret
/// (no operators, redirections, expansions, globs or assignments, even inside quotes): then
/// `timeout PROGRAM ARGS…` means exactly what the shell would have run.
fn is_simple_command(line: &str) -> bool {
    const SHELL_SYNTAX: &[char] = &[
        ';', '&', '|', '<', '>', '(', ')', '$', '`', '\\', '\n', '*', '?', '[', ']', '{', '}', '~',
        '!', '#', '%', '=',
    ];
    if line.contains(SHELL_SYNTAX) {
        return false;
    }
    match shlex::split(line) {
        Some(words) => words
            .first()
            .is_some_and(|w| !SHELL_ONLY.contains(&w.as_str())),
        None => false,
    }
}

/// The directory of `path` and a temporary name beside it.
fn temp_beside(path: &str) -> (String, String) {
    let dir = match path.rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    };
    (dir, format!("{path}.ovsup-tmp"))
}

fn file_op_result(node: &Node, line: &str, code: i32, stderr: &[u8]) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(crate::error::Error::Remote {
        node: node.name.clone(),
        command: line.to_string(),
        code,
        stderr: text(stderr.to_vec()),
    })
}

/// Lossy UTF-8 of captured bytes.
pub(crate) fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_skip_the_shell_and_the_rest_keep_it() {
        let t = Duration::from_secs(30);
        assert_eq!(bounded("true", t), "timeout -k 5 30 true");
        assert_eq!(
            bounded("virsh shutdown 'vm a'", t),
            "timeout -k 5 30 virsh shutdown 'vm a'"
        );
        for shell in [
            "echo a; echo b",
            "echo $HOME",
            "cd /tmp",
            "LC_ALL=C apt-get update",
            "ls *.deb",
            "cat x > y",
            "echo 'a\nb'",
            "test -d /x && echo y",
        ] {
            let b = bounded(shell, t);
            assert!(b.starts_with("timeout -k 5 30 sh -c "), "{shell}: {b}");
            assert_eq!(
                shlex::split(&b).expect("split").last().map(String::as_str),
                Some(shell)
            );
        }
    }
}
