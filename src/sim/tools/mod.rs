//! The simulated tools, one file per tool family, and the dispatcher that picks one by the
//! command's name. Every tool is a function of the node's state (under the node's lock), its
//! filesystem and the wall clock, returning exactly what the real tool prints and exits with.
//! The two that span nodes — `arakoon` and the `arakoon-restart.py` hook — are called by
//! [`crate::sim::SimNode`] outside the lock instead, and reach the other nodes through
//! [`crate::sim::peers`].

pub mod apt;
pub mod apt_cache;
pub mod arakoon;
pub mod ays;
pub mod coreutils;
pub mod df;
pub mod dpkg;
pub mod fuser;
pub mod ip;
pub mod python;
pub mod restart_hook;
pub mod stat;
pub mod systemd;
pub mod sysv;
pub mod upstart;
pub mod virsh;

use super::SimOutput;
use super::fs::Fs;
use super::state::{Init, NodeState};

/// What a tool runs against: the node's state, its filesystem and the time of the command.
pub struct Ctx<'a> {
    /// The node's state (locked for the duration of the command).
    pub state: &'a mut NodeState,
    /// The node's filesystem.
    pub fs: &'a dyn Fs,
    /// Wall-clock time of the command, ms since the epoch.
    pub now_ms: u64,
}

/// The last path component of a command name (`/etc/init.d/memcached` → `memcached`).
pub fn basename(cmd: &str) -> &str {
    cmd.rsplit('/').next().unwrap_or(cmd)
}

/// The command line of `argv`, quoted for a POSIX shell.
pub fn join(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// Runs one simple command (already split, assignments removed) on the node.
pub fn dispatch(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let Some(cmd) = argv.first() else {
        return SimOutput::ok("");
    };
    let args = &argv[1..];
    let init = ctx.state.init;
    match (basename(cmd), init) {
        ("apt-get", _) => apt::apt_get(ctx, argv),
        ("apt-cache", _) => apt_cache::run(ctx, argv),
        ("dpkg-query", _) => dpkg::query(ctx, argv),
        ("dpkg", _) => dpkg::run(ctx, argv),
        ("df", _) => df::run(ctx, argv),
        ("stat", _) => stat::run(ctx, argv),
        ("initctl" | "start" | "stop" | "status" | "restart", Init::Upstart) => {
            upstart::run(ctx, argv)
        }
        ("systemctl", Init::Systemd) => systemd::run(ctx, argv),
        ("initctl" | "start" | "stop" | "status" | "restart" | "systemctl", _) => {
            SimOutput::fail(127, format!("sh: 1: {cmd}: not found\n"))
        }
        ("memcached", _) if cmd == "/etc/init.d/memcached" => sysv::memcached(ctx, argv, args),
        ("service", _) if args.first().map(String::as_str) == Some("memcached") => {
            sysv::memcached(ctx, argv, &args[1..])
        }
        ("virsh", _) => virsh::run(ctx, argv),
        ("fuser", _) => fuser::run(ctx, argv),
        ("ays", _) => ays::run(ctx, argv),
        ("ip", _) => ip::run(ctx, argv),
        ("python" | "python2" | "python2.7", _) => python::run(ctx, argv),
        (name, _) if coreutils::handles(name) => coreutils::run(ctx, argv),
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for the tools' unit tests: an in-process node from a seed, a cluster directory.
    use std::path::{Path, PathBuf};

    use crate::sim::layout::Layout;
    use crate::sim::state::{AptVariant, Init, NodeState, now_ms};
    use crate::sim::{SimNode, SimOutput, cluster, seed};

    /// A one-node legacy layout whose node has this init system and apt.
    pub fn layout1(init: Init, apt: AptVariant) -> Layout {
        let mut l = Layout::uniform(1);
        l.nodes[0].init = init;
        l.nodes[0].apt = apt;
        l
    }

    /// A seeded virtual node in a temp dir (the dir lives as long as the returned guard).
    pub fn node(init: Init, apt: AptVariant) -> (tempfile::TempDir, SimNode) {
        node_from(seed::storage_node(&layout1(init, apt), 0, now_ms()).expect("seed"))
    }

    /// A virtual node with this state.
    pub fn node_from(state: NodeState) -> (tempfile::TempDir, SimNode) {
        let dir = tempfile::tempdir().expect("tempdir");
        let node =
            SimNode::create_virtual(dir.path().join("state.json"), &state).expect("create node");
        (dir, node)
    }

    /// An in-process cluster directory seeded with `layout`.
    pub fn cluster_of(layout: &Layout) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("sim");
        cluster::ensure(&d, layout).expect("seed the cluster");
        (dir, d)
    }

    /// Node `name` of a cluster directory.
    pub fn open(dir: &Path, name: &str) -> SimNode {
        SimNode::open_virtual(cluster::state_file(dir, name)).expect("open node")
    }

    /// Runs a line without deadline.
    pub fn run(node: &SimNode, line: &str) -> SimOutput {
        node.run_line(line, None)
    }
}
