//! `ovsup -i sim sim reset|show|fault`: reseed, inspect and break the built-in simulated
//! cluster, so that a runbook can be rehearsed (and its failure paths seen) before it touches a
//! real environment.

use crate::cli::{Global, SimAction};
use crate::error::{Error, Result};
use crate::inventory::{Backend, Inventory};
use crate::sim::SimNode;
use crate::sim::cluster;
use crate::sim::state::{AptVariant, DomState, NodeState, now_ms};

/// Run a `sim` subcommand.
pub fn run(g: &Global, inventory: &Inventory, action: &SimAction) -> Result<serde_json::Value> {
    if inventory.backend != Backend::Sim {
        return Err(Error::Usage(
            "`ovsup sim` works on the built-in simulated cluster: give -i sim or -i sim:N".into(),
        ));
    }
    let state_dir = crate::run::state_dir(g, inventory)?;
    crate::state::ensure_dir(&state_dir)?;
    let dir = crate::run::sim_dir(&state_dir);
    let storage = inventory.nodes.len() - cluster::CONTROLLERS.len();
    let sim_err = |e: crate::sim::error::SimError| Error::Usage(format!("simulated cluster: {e}"));
    match action {
        SimAction::Reset => {
            cluster::reset(&dir, storage).map_err(sim_err)?;
            Ok(serde_json::Value::String(format!(
                "simulated cluster reset: {storage} storage nodes and {} controllers in {}",
                cluster::CONTROLLERS.len(),
                dir.display()
            )))
        }
        SimAction::Show { node } => {
            cluster::ensure(&dir, storage).map_err(sim_err)?;
            let mut states = Vec::new();
            for n in &inventory.nodes {
                if node.as_ref().is_some_and(|want| want != &n.name) {
                    continue;
                }
                let sim =
                    SimNode::open_virtual(cluster::state_file(&dir, &n.name)).map_err(sim_err)?;
                states.push(sim.state().map_err(sim_err)?);
            }
            if let Some(want) = node
                && states.is_empty()
            {
                return Err(Error::Usage(format!("no simulated node named {want:?}")));
            }
            if g.json {
                let mut out = serde_json::Map::new();
                for mut s in states {
                    s.files.clear();
                    let name = s.name.clone();
                    out.insert(
                        name,
                        serde_json::to_value(&s).map_err(|e| Error::Internal(e.to_string()))?,
                    );
                }
                return Ok(serde_json::Value::Object(out));
            }
            Ok(serde_json::Value::String(
                states.iter().map(summary).collect::<Vec<_>>().join("\n"),
            ))
        }
        SimAction::Fault { node, key, value } => {
            cluster::ensure(&dir, storage).map_err(sim_err)?;
            if inventory.node(node).is_none() {
                return Err(Error::Usage(format!("no simulated node named {node:?}")));
            }
            let sim = SimNode::open_virtual(cluster::state_file(&dir, node)).map_err(sim_err)?;
            sim.update(|s| crate::sim::cli::set_fault(s, key, value))
                .map_err(sim_err)?
                .map_err(|e| Error::Usage(e.to_string()))?;
            Ok(serde_json::Value::String(format!(
                "{node}: {key} = {value}"
            )))
        }
    }
}

/// A few lines a person can read: kind, agent, jobs, VMs, pending updates.
fn summary(s: &NodeState) -> String {
    let running_jobs = s.jobs.values().filter(|j| j.running).count();
    let now = now_ms();
    let mut vms: Vec<String> = s
        .domains
        .keys()
        .map(|name| {
            let state = s
                .domain_state(name, now)
                .map_or("unknown", DomState::as_str);
            format!("{name} ({state})")
        })
        .collect();
    if vms.is_empty() {
        vms.push("none".into());
    }
    let pending: Vec<String> = s
        .packages
        .iter()
        .filter_map(|(name, p)| {
            let newest = p
                .repository
                .iter()
                .max_by(|a, b| crate::sim::version::compare(a, b))?;
            let installed = p.installed.as_deref()?;
            (crate::sim::version::compare(newest, installed).is_gt())
                .then(|| format!("{name} {installed} → {newest}"))
        })
        .collect();
    format!(
        "{} ({:?}, apt {}): agent {}, {running_jobs}/{} jobs running, memcached {}\n  VMs: {}\n  newer in the repository: {}",
        s.name,
        s.init,
        match s.apt_variant {
            AptVariant::V1_0 => "1.0",
            AptVariant::V1_2 => "1.2",
        },
        if s.agent_pid.is_some() {
            "up (online)"
        } else {
            "down (offline)"
        },
        s.jobs.len(),
        if s.memcached_running { "up" } else { "down" },
        vms.join(", "),
        if pending.is_empty() {
            "nothing".to_string()
        } else {
            pending.join(", ")
        },
    )
}
