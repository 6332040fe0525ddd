//! A simulated cluster that replicates a real one (`ovsup -i INVENTORY sim capture NAME`):
//! what the capture read from the nodes ([`Observed`]) becomes the simulator's node states and
//! a [`Layout`] ([`replicate`]), stored as the cluster directory of `-i sim:NAME` together with
//! a pristine copy that `ovsup -i sim:NAME sim reset` restores ([`store`], [`restore`]).
//! [`list`] finds the simulated clusters of a base directory (`ovsup sim list`).
//!
//! A replica's state directory (`$XDG_STATE_HOME/ovsup/sim-NAME` by default) holds, besides
//! what every state directory holds (journals, VM record, …):
//! - `sim/`: the live cluster, as for `-i sim` (`layout.json`, one `<node>.json` per node);
//! - `capture/capture.json`: the [`Manifest`] (when, from which environment, what was left
//!   out or approximated);
//! - `capture/sim/`: the cluster as captured, copied back into `sim/` by a reset.
//!
//! The simulator keeps only what its tools answer from. Of the nodes' files a replica holds
//! the machine id, the Arakoon configs (the keys of [`CONFIG_KEYS`] only: ids, addresses,
//! ports, directories) and the `ALLOWED_HOSTS` line of the framework's `settings.py`;
//! `docs/capture.md` lists all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::arakoon;
use super::cluster;
use super::error::SimError;
use super::fs::{Fs, VirtualFs};
use super::layout::{self, ArakoonCluster, Layout, StorageNode};
use super::seed::{self, MACHINE_ID_FILE, SETTINGS_PY};
use super::state::{
    AptVariant, DomState, Domain, DomainRun, Faults, Init, Job, NodeState, Package, PkgStatus,
};
use super::version;

/// The capture's own directory in a replica's state directory.
pub const CAPTURE_DIR: &str = "capture";
/// The manifest's file name in [`CAPTURE_DIR`].
pub const MANIFEST_FILE: &str = "capture.json";
/// How the manifest's format is versioned.
pub const MANIFEST_FORMAT: u32 = 1;

/// The Arakoon config keys a replica keeps (of `[global]` and of the member sections): what
/// the simulator and ovsup's parser read, and the directories and log settings beside them.
/// Any other key is left out of the replica and named in the capture's notes.
pub const CONFIG_KEYS: [&str; 18] = [
    "cluster",
    "cluster_id",
    "plugins",
    "tlog_max_entries",
    "master",
    "name",
    "ip",
    "client_port",
    "messaging_port",
    "home",
    "tlog_dir",
    "tlf_dir",
    "head_dir",
    "log_dir",
    "log_level",
    "log_sinks",
    "crash_log_sinks",
    "fsync",
];

/// How long before the capture the replica's jobs started (they must be past any election
/// window): a day.
const UPTIME_MS: u64 = 24 * 3_600_000;
/// How much longer an Arakoon master's member job has run than the other members (the
/// simulator elects the member with the longest uptime).
const MASTER_LEAD_MS: u64 = 60_000;
/// The lowest pid the replica hands out to a started process.
const FIRST_PID: u32 = 1200;

/// A package as the capture read it (dpkg's state, apt's installed and candidate versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPackage {
    /// The installed version (`None`: not installed).
    pub installed: Option<String>,
    /// The candidate version apt's lists offer.
    pub candidate: Option<String>,
    /// dpkg's state of the installed version.
    pub status: PkgStatus,
}

/// A job (upstart) or service (systemd) as the capture read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedJob {
    /// Whether it runs.
    pub running: bool,
    /// Its main pid when it runs.
    pub pid: Option<u32>,
    /// Whether systemd shows it `failed`.
    pub failed: bool,
    /// systemd's description (empty on upstart).
    pub description: String,
}

/// One target node as the capture read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedNode {
    /// The inventory name.
    pub name: String,
    /// Its inventory groups.
    pub groups: Vec<String>,
    /// Its init system.
    pub init: Init,
    /// Its apt generation (see the notes for a version the simulator has not).
    pub apt: AptVariant,
    /// The Open vStorage packages (and memcached, and what `dpkg --audit` named).
    pub packages: BTreeMap<String, ObservedPackage>,
    /// The Open vStorage jobs (`ovs-*`, `alba-*`).
    pub jobs: BTreeMap<String, ObservedJob>,
    /// Whether memcached runs (`/etc/init.d/memcached status`).
    pub memcached_running: bool,
    /// Every libvirt domain and its state.
    pub domains: BTreeMap<String, DomState>,
    /// The pid listening on 4446/tcp (the cloud agent), if any.
    pub agent_pid: Option<u32>,
    /// backplane1's address with its prefix (`10.107.1.11/24`), if it has one.
    pub backplane1: Option<String>,
    /// `/etc/openvstorage_id`, if the node has one.
    pub machine_id: Option<String>,
    /// apt's update stamp (epoch seconds), if the lists were ever updated cleanly.
    pub apt_updated_secs: Option<u64>,
    /// Free bytes under `/` and `/var/cache/apt/archives` (the smaller, when they differ).
    pub free_bytes: Option<u64>,
    /// The `ALLOWED_HOSTS` lines of `settings.py`; `None` when the node has no such file.
    pub allowed_hosts: Option<Vec<String>>,
    /// The cluster names of the node's Arakoon config directory.
    pub arakoon_dirs: Vec<String>,
}

/// Everything a capture read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// When (ms since the epoch).
    pub captured_ms: u64,
    /// The target nodes.
    pub nodes: Vec<ObservedNode>,
    /// The excluded nodes of the inventory (controller instances): not read.
    pub controllers: Vec<String>,
    /// The Arakoon configs by cluster, as kept ([`keep_config`]).
    pub configs: BTreeMap<String, String>,
    /// The master of each cluster that had one (member id).
    pub masters: BTreeMap<String, String>,
    /// What the reading left out or approximated, as people read it.
    pub notes: Vec<String>,
}

/// A replica, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Its layout: storage nodes, Arakoon clusters, controllers.
    pub layout: Layout,
    /// Every node's state (storage nodes, then controllers).
    pub states: Vec<NodeState>,
    /// What the simulator could not represent, as people read it (the reading's notes first).
    pub notes: Vec<String>,
}

/// Where a replica came from, and what it left out: `capture/capture.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The replica's name (`-i sim:NAME`).
    pub name: String,
    /// When it was captured (RFC 3339, UTC).
    pub captured_at: String,
    /// The environment it replicates.
    pub environment: String,
    /// That environment's inventory file, if it has one.
    #[serde(default)]
    pub inventory: Option<String>,
    /// The ovsup version that captured it.
    pub ovsup: String,
    /// The storage nodes.
    pub storage_nodes: Vec<String>,
    /// The controller instances (not read: empty nodes).
    pub controllers: Vec<String>,
    /// What the simulator could not represent.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One simulated cluster of a base directory (`ovsup sim list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    /// What `-i` names it by: `sim`, `sim:NAME`.
    pub spec: String,
    /// Its state directory.
    pub dir: PathBuf,
    /// Its layout as stored now.
    pub layout: Layout,
    /// For a capture: its manifest.
    pub captured: Option<Manifest>,
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> SimError + 'a {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

fn problem(dir: &Path, message: String) -> SimError {
    SimError::Cluster {
        dir: dir.to_path_buf(),
        message,
    }
}

// ---------------------------------------------------------------------------------------------
// What a replica keeps of an Arakoon config

/// The Arakoon config `text` with only the keys of [`CONFIG_KEYS`] (sections, key order and
/// values as they were; comments and blank lines dropped), and the names of the keys left
/// out.
pub fn keep_config(text: &str) -> (String, BTreeSet<String>) {
    let mut kept = String::new();
    let mut dropped = BTreeSet::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with(['#', ';']) {
            continue;
        }
        if t.starts_with('[') {
            if !kept.is_empty() {
                kept.push('\n');
            }
            kept.push_str(t);
            kept.push('\n');
            continue;
        }
        let key = t.split_once('=').map_or(t, |(k, _)| k).trim();
        if CONFIG_KEYS.contains(&key) {
            kept.push_str(t);
            kept.push('\n');
        } else {
            dropped.insert(key.to_owned());
        }
    }
    (kept, dropped)
}

// ---------------------------------------------------------------------------------------------
// From what was read to a replica

/// The vpools, backends and ASD count a node's jobs say it serves.
fn roles(jobs: &BTreeMap<String, ObservedJob>) -> (Vec<String>, Vec<String>, u32) {
    let mut vpools = Vec::new();
    let mut backends = Vec::new();
    let mut asds = 0;
    for name in jobs.keys() {
        let suffix = |p: &str| name.strip_prefix(p).map(str::to_owned);
        if let Some(v) = suffix("ovs-volumedriver_").or_else(|| suffix("ovs-albaproxy_")) {
            if !vpools.contains(&v) {
                vpools.push(v);
            }
        } else if let Some(b) =
            suffix("ovs-alba-maintenance_").or_else(|| suffix("ovs-alba-rebalancer_"))
        {
            if !backends.contains(&b) {
                backends.push(b);
            }
        } else if name.starts_with("alba-asd-") {
            asds += 1;
        }
    }
    (vpools, backends, asds)
}

/// The Arakoon clusters of the layout: each config's members matched to the captured nodes
/// by machine id, else by backplane address.
fn layout_clusters(o: &Observed, notes: &mut Vec<String>) -> Result<Vec<ArakoonCluster>, String> {
    let mut clusters = Vec::new();
    for (name, text) in &o.configs {
        let cfg = arakoon::parse_cfg(text)
            .map_err(|e| format!("the Arakoon config of {name} as kept: {e}"))?;
        if let Err(e) = layout::check_word(name) {
            notes.push(format!(
                "Arakoon cluster {name:?}: not in the replica's layout ({e}); its config and \
                 member jobs are kept"
            ));
            continue;
        }
        let mut members: Vec<String> = Vec::new();
        for m in &cfg.members {
            let node = o
                .nodes
                .iter()
                .find(|n| n.machine_id.as_deref() == Some(m.id.as_str()))
                .or_else(|| {
                    o.nodes.iter().find(|n| {
                        n.backplane1
                            .as_deref()
                            .and_then(|a| a.split('/').next())
                            .is_some_and(|ip| ip == m.ip)
                    })
                });
            match node {
                Some(n) if !members.contains(&n.name) => members.push(n.name.clone()),
                Some(_) => {}
                None => notes.push(format!(
                    "Arakoon cluster {name}: member {} ({}) runs on no target node of the \
                     inventory; the replica has no such node, and counts the member as down",
                    m.id, m.ip
                )),
            }
        }
        if members.is_empty() || members.len() > layout::MAX_MEMBERS {
            notes.push(format!(
                "Arakoon cluster {name}: {} of its members on target nodes: not in the \
                 replica's layout (its config and member jobs are kept)",
                members.len()
            ));
            continue;
        }
        clusters.push(ArakoonCluster {
            name: name.clone(),
            members,
        });
    }
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(clusters)
}

/// The replica's layout: the captured nodes with what their jobs say they serve, the
/// clusters of their Arakoon configs, the inventory's controllers; validated as any layout.
fn replica_layout(o: &Observed, notes: &mut Vec<String>) -> Result<Layout, String> {
    let clusters = layout_clusters(o, notes)?;
    let mut nodes = Vec::new();
    for n in &o.nodes {
        layout::check_node_name(&n.name).map_err(|e| format!("node {:?}: {e}", n.name))?;
        let (vpools, backends, asds) = roles(&n.jobs);
        let mut keep = |what: &str, list: Vec<String>, ok: &dyn Fn(&str) -> Option<String>| {
            list.into_iter()
                .filter(|v| match ok(v) {
                    None => true,
                    Some(why) => {
                        notes.push(format!(
                            "{}: {what} {v:?} is not in the replica's layout ({why}); its jobs are kept",
                            n.name
                        ));
                        false
                    }
                })
                .collect::<Vec<_>>()
        };
        let vpools = keep("vpool", vpools, &|v| layout::check_word(v).err());
        let backends = keep("ALBA backend", backends, &|b| {
            layout::check_word(b).err().or_else(|| {
                (!clusters.iter().any(|c| c.name == format!("{b}-abm")))
                    .then(|| format!("no Arakoon cluster {b}-abm"))
            })
        });
        if asds > layout::MAX_ASDS {
            notes.push(format!(
                "{}: {asds} ASDs; the layout records at most {} (every ASD job is kept)",
                n.name,
                layout::MAX_ASDS
            ));
        }
        let mut groups = Vec::new();
        for g in &n.groups {
            match layout::check_node_name(g) {
                Ok(()) => groups.push(g.clone()),
                Err(e) => notes.push(format!("{}: group {g:?} left out ({e})", n.name)),
            }
        }
        nodes.push(StorageNode {
            name: n.name.clone(),
            init: n.init,
            apt: n.apt,
            vpools,
            backends,
            asds: asds.min(layout::MAX_ASDS),
            groups,
        });
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let layout = Layout {
        nodes,
        clusters,
        controllers: o.controllers.clone(),
    };
    Layout::from_json(Path::new("the captured layout"), &layout.to_json()).map_err(|e| e.message)
}

/// The simulator's package of a captured one: the repository holds what apt knows of it (the
/// installed version and the candidate; older versions are not visible to a capture).
fn package(p: &ObservedPackage) -> Package {
    let mut repository: Vec<String> = p
        .installed
        .iter()
        .filter(|_| p.status != PkgStatus::ConfigFiles)
        .chain(&p.candidate)
        .cloned()
        .collect();
    repository.sort_by(|a, b| version::compare(a, b));
    repository.dedup();
    Package {
        installed: p.installed.clone(),
        status: p.status,
        candidate: p.candidate.clone(),
        repository,
        downloads: 0,
    }
}

/// The state of captured node `n`: its packages, jobs, VMs, agent, addresses and the files
/// the simulator reads.
fn node_state(n: &ObservedNode, o: &Observed, notes: &mut Vec<String>) -> NodeState {
    let (jobs, next_pid) = replica_jobs(n, o, notes);
    let (domains, next_domain_id) = replica_domains(n, o.captured_ms);
    let mut state = NodeState {
        name: n.name.clone(),
        apt_variant: n.apt,
        init: n.init,
        packages: n
            .packages
            .iter()
            .map(|(name, p)| (name.clone(), package(p)))
            .collect(),
        jobs,
        next_pid,
        memcached_running: n.memcached_running,
        domains,
        shutdown_secs: 1.0,
        next_domain_id,
        agent_pid: n.agent_pid,
        backplane1: n.backplane1.clone(),
        machine_id: n.machine_id.clone(),
        apt_updated_ms: n.apt_updated_secs.map(|s| s.saturating_mul(1000)),
        history: Vec::new(),
        faults: Faults {
            free_bytes: n.free_bytes,
            ..Faults::default()
        },
        files: BTreeMap::new(),
    };
    seed::base_files(&mut state);
    state.files = replica_files(n, o, std::mem::take(&mut state.files));
    state
}

/// The jobs of captured node `n` (pids as read; started a day before the capture, each
/// Arakoon master's member a minute earlier so that every cluster elects the master it had),
/// and the next pid the replica hands out.
fn replica_jobs(
    n: &ObservedNode,
    o: &Observed,
    notes: &mut Vec<String>,
) -> (BTreeMap<String, Job>, u32) {
    let base = o.captured_ms.saturating_sub(UPTIME_MS);
    let mut next_pid = n
        .jobs
        .values()
        .filter_map(|j| j.pid)
        .chain(n.agent_pid)
        .max()
        .map_or(FIRST_PID, |p| p.saturating_add(1).max(FIRST_PID));
    let mut jobs = BTreeMap::new();
    for (name, j) in &n.jobs {
        let master = name
            .strip_prefix("ovs-arakoon-")
            .and_then(|c| o.masters.get(c))
            .is_some_and(|id| n.machine_id.as_deref() == Some(id.as_str()));
        let pid = match (j.running, j.pid) {
            (true, Some(pid)) => pid,
            (true, None) => {
                notes.push(format!(
                    "{}: {name} runs without a main process; the replica gives it pid {next_pid}",
                    n.name
                ));
                next_pid += 1;
                next_pid - 1
            }
            (false, _) => 0,
        };
        jobs.insert(
            name.clone(),
            Job {
                running: j.running,
                pid,
                failed: j.failed,
                description: j.description.clone(),
                started_ms: if master {
                    base.saturating_sub(MASTER_LEAD_MS)
                } else {
                    base
                },
            },
        );
    }
    (jobs, next_pid)
}

/// The VMs of captured node `n` as the simulator holds them (one shutting down at the
/// capture keeps shutting down from then), and the next domain id.
fn replica_domains(n: &ObservedNode, captured_ms: u64) -> (BTreeMap<String, Domain>, u32) {
    let mut next_domain_id = 1;
    let domains = n
        .domains
        .iter()
        .map(|(name, state)| {
            let id = state.is_active().then(|| {
                next_domain_id += 1;
                next_domain_id - 1
            });
            let (run, shutdown_started_ms) = match state {
                DomState::Running => (DomainRun::Running, None),
                DomState::InShutdown => (DomainRun::Running, Some(captured_ms)),
                DomState::Paused => (DomainRun::Paused, None),
                DomState::ShutOff => (DomainRun::ShutOff, None),
                DomState::Crashed => (DomainRun::Crashed, None),
            };
            let domain = Domain {
                run,
                shutdown_started_ms,
                id,
            };
            (name.clone(), domain)
        })
        .collect();
    (domains, next_domain_id)
}

/// The files the simulator reads, on top of `base`: the machine id, the Arakoon configs the
/// node holds, the web API's settings.
fn replica_files(
    n: &ObservedNode,
    o: &Observed,
    base: BTreeMap<String, crate::sim::fs::FsEntry>,
) -> BTreeMap<String, crate::sim::fs::FsEntry> {
    let fs = VirtualFs::new(base);
    // A fresh virtual filesystem with its base directories cannot fail these writes.
    if let Some(id) = &n.machine_id {
        let _ = fs.write(MACHINE_ID_FILE, &format!("{id}\n"));
    }
    for c in &n.arakoon_dirs {
        let _ = fs.create_dir_all(&format!("{}/{c}", arakoon::CONFIG_DIR));
        if let Some(text) = o.configs.get(c) {
            let _ = fs.write(&arakoon::cfg_path(c), text);
        }
    }
    if let Some(lines) = &n.allowed_hosts {
        let _ = fs.create_dir_all("/opt/OpenvStorage/webapps/api");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let _ = fs.write(SETTINGS_PY, &text);
    }
    fs.into_entries()
}

/// The replica of what a capture read: its layout and every node's state (controllers are
/// empty controller instances, as in the built-in cluster). An error says what cannot be
/// replicated at all (a node name the simulator cannot store, a config its parser rejects).
pub fn replicate(o: &Observed) -> Result<Replica, String> {
    let mut notes = o.notes.clone();
    let layout = replica_layout(o, &mut notes)?;
    let mut states: Vec<NodeState> = layout
        .nodes
        .iter()
        .filter_map(|l| o.nodes.iter().find(|n| n.name == l.name))
        .map(|n| node_state(n, o, &mut notes))
        .collect();
    states.extend(layout.controllers.iter().map(|c| seed::controller_node(c)));
    Ok(Replica {
        layout,
        states,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// On disk

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), SimError> {
    let mut json = serde_json::to_vec_pretty(value).map_err(SimError::Serialize)?;
    json.push(b'\n');
    std::fs::write(path, json).map_err(io(path, "write"))
}

/// Writes a cluster directory: the layout and every node's state file.
fn write_cluster(dir: &Path, replica: &Replica) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(io(dir, "create the cluster directory"))?;
    write_json(&cluster::layout_file(dir), &replica.layout)?;
    for s in &replica.states {
        write_json(&cluster::state_file(dir, &s.name), s)?;
    }
    Ok(())
}

/// A private (0700) directory and its parents.
fn private_dir(dir: &Path) -> Result<(), SimError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir, "create the directory"))
}

/// Whether `state_dir` holds a replica or a simulated cluster already (what a capture would
/// replace).
pub fn occupied(state_dir: &Path) -> bool {
    state_dir.join("sim").exists() || state_dir.join(CAPTURE_DIR).exists()
}

/// Stores `replica` as the state directory `state_dir` (`<base>/sim-NAME`): `sim/` (the live
/// cluster), `capture/sim/` (its pristine copy) and `capture/capture.json`. Everything is
/// written into a temporary directory beside it first and renamed into place, so a failure
/// leaves no half-written replica. An existing state directory is refused unless `replace`,
/// which throws it away whole (with the rehearsals' journals and VM record: they were of the
/// old replica).
pub fn store(
    state_dir: &Path,
    replica: &Replica,
    manifest: &Manifest,
    replace: bool,
) -> Result<(), SimError> {
    let parent = state_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = state_dir
        .file_name()
        .map_or_else(|| "replica".into(), |s| s.to_string_lossy().into_owned());
    if state_dir.exists() && !replace {
        return Err(problem(
            state_dir,
            "it exists already: give --replace to replace it (its rehearsals' journals and VM \
             record go with it), or capture under another name"
                .into(),
        ));
    }
    private_dir(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}.capture-"))
        .tempdir_in(parent)
        .map_err(io(parent, "create a temporary directory"))?;
    // A state directory is private (ovsup refuses one its group or others can enter).
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(io(tmp.path(), "make private"))?;
    write_cluster(&tmp.path().join("sim"), replica)?;
    let capture = tmp.path().join(CAPTURE_DIR);
    write_cluster(&capture.join("sim"), replica)?;
    write_json(&capture.join(MANIFEST_FILE), manifest)?;
    let ready = tmp.keep();
    let swap = || -> Result<(), SimError> {
        if state_dir.exists() {
            let old = tempfile::Builder::new()
                .prefix(&format!(".{stem}.replaced-"))
                .tempdir_in(parent)
                .map_err(io(parent, "create a temporary directory"))?
                .keep();
            let old_state = old.join("state");
            std::fs::rename(state_dir, &old_state).map_err(io(state_dir, "move aside"))?;
            if let Err(e) = std::fs::rename(&ready, state_dir) {
                // Put the old one back: better the old replica than none.
                let _ = std::fs::rename(&old_state, state_dir);
                return Err(io(state_dir, "rename the new replica into place")(e));
            }
            std::fs::remove_dir_all(&old).map_err(io(&old, "remove the replaced replica"))
        } else {
            std::fs::rename(&ready, state_dir).map_err(io(state_dir, "rename into place"))
        }
    };
    let swapped = swap();
    if swapped.is_err() {
        let _ = std::fs::remove_dir_all(&ready);
    }
    swapped
}

/// The manifest of the replica in `state_dir`, if it is one.
pub fn manifest(state_dir: &Path) -> Result<Option<Manifest>, SimError> {
    let path = state_dir.join(CAPTURE_DIR).join(MANIFEST_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| SimError::Parse { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path, "read the capture's manifest")(e)),
    }
}

/// `ovsup -i sim:NAME sim reset`: the live cluster (`sim/`) becomes the pristine copy again,
/// assembled beside it and renamed into place. `None` when `state_dir` holds no capture.
pub fn restore(state_dir: &Path) -> Result<Option<Manifest>, SimError> {
    let Some(manifest) = manifest(state_dir)? else {
        return Ok(None);
    };
    let pristine = state_dir.join(CAPTURE_DIR).join("sim");
    let live = state_dir.join("sim");
    if cluster::stored_layout(&pristine)?.is_none() {
        return Err(problem(
            &pristine,
            "the capture's pristine copy has no layout.json: capture again".into(),
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".sim.reset-")
        .tempdir_in(state_dir)
        .map_err(io(state_dir, "create a temporary directory"))?;
    let fresh = tmp.path().join("sim");
    std::fs::create_dir(&fresh).map_err(io(&fresh, "create"))?;
    for entry in std::fs::read_dir(&pristine).map_err(io(&pristine, "read"))? {
        let path = entry.map_err(io(&pristine, "read"))?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, fresh.join(name)).map_err(io(&path, "copy"))?;
        }
    }
    let old = tmp.path().join("old");
    if live.exists() {
        std::fs::rename(&live, &old).map_err(io(&live, "move aside"))?;
    }
    if let Err(e) = std::fs::rename(&fresh, &live) {
        if old.exists() {
            let _ = std::fs::rename(&old, &live);
        }
        return Err(io(&live, "rename the restored cluster into place")(e));
    }
    // The temporary directory and the old cluster in it go when `tmp` is dropped.
    drop(tmp);
    Ok(Some(manifest))
}

/// The simulated cluster whose state directory is `dir`, named `spec`; `None` when it holds
/// none (no `sim/layout.json`).
pub fn entry(dir: &Path, spec: String) -> Result<Option<ClusterEntry>, SimError> {
    let Some(layout) = cluster::stored_layout(&dir.join("sim"))? else {
        return Ok(None);
    };
    Ok(Some(ClusterEntry {
        spec,
        dir: dir.to_path_buf(),
        layout,
        captured: manifest(dir)?,
    }))
}

/// The simulated clusters whose state directories are in `base` (`$XDG_STATE_HOME/ovsup`):
/// the built-in one (`sim`) and the captures (`sim-NAME`), sorted by name.
pub fn list(base: &Path) -> Result<Vec<ClusterEntry>, SimError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(base, "read the state base directory")(e)),
    };
    for e in entries {
        let e = e.map_err(io(base, "read the state base directory"))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let spec = match name.as_str() {
            "sim" => "sim".to_owned(),
            n => match n.strip_prefix("sim-") {
                Some(rest) if layout::check_node_name(rest).is_ok() => format!("sim:{rest}"),
                _ => continue,
            },
        };
        if let Some(found) = entry(&e.path(), spec)? {
            out.push(found);
        }
    }
    out.sort_by(|a, b| a.spec.cmp(&b.spec));
    Ok(out)
}

#[cfg(test)]
mod tests;
