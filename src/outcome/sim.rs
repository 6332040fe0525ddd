//! How `ovsup sim capture NAME` and `ovsup sim list` render: what a capture read and wrote
//! (per node, the Arakoon clusters, what the simulator could not represent), and the
//! simulated clusters there are; both as text and as `--json` values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::sim::capture::{ClusterEntry, Manifest};
use crate::sim::layout::Layout;
use crate::sim::state::{AptVariant, DomState, NodeState, now_ms};

/// What a capture produced ([`super::Outcome::Captured`]).
#[derive(Debug)]
pub struct Captured {
    /// The manifest written (or, in a dry run, that would be).
    pub manifest: Manifest,
    /// The replica's layout.
    pub layout: Layout,
    /// Every node's state.
    pub states: Vec<NodeState>,
    /// Each Arakoon cluster's master id, as read.
    pub masters: BTreeMap<String, String>,
    /// The replica's state directory.
    pub dir: PathBuf,
    /// Nothing was written.
    pub dry_run: bool,
}

fn apt(a: AptVariant) -> &'static str {
    match a {
        AptVariant::V1_0 => "1.0",
        AptVariant::V1_2 => "1.2",
    }
}

fn init(s: &NodeState) -> &'static str {
    match s.init {
        crate::sim::state::Init::Upstart => "upstart",
        crate::sim::state::Init::Systemd => "systemd",
    }
}

impl Captured {
    fn storage(&self) -> impl Iterator<Item = &NodeState> {
        self.states
            .iter()
            .filter(|s| self.layout.node(&s.name).is_some())
    }

    fn master_node(&self, cluster: &str) -> Option<&str> {
        let id = self.masters.get(cluster)?;
        self.states
            .iter()
            .find(|s| s.machine_id.as_deref() == Some(id.as_str()))
            .map(|s| s.name.as_str())
    }

    /// The `--json` value.
    pub fn to_json(&self) -> Value {
        let now = now_ms();
        let nodes: serde_json::Map<String, Value> = self
            .storage()
            .map(|s| {
                let packages: serde_json::Map<String, Value> = s
                    .packages
                    .iter()
                    .map(|(n, p)| {
                        (
                            n.clone(),
                            json!({"installed": p.installed, "candidate": p.candidate,
                                   "status": p.status.word()}),
                        )
                    })
                    .collect();
                let jobs: serde_json::Map<String, Value> = s
                    .jobs
                    .iter()
                    .map(|(n, j)| (n.clone(), j.running.into()))
                    .collect();
                let vms: serde_json::Map<String, Value> = s
                    .domains
                    .keys()
                    .map(|d| {
                        let state = s.domain_state(d, now).map_or("unknown", DomState::as_str);
                        (d.clone(), state.into())
                    })
                    .collect();
                let v = json!({
                    "init": init(s),
                    "apt": apt(s.apt_variant),
                    "machine_id": s.machine_id,
                    "backplane1": s.backplane1,
                    "agent": s.agent_pid.is_some(),
                    "packages": packages,
                    "jobs": jobs,
                    "vms": vms,
                });
                (s.name.clone(), v)
            })
            .collect();
        let clusters: Vec<Value> = self
            .layout
            .clusters
            .iter()
            .map(|c| {
                json!({"name": c.name, "member_nodes": c.members,
                       "master_node": self.master_node(&c.name)})
            })
            .collect();
        let m = &self.manifest;
        json!({
            "name": m.name,
            "spec": format!("sim:{}", m.name),
            "dir": self.dir.display().to_string(),
            "dry_run": self.dry_run,
            "captured_at": m.captured_at,
            "environment": m.environment,
            "inventory": m.inventory,
            "nodes": nodes,
            "controllers": m.controllers,
            "clusters": clusters,
            "notes": m.notes,
        })
    }

    /// The text people read.
    pub fn to_text(&self) -> String {
        let m = &self.manifest;
        let now = now_ms();
        let mut out = format!(
            "{} {} into sim:{} ({}) at {}: {} storage nodes, {} controllers (not read: empty \
             controller instances)",
            if self.dry_run {
                "dry run: nothing written; would capture"
            } else {
                "captured"
            },
            m.environment,
            m.name,
            self.dir.display(),
            m.captured_at,
            m.storage_nodes.len(),
            m.controllers.len()
        );
        for s in self.storage() {
            let running = s.jobs.values().filter(|j| j.running).count();
            let vms_running = s
                .domains
                .keys()
                .filter(|d| s.domain_state(d, now).is_some_and(DomState::is_active))
                .count();
            let newer = s
                .packages
                .values()
                .filter(|p| {
                    p.candidate.is_some()
                        && p.apt_installed().is_some()
                        && p.candidate != p.installed
                })
                .count();
            out.push_str(&format!(
                "\n  {}: {}, apt {}, agent {}, {running}/{} jobs running, {vms_running}/{} VMs \
                 running, {} packages ({newer} with another candidate)",
                s.name,
                init(s),
                apt(s.apt_variant),
                if s.agent_pid.is_some() { "up" } else { "down" },
                s.jobs.len(),
                s.domains.len(),
                s.packages.len()
            ));
        }
        for c in &self.layout.clusters {
            out.push_str(&format!(
                "\n  Arakoon {}: members on {}; master {}",
                c.name,
                c.members.join(", "),
                self.master_node(&c.name).unwrap_or("none")
            ));
        }
        if m.notes.is_empty() {
            out.push_str("\nthe simulator represents everything that was read");
        } else {
            out.push_str("\nnot represented as read (docs/capture.md):");
            for n in &m.notes {
                out.push_str(&format!("\n  - {n}"));
            }
        }
        if !self.dry_run {
            out.push_str(&format!(
                "\nrehearse with `ovsup -i sim:{name} check` (same node names); `ovsup -i \
                 sim:{name} sim reset` restores the capture",
                name = m.name
            ));
        }
        out
    }
}

/// `sim list --json`: one object per cluster.
pub fn list_json(found: &[ClusterEntry]) -> Value {
    found
        .iter()
        .map(|c| {
            json!({
                "spec": c.spec,
                "dir": c.dir.display().to_string(),
                "storage_nodes": c.layout.storage_names(),
                "controllers": c.layout.controllers,
                "captured": c.captured.as_ref().map(|m| json!({
                    "captured_at": m.captured_at,
                    "environment": m.environment,
                    "inventory": m.inventory,
                    "notes": m.notes.len(),
                })),
            })
        })
        .collect()
}

/// `sim list`: a line per cluster.
pub fn list_text(base: &Path, found: &[ClusterEntry]) -> String {
    if found.is_empty() {
        return format!(
            "no simulated cluster in {} yet: `ovsup -i sim sim reset` seeds the built-in one, \
             `ovsup -i INVENTORY sim capture NAME` replicates an environment",
            base.display()
        );
    }
    let width = found.iter().map(|c| c.spec.len()).max().unwrap_or(0);
    found
        .iter()
        .map(|c| {
            let what = match &c.captured {
                Some(m) => format!("captured {} from {}", m.captured_at, m.environment),
                None => "built-in".to_string(),
            };
            format!(
                "{:<width$}  {} storage nodes, {} controllers  {what}  {}",
                c.spec,
                c.layout.nodes.len(),
                c.layout.controllers.len(),
                c.dir.display()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
