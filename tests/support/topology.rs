//! Where things run on a simulated cluster of any layout, and checks that things happened
//! there and nowhere else: each node's jobs and their pids (what a step restarted), what the
//! layout puts where (cluster members, vpools, backends, ASDs, addresses), and the calls of
//! the Arakoon restart hook among the commands nodes received or a dry run planned.

use std::collections::{BTreeMap, BTreeSet};

use ovsup::sim::layout::StorageNode;
use ovsup::sim::seed::{asd_id_list, backplane_ip};

use super::cluster::Cluster;

/// The hooks' directory on the nodes.
pub const SCRIPTS: &str = "/opt/code/git/0-complexity/openvcloud/scripts/ovs";

/// Every storage node's jobs and their pids; each job must run.
pub fn pids(c: &Cluster) -> BTreeMap<String, BTreeMap<String, u32>> {
    c.storage_names()
        .into_iter()
        .map(|n| {
            let jobs = c
                .state(&n)
                .jobs
                .into_iter()
                .map(|(j, job)| {
                    assert!(
                        job.running && job.pid != 0,
                        "{n}: {j} does not run: {job:?}"
                    );
                    (j, job.pid)
                })
                .collect();
            (n, jobs)
        })
        .collect()
}

/// The jobs (of every storage node) whose pid changed between two [`pids`].
pub fn restarted(
    before: &BTreeMap<String, BTreeMap<String, u32>>,
    after: &BTreeMap<String, BTreeMap<String, u32>>,
) -> BTreeMap<String, BTreeSet<String>> {
    before
        .iter()
        .map(|(n, jobs)| {
            let changed = jobs
                .iter()
                .filter(|(j, pid)| after[n].get(*j) != Some(pid))
                .map(|(j, _)| j.clone())
                .collect();
            (n.clone(), changed)
        })
        .collect()
}

/// Since `before` (from [`pids`]), exactly the member jobs of `clusters` got a new pid on each
/// storage node: on member nodes and nowhere else, and nothing besides. `what` names the step
/// in the failure.
pub fn assert_only_members_restarted(
    c: &Cluster,
    before: &BTreeMap<String, BTreeMap<String, u32>>,
    clusters: &[String],
    what: &str,
) {
    let moved = restarted(before, &pids(c));
    for node in c.storage_names() {
        assert_eq!(
            moved[&node],
            member_jobs(c, &node, clusters),
            "{what}: {node}: jobs with a new pid"
        );
    }
}

/// The names of the layout's Arakoon clusters that `keep` keeps, sorted.
pub fn cluster_names(c: &Cluster, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = c
        .layout()
        .clusters
        .iter()
        .map(|cl| cl.name.clone())
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

/// The nodes running a member of `cluster`.
pub fn member_nodes(c: &Cluster, cluster: &str) -> BTreeSet<String> {
    c.layout()
        .clusters
        .iter()
        .find(|cl| cl.name == cluster)
        .unwrap_or_else(|| panic!("no cluster {cluster} in the layout"))
        .members
        .iter()
        .cloned()
        .collect()
}

/// The member jobs `node` runs of `clusters`.
pub fn member_jobs(c: &Cluster, node: &str, clusters: &[String]) -> BTreeSet<String> {
    clusters
        .iter()
        .filter(|cl| member_nodes(c, cl).contains(node))
        .map(|cl| format!("ovs-arakoon-{cl}"))
        .collect()
}

/// A storage node of the layout, with its index.
pub fn layout_node<'a>(c: &'a Cluster, node: &str) -> (usize, &'a StorageNode) {
    c.layout()
        .node(node)
        .unwrap_or_else(|| panic!("no node {node} in the layout"))
}

/// The vpools `node` serves.
pub fn vpools(c: &Cluster, node: &str) -> Vec<String> {
    layout_node(c, node).1.vpools.clone()
}

/// The ALBA backends `node` runs maintenance and rebalancer jobs for.
pub fn backends(c: &Cluster, node: &str) -> Vec<String> {
    layout_node(c, node).1.backends.clone()
}

/// The ids of `node`'s ASDs.
pub fn asds(c: &Cluster, node: &str) -> Vec<String> {
    let (i, n) = layout_node(c, node);
    asd_id_list(i, n.asds)
}

/// `node`'s backplane address.
pub fn address(c: &Cluster, node: &str) -> String {
    backplane_ip(layout_node(c, node).0)
}

/// The names of each storage node's jobs.
pub fn job_names(c: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    c.storage_names()
        .into_iter()
        .map(|n| {
            let jobs = c.state(&n).jobs.into_keys().collect();
            (n, jobs)
        })
        .collect()
}

/// The commands nodes received (a map node → command lines) as (node, command).
pub fn sent_pairs(sent: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    sent.iter()
        .flat_map(|(n, lines)| lines.iter().map(move |l| (n.clone(), l.clone())))
        .collect()
}

/// The calls of the Arakoon restart hook among `lines`: per cluster, the node each ran on
/// and the address it was given.
pub fn hook_calls(lines: Vec<(String, String)>) -> BTreeMap<String, Vec<(String, String)>> {
    let hook = format!("{SCRIPTS}/arakoon-restart.py");
    let mut calls: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (node, line) in lines {
        let words = shlex::split(&line).unwrap_or_default();
        if let [python, h, c, cluster, a, address] = words.as_slice()
            && python == "python"
            && *h == hook
            && c == "--cluster"
            && a == "--address"
        {
            calls
                .entry(cluster.clone())
                .or_default()
                .push((node, address.clone()));
        }
    }
    calls
}

/// Exactly `clusters` were restarted by the hook, each once, on one of its member nodes and
/// with that node's own backplane address (never through a node that is no member).
pub fn assert_hooks_on_members(
    c: &Cluster,
    calls: &BTreeMap<String, Vec<(String, String)>>,
    clusters: &[String],
) {
    let named: Vec<&String> = calls.keys().collect();
    assert_eq!(
        named,
        clusters.iter().collect::<Vec<_>>(),
        "the clusters restarted: {calls:#?}"
    );
    for cluster in clusters {
        let members = member_nodes(c, cluster);
        match calls[cluster].as_slice() {
            [(node, ip)] => {
                assert!(
                    members.contains(node),
                    "{cluster}: the hook ran on {node}, which is no member ({members:?})"
                );
                assert_eq!(
                    ip,
                    &address(c, node),
                    "{cluster}: the address given on {node}"
                );
            }
            more => panic!("{cluster}: {} hook calls: {more:?}", more.len()),
        }
    }
}
