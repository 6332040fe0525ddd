//! Which node runs what: the shape of a simulated Open vStorage environment. Real
//! environments are not alike — an Arakoon cluster lives on a subset of the nodes (1 to 5
//! members), a node serves zero or more vpools, ALBA maintenance runs where the backend's
//! operators put it, some nodes have no disks for ASDs — and a runbook that assumes "the
//! first node runs everything" must fail on the simulator as it would on a real cluster.
//!
//! A [`Layout`] is loaded from TOML (errors name `file:line:col` and what was expected),
//! built in ([`Layout::default_for`], realistic; [`Layout::uniform`], the legacy "everything
//! everywhere" shape), and stored as JSON beside the simulated nodes so later runs see the
//! same environment (see [`super::cluster`]). The format:
//!
//! ```toml
//! controllers = ["ovc_master", "ovc_proxy", "ovc_reflector", "ovc_dcpm"]  # optional
//!
//! [nodes.node-01]
//! init = "upstart"          # upstart | systemd
//! apt = "1.0"               # "1.0" | "1.2"
//! vpools = ["vpool1"]       # volume driver + ALBA proxy per vpool (default none)
//! backends = ["mybackend"]  # ALBA maintenance + rebalancer per backend (default none)
//! asds = 2                  # ALBA ASDs (default 0)
//! groups = ["storage"]      # inventory groups (default ["storage"])
//!
//! [clusters]                # Arakoon cluster = member nodes (1 to 5)
//! ovsdb = ["node-01", "node-02", "node-03"]
//! mybackend-abm = ["node-02"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::state::{AptVariant, Init};
use crate::error::Location;

/// The controller instances of an OpenvCloud environment (no Open vStorage on them).
pub const CONTROLLERS: [&str; 4] = ["ovc_master", "ovc_proxy", "ovc_reflector", "ovc_dcpm"];
/// The most members an Arakoon cluster may have.
pub const MAX_MEMBERS: usize = 5;
/// The most storage nodes a layout may have (each gets its own backplane address).
pub const MAX_STORAGE_NODES: usize = 240;
/// The most ASDs one node may have.
pub const MAX_ASDS: u32 = 64;
/// The ALBA backend of the built-in layouts.
pub const BACKEND: &str = "mybackend";
/// A name no node may have: the stored layout's file stem (`layout.json`).
pub const RESERVED_NAME: &str = "layout";
/// The 5-node example layout shipped with the simulator (`src/sim/layouts/five-nodes.toml`).
pub const FIVE_NODES_TOML: &str = include_str!("layouts/five-nodes.toml");

/// The whole environment: storage nodes, Arakoon clusters, controller instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Storage nodes, ordered by name; a node's position gives its addresses.
    pub nodes: Vec<StorageNode>,
    /// Arakoon clusters, ordered by name.
    pub clusters: Vec<ArakoonCluster>,
    /// Controller instances (no Open vStorage, never targeted).
    pub controllers: Vec<String>,
}

/// One storage node of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageNode {
    /// Node name (inventory name, state file stem).
    pub name: String,
    /// Init system.
    pub init: Init,
    /// apt generation.
    pub apt: AptVariant,
    /// The vpools it serves (a volume driver and an ALBA proxy each).
    pub vpools: Vec<String>,
    /// The ALBA backends it runs maintenance and rebalancer jobs for.
    pub backends: Vec<String>,
    /// How many ALBA ASDs it runs.
    pub asds: u32,
    /// Inventory groups.
    pub groups: Vec<String>,
}

/// One Arakoon cluster and the storage nodes running its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArakoonCluster {
    /// Cluster name (`ovsdb`, `voldrv`, `<backend>-abm`, `<backend>-nsm_<k>`).
    pub name: String,
    /// Member node names, in the order of the config's `cluster =` line.
    pub members: Vec<String>,
}

/// A layout file that cannot be used: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct LayoutError {
    /// File, line and column.
    pub location: Location,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// Where in a layout a problem is (mapped to a span for TOML files).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Where {
    Whole,
    Node(String),
    NodeList(String, &'static str, usize),
    Asds(String),
    Controller(usize),
    Cluster(String),
    Members(String),
    Member(String, usize),
}

/// The storage node name of index `i` (0-based) in the built-in layouts: `node-01`, …
pub fn storage_name(index: usize) -> String {
    format!("node-{:02}", index + 1)
}

/// The node kinds of an environment in mid-migration: upstart with apt 1.0, systemd with
/// apt 1.2, upstart with apt 1.2, then again.
pub fn node_kind(index: usize) -> (Init, AptVariant) {
    match index % 3 {
        0 => (Init::Upstart, AptVariant::V1_0),
        1 => (Init::Systemd, AptVariant::V1_2),
        _ => (Init::Upstart, AptVariant::V1_2),
    }
}

/// `size` consecutive node indices from `start`, wrapping around `n` nodes.
fn ring(n: usize, start: usize, size: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..size.min(n)).map(|i| (start + i) % n).collect();
    v.sort_unstable();
    v
}

fn names(idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| storage_name(i)).collect()
}

impl Layout {
    /// The realistic built-in layout of `-i sim:N` (N clamped to 1..=64): Arakoon clusters,
    /// vpools and ALBA jobs spread over different subsets, the first node a member of few
    /// clusters. For 3 nodes: `ovsdb` and `voldrv` on all three, `mybackend-abm` on node-02
    /// and node-03, `mybackend-nsm_0` on node-03, vpool1 on node-01 and node-02, vpool2 on
    /// node-02 and node-03, mybackend maintenance on node-02 and node-03, two ASDs on node-02
    /// and node-03 and none on node-01.
    pub fn default_for(n: usize) -> Layout {
        let n = n.clamp(1, 64);
        if n == 1 {
            return Layout::uniform(1);
        }
        let masters = if n >= 8 { 5 } else { 3 }.min(n);
        let abm = match n {
            2 => 1,
            3 => 2,
            4..=15 => 3,
            _ => 5,
        };
        let abm_nodes = ring(n, n - abm, abm);
        let nsm_size = match n {
            ..=3 => 1,
            4..=5 => 2,
            _ => 3,
        };
        let mut clusters = vec![
            ("ovsdb".to_owned(), ring(n, 0, masters)),
            (
                "voldrv".to_owned(),
                ring(n, if n > 3 { 1 } else { 0 }, masters),
            ),
            (format!("{BACKEND}-abm"), abm_nodes.clone()),
        ];
        for k in 0..(1 + n / 16) {
            let start = (2 * n - nsm_size - k * (nsm_size + 1)) % n;
            clusters.push((format!("{BACKEND}-nsm_{k}"), ring(n, start, nsm_size)));
        }
        let vpools = (2 + n / 8).min(10);
        let vpool_size = if n <= 3 { n - 1 } else { 3.max(n / vpools) };
        let stride = (n / vpools).max(1);
        let vpool_nodes: Vec<Vec<usize>> = (0..vpools)
            .map(|k| ring(n, k * stride, vpool_size))
            .collect();
        let nodes = (0..n)
            .map(|i| {
                let (init, apt) = node_kind(i);
                StorageNode {
                    name: storage_name(i),
                    init,
                    apt,
                    vpools: (0..vpools)
                        .filter(|k| vpool_nodes[*k].contains(&i))
                        .map(|k| format!("vpool{}", k + 1))
                        .collect(),
                    backends: if abm_nodes.contains(&i) {
                        vec![BACKEND.to_owned()]
                    } else {
                        Vec::new()
                    },
                    asds: if i % 3 == 0 { 0 } else { 2 },
                    groups: vec!["storage".to_owned()],
                }
            })
            .collect();
        let mut clusters: Vec<ArakoonCluster> = clusters
            .into_iter()
            .map(|(name, idx)| ArakoonCluster {
                name,
                members: names(&idx),
            })
            .collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        Layout {
            nodes,
            clusters,
            controllers: CONTROLLERS.map(String::from).into(),
        }
    }

    /// The legacy layout: every node serves `vpool1`, runs `mybackend`'s jobs and two ASDs,
    /// and is a member of `ovsdb`, `voldrv`, `mybackend-abm` and `mybackend-nsm_0` (members
    /// are the first 5 nodes when there are more). Node kinds as [`node_kind`].
    pub fn uniform(n: usize) -> Layout {
        let n = n.clamp(1, MAX_STORAGE_NODES);
        let members = names(&(0..n.min(MAX_MEMBERS)).collect::<Vec<_>>());
        let mut clusters: Vec<ArakoonCluster> = super::seed::ARAKOON_CLUSTERS
            .iter()
            .map(|c| ArakoonCluster {
                name: (*c).to_owned(),
                members: members.clone(),
            })
            .collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        Layout {
            nodes: (0..n)
                .map(|i| {
                    let (init, apt) = node_kind(i);
                    StorageNode {
                        name: storage_name(i),
                        init,
                        apt,
                        vpools: vec!["vpool1".to_owned()],
                        backends: vec![BACKEND.to_owned()],
                        asds: 2,
                        groups: vec!["storage".to_owned()],
                    }
                })
                .collect(),
            clusters,
            controllers: CONTROLLERS.map(String::from).into(),
        }
    }

    /// The shipped 5-node example (`src/sim/layouts/five-nodes.toml`).
    pub fn five_nodes() -> Result<Layout, LayoutError> {
        Layout::parse(Path::new("five-nodes.toml"), FIVE_NODES_TOML)
    }

    /// Reads a layout: TOML, or the stored JSON form when the file name ends in `.json`.
    pub fn load(path: &Path) -> Result<Layout, LayoutError> {
        let text = std::fs::read_to_string(path).map_err(|e| LayoutError {
            location: Location::of(path, "", 0),
            message: format!("cannot read the layout file: {e}"),
        })?;
        if path.extension().is_some_and(|e| e == "json") {
            Layout::from_json(path, &text)
        } else {
            Layout::parse(path, &text)
        }
    }

    /// The stored JSON form (what [`Layout::to_json`] writes), validated.
    pub fn from_json(path: &Path, text: &str) -> Result<Layout, LayoutError> {
        let layout: Layout = serde_json::from_str(text).map_err(|e| {
            let offset = offset_of(text, e.line(), e.column());
            LayoutError {
                location: Location::of(path, text, offset),
                message: e.to_string(),
            }
        })?;
        layout.check().map_err(|(_, message)| LayoutError {
            location: Location::of(path, text, 0),
            message,
        })?;
        Ok(layout)
    }

    /// The JSON form stored beside the simulated nodes.
    pub fn to_json(&self) -> String {
        // A Layout is strings, numbers and lists: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses layout TOML; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Layout, LayoutError> {
        let at = |span: Option<Range<usize>>, message: String| LayoutError {
            location: Location::of(path, text, span.map_or(0, |s| s.start)),
            message,
        };
        let raw: RawLayout =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
        let (layout, spans) = raw.into_layout();
        layout
            .check()
            .map_err(|(place, message)| at(spans.get(&place).cloned(), message))?;
        Ok(layout)
    }

    /// The storage node called `name`, with its index.
    pub fn node(&self, name: &str) -> Option<(usize, &StorageNode)> {
        self.nodes.iter().enumerate().find(|(_, n)| n.name == name)
    }

    /// The storage node names, in order.
    pub fn storage_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Every node with its inventory groups: storage nodes, then the controllers (group
    /// `controller`). The inventory of `-i sim` is built from this.
    pub fn inventory(&self) -> Vec<(String, Vec<String>)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.groups.clone()))
            .chain(
                self.controllers
                    .iter()
                    .map(|c| (c.clone(), vec!["controller".to_owned()])),
            )
            .collect()
    }

    /// The clusters `node` runs a member of.
    pub fn clusters_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a ArakoonCluster> {
        self.clusters
            .iter()
            .filter(move |c| c.members.iter().any(|m| m == node))
    }

    /// Every problem check, in the order a reader meets them.
    fn check(&self) -> Result<(), (Where, String)> {
        if self.nodes.is_empty() {
            return Err((
                Where::Whole,
                "expected at least one storage node ([nodes.NAME])".into(),
            ));
        }
        if self.nodes.len() > MAX_STORAGE_NODES {
            return Err((
                Where::Whole,
                format!(
                    "expected at most {MAX_STORAGE_NODES} storage nodes, found {}",
                    self.nodes.len()
                ),
            ));
        }
        self.check_nodes()?;
        self.check_controllers()?;
        self.check_clusters()
    }

    fn check_nodes(&self) -> Result<(), (Where, String)> {
        let mut ids = BTreeMap::new();
        for n in &self.nodes {
            let here = || Where::Node(n.name.clone());
            check_node_name(&n.name).map_err(|m| (here(), m))?;
            if let Some(other) = ids.insert(super::seed::machine_id(&n.name), &n.name) {
                return Err((
                    here(),
                    format!(
                        "node {:?} gets the same machine id as {other:?}: rename one",
                        n.name
                    ),
                ));
            }
            for (field, list) in [("vpools", &n.vpools), ("backends", &n.backends)] {
                let mut seen = BTreeSet::new();
                for (i, v) in list.iter().enumerate() {
                    let here = || Where::NodeList(n.name.clone(), field, i);
                    check_word(v).map_err(|m| (here(), m))?;
                    if !seen.insert(v) {
                        return Err((here(), format!("{v:?} is listed twice in {field}")));
                    }
                    if field == "backends"
                        && !self.clusters.iter().any(|c| c.name == format!("{v}-abm"))
                    {
                        return Err((
                            here(),
                            format!(
                                "expected an ALBA backend with an Arakoon cluster \"{v}-abm\" in [clusters], found none"
                            ),
                        ));
                    }
                }
            }
            for (i, g) in n.groups.iter().enumerate() {
                check_node_name(g)
                    .map_err(|m| (Where::NodeList(n.name.clone(), "groups", i), m))?;
            }
            if n.asds > MAX_ASDS {
                return Err((
                    Where::Asds(n.name.clone()),
                    format!("expected at most {MAX_ASDS} ASDs, found {}", n.asds),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for n in &self.nodes {
            if !seen.insert(&n.name) {
                return Err((
                    Where::Node(n.name.clone()),
                    format!("node {:?} is defined twice", n.name),
                ));
            }
        }
        Ok(())
    }

    fn check_controllers(&self) -> Result<(), (Where, String)> {
        let mut seen: BTreeSet<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        for (i, c) in self.controllers.iter().enumerate() {
            check_node_name(c).map_err(|m| (Where::Controller(i), m))?;
            if !seen.insert(c) {
                return Err((
                    Where::Controller(i),
                    format!("{c:?} is already the name of another node"),
                ));
            }
        }
        Ok(())
    }

    fn check_clusters(&self) -> Result<(), (Where, String)> {
        let mut seen = BTreeSet::new();
        for c in &self.clusters {
            let here = || Where::Cluster(c.name.clone());
            check_word(&c.name).map_err(|m| (here(), m))?;
            if !seen.insert(&c.name) {
                return Err((here(), format!("cluster {:?} is defined twice", c.name)));
            }
            if !(1..=MAX_MEMBERS).contains(&c.members.len()) {
                return Err((
                    Where::Members(c.name.clone()),
                    format!(
                        "expected 1 to {MAX_MEMBERS} members for cluster {:?}, found {}",
                        c.name,
                        c.members.len()
                    ),
                ));
            }
            let mut members = BTreeSet::new();
            for (i, m) in c.members.iter().enumerate() {
                let here = || Where::Member(c.name.clone(), i);
                if self.node(m).is_none() {
                    return Err((
                        here(),
                        format!(
                            "expected a storage node of [nodes] as member of {:?}, found {m:?}",
                            c.name
                        ),
                    ));
                }
                if !members.insert(m) {
                    return Err((here(), format!("{m:?} is a member of {:?} twice", c.name)));
                }
            }
        }
        Ok(())
    }
}

/// A node, controller or group name: as an inventory's (letters, digits, `.`, `_`, `-`, not
/// starting with `-`), and not the stored layout's file name.
pub fn check_node_name(name: &str) -> Result<(), String> {
    crate::name::check_name(name)?;
    if name == RESERVED_NAME {
        return Err(format!(
            "{name:?} is reserved (the stored layout's file), choose another name"
        ));
    }
    Ok(())
}

/// A cluster, vpool or backend name (it becomes part of job names and paths): letters,
/// digits, `_` and `-`, not starting with `-`.
pub fn check_word(name: &str) -> Result<(), String> {
    if name.is_empty() || name.starts_with('-') {
        return Err(format!(
            "expected a name not empty and not starting with '-', found {name:?}"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        Some(c) => Err(format!(
            "expected a name of letters, digits, '_' and '-', found {c:?} in {name:?}"
        )),
        None => Ok(()),
    }
}

/// The byte offset of a 1-based line and column (serde_json's error position).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    controllers: Option<Vec<Spanned<String>>>,
    nodes: BTreeMap<Spanned<String>, RawNode>,
    #[serde(default)]
    clusters: BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    init: Init,
    apt: AptVariant,
    #[serde(default)]
    vpools: Vec<Spanned<String>>,
    #[serde(default)]
    backends: Vec<Spanned<String>>,
    asds: Option<Spanned<u32>>,
    groups: Option<Vec<Spanned<String>>>,
}

impl RawLayout {
    /// The layout, and where each of its parts is in the file.
    fn into_layout(self) -> (Layout, BTreeMap<Where, Range<usize>>) {
        let mut spans = BTreeMap::new();
        let mut nodes = Vec::new();
        for (name, raw) in self.nodes {
            let n = name.get_ref().clone();
            spans.insert(Where::Node(n.clone()), name.span());
            let mut list = |field: &'static str, items: Vec<Spanned<String>>| -> Vec<String> {
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        spans.insert(Where::NodeList(n.clone(), field, i), v.span());
                        v.into_inner()
                    })
                    .collect()
            };
            let vpools = list("vpools", raw.vpools);
            let backends = list("backends", raw.backends);
            let groups = match raw.groups {
                Some(g) => list("groups", g),
                None => vec!["storage".to_owned()],
            };
            if let Some(a) = &raw.asds {
                spans.insert(Where::Asds(n.clone()), a.span());
            }
            nodes.push(StorageNode {
                name: n,
                init: raw.init,
                apt: raw.apt,
                vpools,
                backends,
                asds: raw.asds.map_or(0, Spanned::into_inner),
                groups,
            });
        }
        let controllers = match self.controllers {
            Some(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    spans.insert(Where::Controller(i), c.span());
                    c.into_inner()
                })
                .collect(),
            None => CONTROLLERS.map(String::from).into(),
        };
        let clusters = self
            .clusters
            .into_iter()
            .map(|(name, members)| {
                let n = name.get_ref().clone();
                spans.insert(Where::Cluster(n.clone()), name.span());
                spans.insert(Where::Members(n.clone()), members.span());
                let members = members
                    .into_inner()
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| {
                        spans.insert(Where::Member(n.clone(), i), m.span());
                        m.into_inner()
                    })
                    .collect();
                ArakoonCluster { name: n, members }
            })
            .collect();
        (
            Layout {
                nodes,
                clusters,
                controllers,
            },
            spans,
        )
    }
}

#[cfg(test)]
mod tests;
