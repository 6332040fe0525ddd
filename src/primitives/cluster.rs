//! The environment's "online"/"offline" state: whether the cloud agent listens on 4446/tcp
//! on each node. Offline (the agent killed) keeps the cloud controller from creating, moving or
//! deleting VMs during an upgrade; online restarts it.
//!
//! Unlike the legacy script, going offline is verified (the port is read again until nothing
//! listens), and [`require_offline`] lets a runbook refuse a dangerous step while any node is
//! still online.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, PerNode};
use crate::inventory::Node;
use crate::primitives::parse::fuser;
use crate::report::{Event, Level};
use crate::wait::{Probe, Waited};

/// The port the cloud agent listens on.
pub const AGENT_PORT: &str = "4446/tcp";

/// Reads who listens on the agent's port (exit 1: nobody, offline).
pub const QUERY: &str = "fuser 4446/tcp";

/// Kills whoever listens on the agent's port (exit 1: nobody listened).
pub const KILL: &str = "fuser -k 4446/tcp";

/// Starts the cloud agent.
pub const START_AGENT: &str = "ays start -n jsagent";

/// How often the port is read again while waiting.
pub const POLL: Duration = Duration::from_secs(1);

/// How long the killed agent may take to release the port.
pub const OFFLINE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the started agent may take to listen.
pub const ONLINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The pids listening on 4446/tcp on one node (empty: offline). Read-only.
pub async fn listeners(host: &Host, node: &Node) -> Result<Vec<u32>> {
    let out = host.exec(node, QUERY, Effect::Read, None).await?;
    fuser::listeners(&node.name, QUERY, &out)
}

/// Whether each node is offline (nothing listens on 4446/tcp). Read-only; every node is read.
pub async fn is_offline(host: &Host, nodes: &[Node]) -> PerNode<bool> {
    host.fan_out(QUERY, nodes, OnFailure::Continue, |node| async move {
        Ok(listeners(host, &node).await?.is_empty())
    })
    .await
}

/// Take each node offline: `fuser -k 4446/tcp` where something listens, then read the port
/// again until nothing does (up to [`OFFLINE_TIMEOUT`]). Returns per node whether it was
/// online (true: the agent was killed). A node still online fails. A failed node stops the
/// nodes not yet started. In a dry run the kill is only printed and not verified.
pub async fn set_offline(host: &Host, nodes: &[Node]) -> PerNode<bool> {
    host.fan_out(KILL, nodes, OnFailure::Stop, |node| async move {
        if listeners(host, &node).await?.is_empty() {
            return Ok(false);
        }
        let out = host.exec(&node, KILL, Effect::Change, None).await?;
        if host.dry_run {
            return Ok(true);
        }
        // Exit 1: nothing listened any more, which is what we want.
        fuser::listeners(&node.name, KILL, &out)?;
        let waited = host
            .poll_until(OFFLINE_TIMEOUT, POLL, async || {
                let pids = listeners(host, &node).await?;
                Ok(if pids.is_empty() {
                    Probe::Done(())
                } else {
                    Probe::NotYet(pids)
                })
            })
            .await?;
        match waited {
            Waited::Done(()) => Ok(true),
            Waited::Expired(pids) => {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                Err(Error::node_state(
                    &node.name,
                    format!(
                        "still online: pid {} listens on {AGENT_PORT} {} s after `{KILL}` \
                         (is something restarting the agent?)",
                        pids.join(", "),
                        OFFLINE_TIMEOUT.as_secs()
                    ),
                ))
            }
        }
    })
    .await
}

/// Bring each node online: `ays start -n jsagent` where nothing listens on 4446/tcp, then
/// wait (up to [`ONLINE_TIMEOUT`]) until the agent listens. Returns per node whether it was
/// offline (true: the agent was started). Every node is tried even when another fails. In a
/// dry run the start is only printed and not waited for.
pub async fn set_online(host: &Host, nodes: &[Node]) -> PerNode<bool> {
    host.fan_out(START_AGENT, nodes, OnFailure::Continue, |node| async move {
        if !listeners(host, &node).await?.is_empty() {
            return Ok(false);
        }
        host.exec_ok(&node, START_AGENT, Effect::Change, None)
            .await?;
        if host.dry_run {
            return Ok(true);
        }
        let waited = host
            .poll_until(ONLINE_TIMEOUT, POLL, async || {
                Ok(if listeners(host, &node).await?.is_empty() {
                    Probe::NotYet(())
                } else {
                    Probe::Done(())
                })
            })
            .await?;
        match waited {
            Waited::Done(()) => Ok(true),
            Waited::Expired(()) => Err(Error::node_state(
                &node.name,
                format!(
                    "still offline: nothing listens on {AGENT_PORT} {} s after `{START_AGENT}`",
                    ONLINE_TIMEOUT.as_secs()
                ),
            )),
        }
    })
    .await
}

/// Refuse ([`Error::Refused`], exit 3) unless every node is offline, naming every node still
/// online. A node that cannot be read fails (it is not known to be offline). In a dry run an
/// online node is only warned about (the dry run's own `set_offline` changed nothing).
pub async fn require_offline(host: &Host, nodes: &[Node]) -> Result<()> {
    let states = crate::host::all_ok(is_offline(host, nodes).await)?;
    let online: Vec<&str> = states
        .iter()
        .filter(|(_, offline)| !offline)
        .map(|(n, _)| n.as_str())
        .collect();
    if online.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{} still online (the cloud agent listens on {AGENT_PORT}): {}; run `ovsup preprocess` \
         (or set_offline(nodes)) first",
        if online.len() == 1 { "node" } else { "nodes" },
        online.join(", ")
    );
    if host.dry_run {
        host.report(Event::Log {
            level: Level::Warn,
            message: format!("dry run: would refuse: {message}"),
        });
        return Ok(());
    }
    Err(Error::Refused(message))
}
