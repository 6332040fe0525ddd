//! The cluster's topology, read from the nodes: which node is which (its Open vStorage id, its
//! backplane address), the Arakoon clusters and their members, which member runs and which is
//! master, and what each node serves (vpools, ALBA backends). Nodes are not alike: clusters
//! run on subsets of nodes, a node serves some vpools and not others, and "the first node" is
//! only where the legacy script happened to look. Everything here is read-only (it runs in a
//! dry run too); what does not change during a run (ids, addresses, the clusters' configs) is
//! read once per run.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, PerNode, all_ok};
use crate::inventory::Node;
use crate::primitives::parse::{arakoon, health};
use crate::primitives::services;
use crate::quote;

/// Where every storage node keeps the config of every Arakoon cluster of the environment.
pub const ARAKOON_CONFIG_DIR: &str = "/opt/OpenvStorage/config/arakoon";

/// The file holding a node's Open vStorage id.
pub const OVS_ID_FILE: &str = "/etc/openvstorage_id";

/// The interface of the storage backplane.
pub const BACKPLANE: &str = "backplane1";

/// The config file of cluster `name`.
pub fn config_path(name: &str) -> String {
    format!("{ARAKOON_CONFIG_DIR}/{name}/{name}.cfg")
}

/// The job that runs a member of cluster `name`.
pub fn member_job(name: &str) -> String {
    format!("ovs-arakoon-{name}")
}

/// A node's Open vStorage id (`cat /etc/openvstorage_id`: 16 characters), once per run.
pub async fn ovs_id(host: &Host, node: &Node) -> Result<String> {
    host.once(&format!("ovs_id/{}", node.name), async {
        let line = quote::join(&["cat", OVS_ID_FILE])?;
        let out = host.exec_ok(node, &line, Effect::Read, None).await?;
        let id = out.stdout.trim();
        if id.len() != 16 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::Unexpected {
                node: node.name.clone(),
                command: line,
                line: id.to_string(),
                message: "an Open vStorage id of 16 letters and digits".into(),
            });
        }
        Ok(id.to_string())
    })
    .await
}

/// A node's backplane address (`ip -4 -o addr show dev backplane1`), once per run; `None`
/// when the interface has no IPv4 address.
pub async fn backplane_ip(host: &Host, node: &Node) -> Result<Option<Ipv4Addr>> {
    host.once(&format!("backplane/{}", node.name), async {
        let line = quote::join(&["ip", "-4", "-o", "addr", "show", "dev", BACKPLANE])?;
        let out = host.exec_ok(node, &line, Effect::Read, None).await?;
        health::ipv4(&out.stdout, &node.name, &line)
    })
    .await
}

/// One member of an Arakoon cluster, and the inventory node it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id (its node's Open vStorage id).
    pub id: String,
    /// The inventory node that runs it (matched by id, else by backplane address), if any.
    pub node: Option<String>,
    /// Its address.
    pub ip: String,
    /// Its client port.
    pub client_port: u16,
}

/// An Arakoon cluster as its config describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its name (`ovsdb`, `mybackend-nsm_0`).
    pub name: String,
    /// Its members, in the config's order.
    pub members: Vec<Member>,
}

impl Cluster {
    /// The inventory nodes that run a member.
    pub fn member_nodes(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter_map(|m| m.node.as_deref())
            .collect()
    }

    /// How many members make a majority.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }
}

/// The environment's Arakoon clusters, once per run: their names from one storage node's
/// config directory and their configs from the same node (every storage node holds every
/// cluster's config), each member matched to an inventory node by id or backplane address.
/// The first of `nodes` that answers is read.
pub async fn clusters(host: &Host, nodes: &[Node]) -> Result<Vec<Cluster>> {
    host.once("arakoon/clusters", async {
        let reader = config_reader(host, nodes).await?;
        let line = quote::join(&["ls", ARAKOON_CONFIG_DIR])?;
        let out = host.exec_ok(&reader, &line, Effect::Read, None).await?;
        let ids = node_ids(host).await?;
        let mut found = Vec::new();
        for name in out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let file = config_path(name);
            let text = host.read_file(&reader, &file).await?;
            let cfg = arakoon::config(&String::from_utf8_lossy(&text), &reader.name, &file)?;
            let members = cfg
                .members
                .into_iter()
                .map(|m| Member {
                    node: ids
                        .iter()
                        .find(|(_, (id, ip))| *id == m.id || ip.as_deref() == Some(m.ip.as_str()))
                        .map(|(n, _)| n.clone()),
                    id: m.id,
                    ip: m.ip,
                    client_port: m.client_port,
                })
                .collect();
            found.push(Cluster {
                name: name.to_string(),
                members,
            });
        }
        Ok(found)
    })
    .await
}

/// The node to read the clusters' configs from: the first of `nodes` whose config directory
/// can be listed.
async fn config_reader(host: &Host, nodes: &[Node]) -> Result<Node> {
    let mut last = None;
    for node in nodes {
        let line = quote::join(&["test", "-d", ARAKOON_CONFIG_DIR])?;
        match host.exec(node, &line, Effect::Read, None).await {
            Ok(out) if out.code == 0 => return Ok(node.clone()),
            Ok(_) => {}
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::node_state(
            nodes.first().map_or("(none)", |n| n.name.as_str()),
            format!("no target node has the Arakoon config directory {ARAKOON_CONFIG_DIR}"),
        )
    }))
}

/// The id and backplane address of every storage node of the inventory (the cluster spans
/// nodes beyond `--limit`), read in parallel; a node that cannot be read is left out.
async fn node_ids(host: &Host) -> Result<BTreeMap<String, (String, Option<String>)>> {
    let nodes: Vec<Node> = host.inventory.targets(None, None).cloned().collect();
    let read = host
        .fan_out("node ids", &nodes, OnFailure::Continue, |node| async move {
            let id = ovs_id(host, &node).await?;
            let ip = backplane_ip(host, &node).await?.map(|a| a.to_string());
            Ok((id, ip))
        })
        .await;
    let mut ids = BTreeMap::new();
    for (name, r) in read {
        match r {
            Ok(v) => {
                ids.insert(name, v);
            }
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(_) => {}
        }
    }
    Ok(ids)
}

/// A member's state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    /// The member.
    pub member: Member,
    /// Whether its job runs (for a member on no inventory node: whether it answers
    /// `arakoon --node-state`).
    pub running: bool,
    /// Its job's main pid, when it runs on an inventory node.
    pub pid: Option<u32>,
}

/// A cluster's state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// The cluster.
    pub cluster: Cluster,
    /// Its members' states.
    pub members: Vec<MemberState>,
    /// The master's id (`arakoon --who-master`), if it has one.
    pub master: Option<String>,
    /// Why it has none.
    pub no_master: Option<arakoon::NoMaster>,
}

impl ClusterState {
    /// The members that do not run.
    pub fn down(&self) -> Vec<&MemberState> {
        self.members.iter().filter(|m| !m.running).collect()
    }

    /// The inventory node of the master.
    pub fn master_node(&self) -> Option<&str> {
        let id = self.master.as_deref()?;
        self.cluster
            .members
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.node.as_deref())
    }

    /// Whether a restart may go on: a master, and every member running (a restart with a
    /// member down can lose the majority).
    pub fn healthy(&self) -> bool {
        self.master.is_some() && self.down().is_empty()
    }

    /// A failure of the cluster, named after its first member node (the cluster spans nodes;
    /// the message names the cluster and every member concerned).
    pub fn error(&self, message: String) -> Error {
        let node = self
            .cluster
            .member_nodes()
            .first()
            .copied()
            .unwrap_or("(no member in the inventory)");
        Error::node_state(node, message)
    }

    /// What is wrong, as people read it (empty when healthy).
    pub fn problems(&self) -> String {
        let mut out = Vec::new();
        if let Some(why) = &self.no_master {
            out.push(why.as_str().to_string());
        }
        let down: Vec<String> = self
            .down()
            .iter()
            .map(|m| {
                format!(
                    "member {} on {} does not run",
                    m.member.id,
                    m.member
                        .node
                        .as_deref()
                        .unwrap_or("a node outside the inventory")
                )
            })
            .collect();
        out.extend(down);
        out.join("; ")
    }
}

/// Read `cluster`'s state now: its members' jobs on their nodes (status and pid), and its
/// master, asked of a member node (else any of `nodes`).
pub async fn state(host: &Host, cluster: &Cluster, nodes: &[Node]) -> Result<ClusterState> {
    let job = member_job(&cluster.name);
    let mut members = Vec::new();
    for m in &cluster.members {
        let node = m.node.as_deref().and_then(|n| host.inventory.node(n));
        let (running, pid) = match node {
            Some(node) => match services::status_on(host, node, &job).await? {
                Some(s) => (s.running, s.pid),
                None => (false, None),
            },
            None => (node_state(host, cluster, nodes, &m.id).await?, None),
        };
        members.push(MemberState {
            member: m.clone(),
            running,
            pid,
        });
    }
    let asker = asker(host, cluster, nodes)?;
    let (master, no_master) = who_master(host, &asker, &cluster.name).await?;
    Ok(ClusterState {
        cluster: cluster.clone(),
        members,
        master,
        no_master,
    })
}

/// The node to ask about a cluster: a member node of the inventory, else the first of
/// `nodes` (every storage node has every cluster's config).
fn asker(host: &Host, cluster: &Cluster, nodes: &[Node]) -> Result<Node> {
    cluster
        .member_nodes()
        .into_iter()
        .find_map(|n| host.inventory.node(n))
        .or_else(|| nodes.first())
        .cloned()
        .ok_or_else(|| Error::argument(format!("no node to ask about cluster {}", cluster.name)))
}

/// `arakoon --who-master -config CFG` on `node`: the master's id, or why there is none.
pub async fn who_master(
    host: &Host,
    node: &Node,
    cluster: &str,
) -> Result<(Option<String>, Option<arakoon::NoMaster>)> {
    let cfg = config_path(cluster);
    let line = quote::join(&["arakoon", "--who-master", "-config", &cfg])?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    if out.code == 0 {
        return Ok((Some(arakoon::master(&out.stdout, &node.name, &line)?), None));
    }
    match arakoon::no_master(out.code, &out.stderr) {
        Some(why) => Ok((None, Some(why))),
        None => Err(crate::host::failed(&node.name, &line, &out)),
    }
}

/// Whether member `id` answers `arakoon --node-state` (for a member on no inventory node).
async fn node_state(host: &Host, cluster: &Cluster, nodes: &[Node], id: &str) -> Result<bool> {
    let asker = asker(host, cluster, nodes)?;
    let cfg = config_path(&cluster.name);
    let line = quote::join(&["arakoon", "--node-state", id, "-config", &cfg])?;
    let out = host.exec(&asker, &line, Effect::Read, None).await?;
    Ok(out.code == 0 && !out.stdout.trim().is_empty())
}

/// The state of every cluster named (all when `names` is empty), in parallel.
pub async fn states(host: &Host, nodes: &[Node], names: &[String]) -> Result<Vec<ClusterState>> {
    let all = clusters(host, nodes).await?;
    let wanted: Vec<&Cluster> = all
        .iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .collect();
    if let Some(unknown) = names.iter().find(|n| !all.iter().any(|c| &c.name == *n)) {
        let known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::argument(format!(
            "no Arakoon cluster named {unknown:?} (the environment has: {})",
            known.join(", ")
        )));
    }
    let read = futures_util::future::join_all(wanted.iter().map(|c| state(host, c, nodes))).await;
    read.into_iter().collect()
}

/// What a node serves: the vpools (its `ovs-volumedriver_<vpool>` and `ovs-albaproxy_<vpool>`
/// jobs), the ALBA backends it runs jobs for (`ovs-alba-maintenance_<b>`,
/// `ovs-alba-rebalancer_<b>`), the Arakoon clusters it runs a member of, and its ASDs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// vpool names.
    pub vpools: Vec<String>,
    /// ALBA backend names.
    pub backends: Vec<String>,
    /// Arakoon clusters with a member here.
    pub arakoon: Vec<String>,
    /// ALBA ASD jobs (`alba-asd-<id>`).
    pub asds: Vec<String>,
}

/// Each node's [`Roles`], from its job list (one `initctl list` / `systemctl list-units`).
pub async fn roles(host: &Host, nodes: &[Node]) -> PerNode<Roles> {
    host.fan_out("roles", nodes, OnFailure::Continue, |node| async move {
        let jobs = services::list_on(host, &node, "").await?;
        let mut r = Roles::default();
        for job in &jobs {
            let suffix = |p: &str| job.strip_prefix(p).map(str::to_string);
            if let Some(v) = suffix("ovs-volumedriver_").or_else(|| suffix("ovs-albaproxy_")) {
                push_unique(&mut r.vpools, v);
            } else if let Some(b) =
                suffix("ovs-alba-maintenance_").or_else(|| suffix("ovs-alba-rebalancer_"))
            {
                push_unique(&mut r.backends, b);
            } else if let Some(c) = suffix("ovs-arakoon-") {
                push_unique(&mut r.arakoon, c);
            } else if job.starts_with("alba-asd-") {
                r.asds.push(job.clone());
            }
        }
        Ok(r)
    })
    .await
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Every node's id, in parallel (read-only).
pub async fn ids(host: &Host, nodes: &[Node]) -> PerNode<String> {
    host.fan_out(OVS_ID_FILE, nodes, OnFailure::Continue, |node| async move {
        ovs_id(host, &node).await
    })
    .await
}

/// Every node's roles, or the first failure (for callers that need them all).
pub async fn all_roles(host: &Host, nodes: &[Node]) -> Result<BTreeMap<String, Roles>> {
    Ok(all_ok(roles(host, nodes).await)?.into_iter().collect())
}
