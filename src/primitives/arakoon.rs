//! Restarting an Arakoon cluster without losing it. Before: every member runs and the cluster
//! has a master, or the restart is refused — with a member down, restarting the others can
//! leave no majority. The restart itself is the OpenvCloud hook `arakoon-restart.py`, run on a
//! node holding the cluster's config (a member, with its backplane address), which restarts
//! the members on their nodes one at a time. After: on every member node the member runs with
//! a new pid, and the cluster has a master again, within a deadline — no fixed sleep (the
//! legacy script slept 40 s). A node that is not a member is neither waited on nor given a
//! member.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::{Effect, Host};
use crate::inventory::Node;
use crate::primitives::topology::{self, ClusterState};
use crate::quote;
use crate::report::{Event, Level};
use crate::wait::{Probe, Waited};

/// How long a restarted cluster may take to run every member again and elect a master.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a restarting cluster is looked at.
const POLL: Duration = Duration::from_secs(1);

/// The hook that restarts a cluster's members.
pub const HOOK: &str = "/opt/code/git/0-complexity/openvcloud/scripts/ovs/arakoon-restart.py";

/// Refuse (exit 3) unless every cluster of `names` (all when empty) has a master and runs
/// every member, naming each cluster, its members that are down and their nodes. With
/// `--force` it warns loudly instead. Read-only. Returns the clusters' states.
pub async fn require_healthy(
    host: &Host,
    nodes: &[Node],
    names: &[String],
) -> Result<Vec<ClusterState>> {
    let states = topology::states(host, nodes, names).await?;
    let sick = unhealthy(&states);
    if sick.is_empty() {
        return Ok(states);
    }
    let message = format!(
        "restarting would lose the quorum of {} Arakoon {} — {}; bring the members back \
         (or let the election finish) and run again",
        sick.len(),
        if sick.len() == 1 {
            "cluster"
        } else {
            "clusters"
        },
        sick.join("; ")
    );
    if host.force {
        host.report(Event::Log {
            level: Level::Warn,
            message: format!("--force: going on although {message}"),
        });
        return Ok(states);
    }
    Err(Error::Refused(message))
}

/// Wait (up to `timeout`) until every cluster of `names` (all when empty) has a master and
/// runs every member: after a step that stopped and started members itself (the framework's
/// ovsdb), so that the next step finds the cluster healthy rather than mid-election. Raises
/// naming each cluster still not healthy at the deadline and why. Read-only; a dry run
/// changed nothing, so it only looks once. Returns the clusters' states.
pub async fn wait_healthy(
    host: &Host,
    nodes: &[Node],
    names: &[String],
    timeout: Duration,
) -> Result<Vec<ClusterState>> {
    if host.dry_run {
        return topology::states(host, nodes, names).await;
    }
    let waited = host
        .poll_until(timeout, POLL, async || {
            let now = topology::states(host, nodes, names).await?;
            Ok(if now.iter().all(ClusterState::healthy) {
                Probe::Done(now)
            } else {
                Probe::NotYet(now)
            })
        })
        .await?;
    match waited {
        Waited::Done(now) => Ok(now),
        Waited::Expired(now) => {
            let message = format!(
                "Arakoon not healthy {} s after the members started: {}",
                timeout.as_secs(),
                unhealthy(&now).join("; ")
            );
            // Expired: at least one cluster is not healthy; the error goes to its first node.
            Err(match now.iter().find(|s| !s.healthy()) {
                Some(first) => first.error(message),
                None => Error::Internal(message),
            })
        }
    }
}

/// Each cluster of `states` that is not healthy, as `NAME: what is wrong`.
fn unhealthy(states: &[ClusterState]) -> Vec<String> {
    states
        .iter()
        .filter(|s| !s.healthy())
        .map(|s| format!("{}: {}", s.cluster.name, s.problems()))
        .collect()
}

/// What a restart did: the member pids before and after, by node, and the master after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// The cluster.
    pub cluster: String,
    /// Per member node: (pid before, pid after).
    pub members: BTreeMap<String, (Option<u32>, Option<u32>)>,
    /// The master's id afterwards.
    pub master: Option<String>,
    /// Its node.
    pub master_node: Option<String>,
}

/// Restart cluster `name` through its hook and wait (up to `timeout`) until every member
/// node runs its member with a new pid and the cluster has a master. A cluster that is not
/// healthy before is not restarted (unless `--force`). In a dry run the hook is only
/// printed.
pub async fn restart(
    host: &Host,
    nodes: &[Node],
    name: &str,
    timeout: Duration,
) -> Result<Restarted> {
    let before = topology::states(host, nodes, &[name.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::argument(format!("no Arakoon cluster named {name:?}")))?;
    if !before.healthy() && !host.force {
        return Err(before.error(format!(
            "not restarting Arakoon cluster {name}: {} (a restart would lose its quorum)",
            before.problems()
        )));
    }
    let through = hook_node(host, &before, nodes)?;
    let ip = topology::backplane_ip(host, &through)
        .await?
        .ok_or_else(|| {
            Error::node_state(
                &through.name,
                format!("no IPv4 address on {}", topology::BACKPLANE),
            )
        })?;
    let ip = ip.to_string();
    host.report(Event::Log {
        level: Level::Info,
        message: format!(
            "arakoon: restarting cluster {name} (members on {}) through {} ({ip})",
            before.cluster.member_nodes().join(", "),
            through.name
        ),
    });
    let line = quote::join(&["python", HOOK, "--cluster", name, "--address", &ip])?;
    host.exec_ok(&through, &line, Effect::Change, None).await?;
    let pids: BTreeMap<String, Option<u32>> = before
        .members
        .iter()
        .filter_map(|m| m.member.node.clone().map(|n| (n, m.pid)))
        .collect();
    if host.dry_run {
        return Ok(Restarted {
            cluster: name.to_string(),
            members: pids.into_iter().map(|(n, p)| (n, (p, p))).collect(),
            master: before.master.clone(),
            master_node: before.master_node().map(str::to_string),
        });
    }
    wait_restarted(host, nodes, &before, pids, timeout).await
}

/// The node to run the hook on: a member node of the inventory (else any target; every
/// storage node holds every cluster's config).
fn hook_node(host: &Host, state: &ClusterState, nodes: &[Node]) -> Result<Node> {
    state
        .cluster
        .member_nodes()
        .into_iter()
        .find_map(|n| {
            nodes
                .iter()
                .find(|t| t.name == n)
                .or_else(|| host.inventory.node(n))
        })
        .or_else(|| nodes.first())
        .cloned()
        .ok_or_else(|| {
            Error::argument(format!("no node to restart {} through", state.cluster.name))
        })
}

/// Wait until every member node runs its member with a pid other than `pids` says, and the
/// cluster has a master.
async fn wait_restarted(
    host: &Host,
    nodes: &[Node],
    before: &ClusterState,
    pids: BTreeMap<String, Option<u32>>,
    timeout: Duration,
) -> Result<Restarted> {
    let name = before.cluster.name.clone();
    let waited = host
        .poll_until(timeout, POLL, async || {
            let now = topology::state(host, &before.cluster, nodes).await?;
            let lagging: Vec<String> = now
                .members
                .iter()
                .filter(|m| {
                    let old = m
                        .member
                        .node
                        .as_ref()
                        .and_then(|n| pids.get(n))
                        .copied()
                        .flatten();
                    !m.running || (m.pid.is_some() && m.pid == old)
                })
                .map(|m| m.member.node.clone().unwrap_or_else(|| m.member.id.clone()))
                .collect();
            Ok(if lagging.is_empty() && now.master.is_some() {
                Probe::Done(now)
            } else {
                Probe::NotYet((now, lagging))
            })
        })
        .await?;
    match waited {
        Waited::Done(now) => Ok(Restarted {
            cluster: name,
            members: now
                .members
                .iter()
                .filter_map(|m| {
                    let node = m.member.node.clone()?;
                    let old = pids.get(&node).copied().flatten();
                    Some((node, (old, m.pid)))
                })
                .collect(),
            master_node: now.master_node().map(str::to_string),
            master: now.master,
        }),
        Waited::Expired((now, lagging)) => Err(before.error(format!(
            "Arakoon cluster {name} is not back {} s after its restart: {}{}",
            timeout.as_secs(),
            if lagging.is_empty() {
                String::new()
            } else {
                format!(
                    "members not running again with a new pid on {}; ",
                    lagging.join(", ")
                )
            },
            if now.master.is_some() {
                "it has a master".to_string()
            } else {
                format!(
                    "it has {}",
                    now.no_master.as_ref().map_or("no master", |w| w.as_str())
                )
            }
        ))),
    }
}
