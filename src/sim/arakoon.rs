//! Arakoon clusters as the simulator models them: the INI config every storage node holds
//! for every cluster (`/opt/OpenvStorage/config/arakoon/<c>/<c>.cfg`, members named by
//! machine id), and the election rule that decides the master from the member nodes' jobs.
//!
//! A cluster has a master exactly when a majority of its members run, no running member
//! started within the election window (an election follows every start, so a restart leaves
//! the cluster without master for a moment), and no `stalled_elections` fault names it. The
//! master is the running member with the longest uptime (ties: the lowest id).

use std::fmt::Write as _;

use super::error::SimError;
use super::layout::Layout;
use super::peers::Peers;
use super::seed;
use super::state::NodeState;

/// The Arakoon config directory: one subdirectory per cluster.
pub const CONFIG_DIR: &str = "/opt/OpenvStorage/config/arakoon";
/// The first client port; cluster `k` (in layout order) uses `26400 + 2k` and `+1`.
pub const BASE_PORT: u16 = 26400;

/// The config file of cluster `c`.
pub fn cfg_path(cluster: &str) -> String {
    format!("{CONFIG_DIR}/{cluster}/{cluster}.cfg")
}

/// The job that runs a member of cluster `c`.
pub fn job_name(cluster: &str) -> String {
    format!("ovs-arakoon-{cluster}")
}

/// The `[global]` keys, in the order the first cluster's config writes them.
const GLOBAL_KEYS: [&str; 4] = ["cluster", "cluster_id", "plugins", "tlog_max_entries"];
/// A member section's keys, in the order the first cluster's config writes them.
const MEMBER_KEYS: [&str; 11] = [
    "name",
    "ip",
    "client_port",
    "messaging_port",
    "home",
    "tlog_dir",
    "tlf_dir",
    "log_level",
    "log_sinks",
    "crash_log_sinks",
    "fsync",
];

/// `keys` rotated by `by` (so configs of different clusters order their keys differently).
fn rotated<'a>(keys: &[&'a str], by: usize) -> Vec<&'a str> {
    let mut v = keys.to_vec();
    let n = v.len();
    v.rotate_left(by % n);
    v
}

/// The config of cluster number `k` of the layout, identical on every storage node. Key
/// order varies between clusters, member sections are in `cluster =` order for even `k` and
/// sorted by id for odd `k`, and sections hold more keys than a parser needs.
pub fn render_cfg(layout: &Layout, k: usize) -> Option<String> {
    let c = layout.clusters.get(k)?;
    let ids: Vec<String> = c.members.iter().map(|m| seed::machine_id(m)).collect();
    let plugins = if c.name.ends_with("-abm") {
        "albamgr_plugin"
    } else if c.name.contains("-nsm_") {
        "nsm_host_plugin"
    } else {
        ""
    };
    let port = BASE_PORT + 2 * u16::try_from(k).unwrap_or(0);
    let mut out = String::from("[global]\n");
    for key in rotated(&GLOBAL_KEYS, k) {
        let value = match key {
            "cluster" => ids.join(","),
            "cluster_id" => c.name.clone(),
            "plugins" => plugins.to_owned(),
            _ => "5000".to_owned(),
        };
        // An empty value is written `plugins =`, as the contract shows.
        let _ = if value.is_empty() {
            writeln!(out, "{key} =")
        } else {
            writeln!(out, "{key} = {value}")
        };
    }
    let mut members: Vec<(&String, &String)> = ids.iter().zip(&c.members).collect();
    if k % 2 == 1 {
        members.sort();
    }
    let db = format!("/opt/OpenvStorage/db/arakoon/{}", c.name);
    for (id, node) in members {
        let ip = layout
            .node(node)
            .map(|(i, _)| seed::backplane_ip(i))
            .unwrap_or_default();
        let _ = writeln!(out, "\n[{id}]");
        for key in rotated(&MEMBER_KEYS, 3 * k) {
            let value = match key {
                "name" => id.clone(),
                "ip" => ip.clone(),
                "client_port" => port.to_string(),
                "messaging_port" => (port + 1).to_string(),
                "home" => format!("{db}/db"),
                "tlog_dir" => format!("{db}/tlogs"),
                "tlf_dir" => format!("{db}/tlf"),
                "log_level" => "info".to_owned(),
                "log_sinks" | "crash_log_sinks" => "console:".to_owned(),
                _ => "true".to_owned(),
            };
            let _ = writeln!(out, "{key} = {value}");
        }
    }
    Some(out)
}

/// One member of a parsed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's node id.
    pub id: String,
    /// Its `ip` (the member node's backplane address).
    pub ip: String,
}

/// The parts of a cluster config the simulated tools use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cfg {
    /// `cluster_id`.
    pub cluster_id: String,
    /// The members, in `cluster =` order.
    pub members: Vec<Member>,
}

/// Parses an Arakoon INI config (any key order, unknown keys ignored). The error is what
/// arakoon's OCaml exception would carry.
pub fn parse_cfg(text: &str) -> Result<Cfg, String> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_owned(), Vec::new()));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("bad config line: {line}"))?;
        let (_, keys) = sections
            .last_mut()
            .ok_or_else(|| format!("key outside a section: {line}"))?;
        keys.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    let get = |section: &str, key: &str| -> Option<String> {
        sections
            .iter()
            .find(|(s, _)| s == section)
            .and_then(|(_, keys)| keys.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.clone())
    };
    let cluster_id = get("global", "cluster_id").ok_or("no cluster_id in [global]")?;
    let ids = get("global", "cluster").ok_or("no cluster in [global]")?;
    let members = ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            let ip = get(id, "ip").ok_or_else(|| format!("no ip for node {id}"))?;
            Ok(Member {
                id: id.to_owned(),
                ip,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Cfg {
        cluster_id,
        members,
    })
}

/// What the simulator knows of one member now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member's node id.
    pub id: String,
    /// The node running it, when a peer has that id.
    pub node: Option<String>,
    /// Whether its job runs.
    pub running: bool,
    /// When its job last started (ms since the epoch).
    pub started_ms: u64,
}

/// A cluster as observed at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// Every member, in config order.
    pub members: Vec<MemberView>,
    /// Whether a `stalled_elections` fault names the cluster.
    pub stalled: bool,
    /// The election window (ms).
    pub election_ms: u64,
}

/// Who leads a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Election {
    /// This member id is master.
    Master(String),
    /// Some members answer, none is master (no majority, election running, stalled).
    NoMaster,
    /// No member answers at all.
    AllDown,
}

impl ClusterView {
    /// The number of members a majority needs.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// How many members run.
    pub fn running(&self) -> usize {
        self.members.iter().filter(|m| m.running).count()
    }

    /// The election's outcome at wall-clock time `now_ms`.
    pub fn election(&self, now_ms: u64) -> Election {
        let running: Vec<&MemberView> = self.members.iter().filter(|m| m.running).collect();
        if running.is_empty() {
            return Election::AllDown;
        }
        let settling = running
            .iter()
            .any(|m| now_ms.saturating_sub(m.started_ms) < self.election_ms);
        if running.len() < self.majority() || settling || self.stalled {
            return Election::NoMaster;
        }
        running
            .iter()
            .min_by(|a, b| a.started_ms.cmp(&b.started_ms).then(a.id.cmp(&b.id)))
            .map_or(Election::NoMaster, |m| Election::Master(m.id.clone()))
    }
}

/// Observes cluster `cfg` through the peers: each member's job on the node with its id,
/// the `stalled_elections` faults and election windows of the member nodes and of `own`
/// (the node asking). Locks one node at a time.
pub fn observe(cfg: &Cfg, peers: &Peers, own: &NodeState) -> Result<ClusterView, SimError> {
    let job = job_name(&cfg.cluster_id);
    let mut stalled = own.faults.stalled_elections.contains(&cfg.cluster_id);
    let mut election_ms = own.faults.election_ms();
    let mut members = Vec::with_capacity(cfg.members.len());
    for m in &cfg.members {
        let found = peers.by_id(&m.id)?;
        let (node, running, started_ms) = match &found {
            Some((name, state)) => {
                stalled |= state.faults.stalled_elections.contains(&cfg.cluster_id);
                election_ms = election_ms.max(state.faults.election_ms());
                let j = state.jobs.get(&job).filter(|j| j.running);
                (
                    Some(name.clone()),
                    j.is_some(),
                    j.map_or(0, |j| j.started_ms),
                )
            }
            None => (None, false, 0),
        };
        members.push(MemberView {
            id: m.id.clone(),
            node,
            running,
            started_ms,
        });
    }
    Ok(ClusterView {
        members,
        stalled,
        election_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(members: &[(&str, bool, u64)]) -> ClusterView {
        ClusterView {
            members: members
                .iter()
                .map(|(id, running, started_ms)| MemberView {
                    id: (*id).to_owned(),
                    node: None,
                    running: *running,
                    started_ms: *started_ms,
                })
                .collect(),
            stalled: false,
            election_ms: 500,
        }
    }

    #[test]
    fn elections() {
        let now = 1_000_000;
        let healthy = view(&[("b", true, 1000), ("a", true, 1000), ("c", true, 2000)]);
        assert_eq!(healthy.election(now), Election::Master("a".into()));
        let oldest = view(&[("b", true, 500), ("a", true, 1000), ("c", true, 2000)]);
        assert_eq!(oldest.election(now), Election::Master("b".into()));
        let just_restarted = view(&[("a", true, 1000), ("b", true, now - 100), ("c", true, 1)]);
        assert_eq!(just_restarted.election(now), Election::NoMaster);
        assert_eq!(
            just_restarted.election(now + 400),
            Election::Master("c".into())
        );
        let minority = view(&[("a", true, 1000), ("b", false, 0), ("c", false, 0)]);
        assert_eq!(minority.election(now), Election::NoMaster);
        let two_of_three = view(&[("a", false, 0), ("b", true, 9), ("c", true, 8)]);
        assert_eq!(two_of_three.election(now), Election::Master("c".into()));
        let down = view(&[("a", false, 0), ("b", false, 0)]);
        assert_eq!(down.election(now), Election::AllDown);
        let mut stalled = healthy.clone();
        stalled.stalled = true;
        assert_eq!(stalled.election(now), Election::NoMaster);
        // Two members: both are needed.
        let pair = view(&[("a", true, 1), ("b", false, 0)]);
        assert_eq!(pair.election(now), Election::NoMaster);
        assert_eq!(
            view(&[("a", true, 1)]).election(now),
            Election::Master("a".into())
        );
    }

    #[test]
    fn configs_parse_in_any_key_order() {
        let layout = Layout::default_for(3);
        let mut first_lines = std::collections::BTreeSet::new();
        for (k, c) in layout.clusters.iter().enumerate() {
            let text = render_cfg(&layout, k).expect("cluster");
            let cfg = parse_cfg(&text).expect("parse");
            assert_eq!(cfg.cluster_id, c.name);
            let ids: Vec<String> = c.members.iter().map(|m| seed::machine_id(m)).collect();
            assert_eq!(
                cfg.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
                ids
            );
            for (m, node) in cfg.members.iter().zip(&c.members) {
                let (i, _) = layout.node(node).expect("member");
                assert_eq!(m.ip, seed::backplane_ip(i));
            }
            first_lines.insert(text.lines().nth(1).unwrap_or("").to_owned());
        }
        assert!(
            first_lines.len() > 1,
            "key order never varies: {first_lines:?}"
        );
        let weird = "[global]\nplugins =\n cluster_id= x \ncluster = A ,B\n\n[B]\nip = 2\n[A]\nfoo = 1\nip=1\n";
        let cfg = parse_cfg(weird).expect("parse");
        assert_eq!(cfg.cluster_id, "x");
        assert_eq!(
            cfg.members,
            vec![
                Member {
                    id: "A".into(),
                    ip: "1".into()
                },
                Member {
                    id: "B".into(),
                    ip: "2".into()
                }
            ]
        );
        assert!(parse_cfg("[global]\ncluster = a\n").is_err());
    }
}
