//! The other nodes of a simulated cluster, as a node's tools reach them. An Arakoon cluster
//! spans nodes — its master depends on every member, and the restart hook run on one node
//! restarts members on others — so a tool must read (and the hook change) other nodes'
//! state. The peers of a node are the state files beside its own: `<dir>/<name>.json` (the
//! in-process cluster directory, and on the SSH test bed the one directory every node's
//! `OVS_SIM_STATE` points into; the nodes' files stay on their own filesystems). A member id
//! is mapped to a node by the peers' machine ids.
//!
//! Locking: every read or change takes one node's lock for its own duration only. A tool
//! that reaches peers holds no lock meanwhile (not even its own node's), so no two locks are
//! ever held together and no order of nodes can deadlock.

use std::path::{Path, PathBuf};

use super::cluster::LAYOUT_FILE;
use super::error::SimError;
use super::seed;
use super::state::NodeState;
use super::store::Store;

/// The nodes whose state files share a directory.
#[derive(Debug, Clone)]
pub struct Peers {
    dir: PathBuf,
}

impl Peers {
    /// The peers of the node whose state file is `state_path` (that node included).
    pub fn beside(state_path: &Path) -> Peers {
        let dir = state_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Peers {
            dir: dir.to_path_buf(),
        }
    }

    /// Every node name (state file stem), sorted.
    pub fn names(&self) -> Result<Vec<String>, SimError> {
        let io = |source| SimError::Io {
            path: self.dir.clone(),
            action: "list the peer nodes",
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".json")
                && name != LAYOUT_FILE
            {
                names.push(stem.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The store of peer `name`.
    pub fn store(&self, name: &str) -> Store {
        Store::new(self.dir.join(format!("{name}.json")))
    }

    /// Peer `name`'s state (under its lock, briefly).
    pub fn read(&self, name: &str) -> Result<NodeState, SimError> {
        self.store(name).read()
    }

    /// Changes peer `name`'s state under its lock.
    pub fn update<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut NodeState) -> R,
    ) -> Result<R, SimError> {
        self.store(name).update(f)
    }

    /// The peer whose machine id is `id`, with its state. Nodes whose name yields that id
    /// are tried first (ids derive from names), then every peer.
    pub fn by_id(&self, id: &str) -> Result<Option<(String, NodeState)>, SimError> {
        let names = self.names()?;
        let (likely, rest): (Vec<&String>, Vec<&String>) =
            names.iter().partition(|n| seed::machine_id(n) == id);
        for name in likely.into_iter().chain(rest) {
            let state = self.read(name)?;
            if state.machine_id.as_deref() == Some(id) {
                return Ok(Some((name.clone(), state)));
            }
        }
        Ok(None)
    }

    /// The storage node (one with a machine id) whose backplane1 address is `ip`.
    pub fn by_address(&self, ip: &str) -> Result<Option<String>, SimError> {
        for name in self.names()? {
            let state = self.read(&name)?;
            if state.machine_id.is_some() && state.backplane_ip() == Some(ip) {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }
}
