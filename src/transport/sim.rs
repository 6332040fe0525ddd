//! The in-process transport to the built-in simulated cluster: commands run against the
//! simulator's node model, one state file per node in the state directory. No SSH, no network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Output;
use super::node_lock::{self, LockAnswer};
use crate::error::{Error, Result};
use crate::inventory::Node;
use crate::sim::{Fs, VirtualFs};

/// Simulated nodes whose state files live in `dir`.
pub struct SimTransport {
    dir: PathBuf,
    /// The nodes whose run lock this process holds.
    locks: std::sync::Mutex<Vec<Node>>,
}

impl SimTransport {
    /// Nodes stored as `<dir>/<node>.json`.
    pub fn new(dir: PathBuf) -> SimTransport {
        SimTransport {
            dir,
            locks: std::sync::Mutex::default(),
        }
    }

    /// The state file of a node.
    pub fn state_file(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.json"))
    }

    /// The file that makes a simulated node unreachable while it exists (`ovsup sim fault
    /// NODE unreachable true`): the node's model stays as it is, as a real node's does when
    /// its network or sshd is gone.
    pub fn down_file(dir: &std::path::Path, node: &str) -> PathBuf {
        dir.join(format!("{node}.down"))
    }

    /// Fail as an unreachable node would, while the node is down.
    fn reachable(&self, node: &Node) -> Result<()> {
        if Self::down_file(&self.dir, &node.name).exists() {
            return Err(Error::Unreachable {
                node: node.name.clone(),
                reason: "simulated: the node is down (ovsup sim fault NODE unreachable false brings it back)".into(),
            });
        }
        Ok(())
    }

    /// Run shell text on the simulated node, bounded by `timeout`.
    pub async fn exec(&self, node: &Node, line: &str, timeout: Duration) -> Result<Output> {
        self.reachable(node)?;
        let path = self.state_file(&node.name);
        let line = line.to_string();
        let deadline = Instant::now() + timeout;
        let out = tokio::task::spawn_blocking(move || {
            crate::sim::SimNode::open_virtual(path)
                .map(|n| n.run_line(&line, Some(deadline)))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| Error::Internal(format!("simulator task: {e}")))?
        .map_err(|message| Error::Simulator {
            node: node.name.clone(),
            message,
        })?;
        Ok(Output {
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Read a file of the simulated node.
    pub async fn read_file(&self, node: &Node, path: &str) -> Result<Vec<u8>> {
        self.reachable(node)?;
        let sim = self.node(node)?;
        let path_owned = path.to_string();
        let read = tokio::task::spawn_blocking(move || sim.read_file(&path_owned))
            .await
            .map_err(|e| Error::Internal(format!("simulator task: {e}")))?
            .map_err(|e| simulator(node, e))?;
        read.map(String::into_bytes).ok_or_else(|| Error::Remote {
            node: node.name.clone(),
            command: format!("cat -- {path}"),
            code: 1,
            stderr: format!("cat: {path}: No such file or directory"),
        })
    }

    /// Write a file of the simulated node (its files hold text).
    pub async fn write_file(&self, node: &Node, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.reachable(node)?;
        let sim = self.node(node)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::argument(format!(
                "{}: the simulator holds text files only, and {path} is binary",
                node.name
            ))
        })?;
        let path_owned = path.to_string();
        tokio::task::spawn_blocking(move || sim.write_file(&path_owned, &text))
            .await
            .map_err(|e| Error::Internal(format!("simulator task: {e}")))?
            .map_err(|e| simulator(node, e))?
            .map_err(|e| Error::Remote {
                node: node.name.clone(),
                command: format!("write {path}"),
                code: 1,
                stderr: e.to_string(),
            })
    }

    /// Ask a simulated node for the environment's run lock. A simulated node has no session
    /// to hold it with, so its holder file (in the node's filesystem, as on a real node) says
    /// which process holds it, and a holder whose process is gone counts as gone — as a real
    /// node's `flock` is released when the holder's connection dies.
    pub async fn hold_lock(&self, node: &Node, holder: &str) -> Result<LockAnswer> {
        self.reachable(node)?;
        let sim = self.node(node)?;
        let holder = holder.to_string();
        let answer = tokio::task::spawn_blocking(move || {
            sim.update(|state| {
                let fs = VirtualFs::new(std::mem::take(&mut state.files));
                let current = fs
                    .read(node_lock::HOLDER_PATH)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty());
                let answer = match current {
                    Some(other) if crate::lock_holder::holder_alive(&other) && other != holder => {
                        LockAnswer::Busy { holder: other }
                    }
                    previous => {
                        let written = fs.create_dir_all("/var/lib/ovsup").and_then(|()| {
                            fs.write(node_lock::HOLDER_PATH, &format!("{holder}\n"))
                        });
                        match written {
                            Ok(()) => LockAnswer::Held { previous },
                            Err(e) => LockAnswer::Busy {
                                holder: format!("(cannot write {}: {e})", node_lock::HOLDER_PATH),
                            },
                        }
                    }
                };
                state.files = fs.into_entries();
                answer
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("simulator task: {e}")))?
        .map_err(|e| simulator(node, e))?;
        if matches!(answer, LockAnswer::Held { .. })
            && let Ok(mut held) = self.locks.lock()
        {
            held.push(node.clone());
        }
        Ok(answer)
    }

    /// Let go of the run locks this process holds (clear the holder files that name it).
    pub async fn release_locks(&self) {
        let held: Vec<Node> = match self.locks.lock() {
            Ok(mut held) => held.drain(..).collect(),
            Err(_) => return,
        };
        for node in held {
            let Ok(sim) = self.node(&node) else { continue };
            let _ = tokio::task::spawn_blocking(move || {
                sim.update(|state| {
                    let fs = VirtualFs::new(std::mem::take(&mut state.files));
                    let mine = fs
                        .read(node_lock::HOLDER_PATH)
                        .ok()
                        .is_some_and(|t| crate::lock_holder::holder_is_this_process(t.trim()));
                    if mine {
                        let _ = fs.write(node_lock::HOLDER_PATH, "");
                    }
                    state.files = fs.into_entries();
                })
            })
            .await;
        }
    }

    fn node(&self, node: &Node) -> Result<crate::sim::SimNode> {
        crate::sim::SimNode::open_virtual(self.state_file(&node.name))
            .map_err(|e| simulator(node, e))
    }
}

/// A simulated node whose state file failed: the node's machinery, not a command on it.
fn simulator(node: &Node, e: crate::sim::SimError) -> Error {
    Error::Simulator {
        node: node.name.clone(),
        message: e.to_string(),
    }
}
