//! A simulated node as a person reads it (`ovsup sim show`): its kind, the agent, jobs, VMs,
//! and what the repository holds newer than what is installed.

use super::state::{AptVariant, DomState, NodeState, now_ms};

/// A few lines a person can read: kind, agent, jobs, VMs, pending updates.
pub fn summary(s: &NodeState) -> String {
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
                .max_by(|a, b| super::version::compare(a, b))?;
            let installed = p.installed.as_deref()?;
            (super::version::compare(newest, installed).is_gt())
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
