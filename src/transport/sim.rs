//! The in-process transport to the built-in simulated cluster: commands run against the
//! simulator's node model, one state file per node in the state directory. No SSH, no network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Output;
use crate::error::{Error, Result};
use crate::inventory::Node;

/// Simulated nodes whose state files live in `dir`.
pub struct SimTransport {
    dir: PathBuf,
}

impl SimTransport {
    /// Nodes stored as `<dir>/<node>.json`.
    pub fn new(dir: PathBuf) -> SimTransport {
        SimTransport { dir }
    }

    /// The state file of a node.
    pub fn state_file(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.json"))
    }

    /// Run shell text on the simulated node, bounded by `timeout`.
    pub async fn exec(&self, node: &Node, line: &str, timeout: Duration) -> Result<Output> {
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
