//! `ovsup -i INVENTORY sim capture NAME`: read the environment's nodes — read-only, every
//! command a query, all of them in the run's journal — and write a simulated cluster that
//! replicates them, `-i sim:NAME`, on which any runbook can be rehearsed with the same node
//! names, packages, jobs, VMs and topology (see `docs/capture.md`). The reading is here, with
//! the primitives and parsers every runbook uses (unknown output fails naming node, command
//! and line); what the simulator makes of it is [`crate::sim::capture`]. `ovsup sim list`
//! lists the simulated clusters there are.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::record::{self, Ran};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, all_ok};
use crate::inventory::{Inventory, Node, SimSpec};
use crate::outcome::Outcome;
use crate::primitives::parse::{self, virsh};
use crate::primitives::{apt, cluster, health, services, topology, vms};
use crate::quote;
use crate::report::Reporter;
use crate::session::Session;
use crate::sim::capture::{self as replica, Manifest, Observed, ObservedJob, ObservedNode};
use crate::sim::state::{AptVariant, DomState, Init, PkgStatus};
use crate::state::journal::RunJournals;

/// The packages a capture reads (apt patterns): the four components' (as
/// `stdlib/components.rhai` names them) and memcached, which the framework step restarts.
/// Packages `dpkg --audit` names are read too.
pub const PACKAGES: [&str; 6] = [
    "openvstorage*",
    "volumedriver-base",
    "volumedriver-server",
    "alba",
    "arakoon",
    "memcached",
];

/// The job name prefixes of Open vStorage's jobs: the ones a replica keeps.
pub const JOB_PREFIXES: [&str; 2] = ["ovs-", "alba-"];

/// What `sim capture` was asked.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The replica's name (`-i sim:NAME`).
    pub name: &'a str,
    /// Replace an existing replica of that name.
    pub replace: bool,
    /// The replica's state directory, if not the default one of `sim-NAME`.
    pub into: Option<&'a std::path::Path>,
}

/// `ovsup -i INVENTORY sim capture NAME [--replace] [--into DIR]`. With `--dry-run` the nodes
/// are read and the replica is shown, not written.
pub fn run(
    config: &Config,
    reporter: Arc<dyn Reporter>,
    journals: &RunJournals,
    request: &Request<'_>,
) -> Result<Outcome> {
    let env = config.env()?;
    let target = target_dir(config, &env.state_dir, request)?;
    let session = Session::open(config, reporter, Some("capture"))?;
    let ran = Ran {
        runbooks: vec!["capture"],
        scripts: Vec::new(),
        set: &[],
    };
    if let Err(e) = record::begin(config, &session.host, &ran, journals) {
        session.close();
        return Err(e);
    }
    let host = session.host.clone();
    let observed = host.block_on(observe(&host));
    session.close();
    let observed = observed?;
    let replica = replica::replicate(&observed).map_err(|message| Error::Simulator {
        node: String::new(),
        message: format!("cannot replicate {}: {message}", env.inventory.name),
    })?;
    let manifest = manifest_of(request, &env.inventory, &observed, &replica);
    if !config.dry_run {
        replica::store(&target, &replica, &manifest, request.replace).map_err(|e| {
            Error::Simulator {
                node: String::new(),
                message: e.to_string(),
            }
        })?;
    }
    Ok(Outcome::Captured(Box::new(crate::outcome::Captured {
        manifest,
        layout: replica.layout,
        states: replica.states,
        masters: observed.masters,
        dir: target,
        dry_run: config.dry_run,
    })))
}

/// Where the replica of `request` goes, once the request is known to be one to carry out: a
/// name that is not a number, no `--limit`, not the captured environment's own state
/// directory, and no replica there already unless `--replace`.
fn target_dir(
    config: &Config,
    state_dir: &std::path::Path,
    request: &Request<'_>,
) -> Result<std::path::PathBuf> {
    let spec = match Inventory::simulated_spec(&format!("sim:{}", request.name)) {
        Some(Ok(SimSpec::Named(n))) => SimSpec::Named(n),
        _ => {
            return Err(Error::Usage(format!(
                "sim capture {:?}: expected a name of letters, digits, '.', '_' and '-' (not a \
                 number: sim:N is the built-in cluster of N nodes)",
                request.name
            )));
        }
    };
    if config.limit.is_some() {
        return Err(Error::Usage(
            "sim capture reads every target node (a replica is of the whole environment): \
             give no --limit"
                .into(),
        ));
    }
    let target = match request.into {
        Some(dir) => dir.to_path_buf(),
        None => crate::state::default_dir(&spec.environment())?,
    };
    if same_dir(&target, state_dir) {
        return Err(Error::Usage(format!(
            "sim capture {}: {} is the state directory of the environment being captured; \
             capture under another name",
            request.name,
            target.display()
        )));
    }
    if target.exists() && !request.replace && !config.dry_run {
        return Err(Error::Usage(format!(
            "a replica named {} exists already in {}: give --replace to replace it (its \
             rehearsals' journals and VM record go with it), or capture under another name",
            request.name,
            target.display()
        )));
    }
    Ok(target)
}

/// The manifest stored beside a replica: what was captured, when, from where.
fn manifest_of(
    request: &Request<'_>,
    inventory: &Inventory,
    observed: &Observed,
    replica: &replica::Replica,
) -> Manifest {
    Manifest {
        format: replica::MANIFEST_FORMAT,
        name: request.name.to_string(),
        captured_at: humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(observed.captured_ms),
        )
        .to_string(),
        environment: inventory.name.clone(),
        inventory: inventory
            .path
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .map(|p| p.display().to_string()),
        ovsup: env!("CARGO_PKG_VERSION").to_string(),
        storage_nodes: replica.layout.storage_names(),
        controllers: replica.layout.controllers.clone(),
        notes: replica.notes.clone(),
    }
}

/// `ovsup sim list`: the simulated clusters in the state base directory (and the one of
/// `--state-dir`, if it holds one).
pub fn list(state_dir: Option<&std::path::Path>) -> Result<Outcome> {
    let sim_err = |e: crate::sim::SimError| Error::Simulator {
        node: String::new(),
        message: e.to_string(),
    };
    let base = crate::state::base_dir()?;
    let mut found = replica::list(&base).map_err(sim_err)?;
    if let Some(dir) = state_dir
        && !found.iter().any(|c| same_dir(&c.dir, dir))
    {
        let spec = match replica::manifest(dir).map_err(sim_err)? {
            Some(m) => format!("sim:{} (--state-dir)", m.name),
            None => "sim (--state-dir)".to_string(),
        };
        found.extend(replica::entry(dir, spec).map_err(sim_err)?);
    }
    Ok(Outcome::SimClusters { base, found })
}

fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

// ---------------------------------------------------------------------------------------------
// Reading the environment (read-only: every command is an `Effect::Read`)

/// Read every target node (in parallel; a node that cannot be read fails the capture, naming
/// it, after every node was tried), then the Arakoon clusters' configs and masters.
async fn observe(host: &Host) -> Result<Observed> {
    let captured_ms = crate::sim::state::now_ms();
    let targets = host.targets(None);
    let read = host
        .fan_out(
            "capture",
            &targets,
            OnFailure::Continue,
            |node| async move { read_node(host, &node).await },
        )
        .await;
    let mut notes = Vec::new();
    let mut nodes = Vec::new();
    for (_, (node, node_notes)) in all_ok(read)? {
        nodes.push(node);
        notes.extend(node_notes);
    }
    let (configs, masters) = read_clusters(host, &targets, &nodes, &mut notes).await?;
    let controllers = host
        .inventory
        .nodes
        .iter()
        .filter(|n| host.inventory.exclude.contains(&n.name))
        .map(|n| n.name.clone())
        .collect();
    Ok(Observed {
        captured_ms,
        nodes,
        controllers,
        configs,
        masters,
        notes,
    })
}

/// Read one node: everything the simulator models of it.
async fn read_node(host: &Host, node: &Node) -> Result<(ObservedNode, Vec<String>)> {
    let mut notes = Vec::new();
    let name = &node.name;
    let init = match services::init_system(host, node).await? {
        services::Init::Upstart => Init::Upstart,
        services::Init::Systemd => Init::Systemd,
    };
    let apt = match apt::apt_version(host, node).await? {
        (1, 0) => AptVariant::V1_0,
        (1, 2) => AptVariant::V1_2,
        v @ (major, minor) => {
            let (sim, shown) = if v < (1, 1) {
                (AptVariant::V1_0, "1.0")
            } else {
                (AptVariant::V1_2, "1.2")
            };
            notes.push(format!(
                "{name}: apt {major}.{minor} is simulated as apt {shown} (the simulator has apt \
                 1.0 and 1.2; ovsup tells only apt older than 1.1 apart)"
            ));
            sim
        }
    };
    let packages = read_packages(host, node, &mut notes).await?;
    let jobs = read_jobs(host, node, init, &mut notes).await?;
    let memcached_running = read_memcached(host, node, &mut notes).await?;
    let domains = read_domains(host, node, &mut notes).await?;
    let agent_pid = cluster::listeners(host, node).await?.first().copied();
    let machine_id = match topology::ovs_id(host, node).await {
        Ok(id) => Some(id),
        Err(Error::Remote { stderr, .. }) => {
            notes.push(format!(
                "{name}: no {} ({}): the replica has none either",
                topology::OVS_ID_FILE,
                stderr.trim()
            ));
            None
        }
        Err(e) => return Err(e),
    };
    let backplane1 = read_backplane(host, node, &mut notes).await?;
    let apt_updated_secs = read_stamp(host, node).await?;
    let free_bytes = read_free(host, node, &mut notes).await?;
    let allowed_hosts = read_allowed_hosts(host, node, &mut notes).await?;
    let arakoon_dirs = read_config_dir(host, node).await?;
    Ok((
        ObservedNode {
            name: name.clone(),
            groups: node.groups.clone(),
            init,
            apt,
            packages,
            jobs,
            memcached_running,
            domains,
            agent_pid,
            backplane1,
            machine_id,
            apt_updated_secs,
            free_bytes,
            allowed_hosts,
            arakoon_dirs,
        },
        notes,
    ))
}

/// The packages of [`PACKAGES`] and those `dpkg --audit` names: dpkg's state, installed and
/// candidate versions (`dpkg-query -W`, `apt-cache policy`).
async fn read_packages(
    host: &Host,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, replica::ObservedPackage>> {
    let mut wanted: Vec<String> = PACKAGES.iter().map(|p| (*p).to_string()).collect();
    for a in health::dpkg_audit_on(host, node).await? {
        let covered = wanted
            .iter()
            .any(|w| glob::Pattern::new(w).map_or(w == &a.package, |p| p.matches(&a.package)));
        if !covered {
            wanted.push(a.package);
        }
    }
    let mut out = BTreeMap::new();
    for (pkg, v) in apt::versions_on(host, node, &wanted).await? {
        use parse::dpkg::State;
        let status = match v.state {
            State::Installed | State::NotInstalled => PkgStatus::Installed,
            State::Unpacked => PkgStatus::Unpacked,
            State::HalfConfigured => PkgStatus::HalfConfigured,
            State::HalfInstalled => PkgStatus::HalfInstalled,
            State::TriggersAwaited => PkgStatus::TriggersAwaited,
            State::TriggersPending => {
                notes.push(format!(
                    "{}: {pkg} awaits its own triggers (dpkg `it`); the simulator shows it as \
                     awaiting triggers (`iW`)",
                    node.name
                ));
                PkgStatus::TriggersAwaited
            }
            State::ConfigFiles => PkgStatus::ConfigFiles,
        };
        if v.installed.is_none() && v.candidate.is_none() {
            if v.state == State::ConfigFiles {
                notes.push(format!(
                    "{}: {pkg} is removed (its config files left) and apt offers no version: \
                     left out",
                    node.name
                ));
            }
            continue;
        }
        let installed = v.installed.filter(|_| status != PkgStatus::ConfigFiles);
        out.insert(
            pkg,
            replica::ObservedPackage {
                installed,
                candidate: v.candidate,
                status,
            },
        );
    }
    Ok(out)
}

fn is_ovs_job(name: &str) -> bool {
    JOB_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The node's Open vStorage jobs and their state: `initctl list` (upstart), or `systemctl
/// list-units` and each unit's status (systemd). Other jobs are counted in a note.
async fn read_jobs(
    host: &Host,
    node: &Node,
    init: Init,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, ObservedJob>> {
    let mut jobs: BTreeMap<String, ObservedJob> = BTreeMap::new();
    let mut others = BTreeSet::new();
    match init {
        Init::Upstart => {
            let line = "initctl list";
            let out = host.exec_ok(node, line, Effect::Read, None).await?;
            for j in parse::upstart::list(&out.stdout, &node.name, line)? {
                if !is_ovs_job(&j.name) {
                    others.insert(j.name);
                    continue;
                }
                if let Some(instance) = &j.instance {
                    notes.push(format!(
                        "{}: {} ({instance}) is an instance job; the replica has one job {} \
                         (running when an instance runs)",
                        node.name, j.name, j.name
                    ));
                }
                let entry = jobs.entry(j.name.clone()).or_default();
                if j.running() && !entry.running {
                    entry.running = true;
                    entry.pid = j.pid;
                }
            }
        }
        Init::Systemd => {
            for u in services::systemd_units(host, node, "*").await? {
                if !is_ovs_job(&u.name) {
                    others.insert(u.name);
                    continue;
                }
                let status = services::status_on(host, node, &u.name).await?;
                let Some(status) = status else { continue };
                jobs.insert(
                    u.name.clone(),
                    ObservedJob {
                        running: status.running,
                        pid: status.pid,
                        failed: u.active == "failed",
                        description: u.description.clone(),
                    },
                );
            }
        }
    }
    if !others.is_empty() {
        notes.push(format!(
            "{}: {} other jobs (not Open vStorage's: {}) are not kept",
            node.name,
            others.len(),
            abbreviate(&others)
        ));
    }
    Ok(jobs)
}

/// A few names of a set, for a note.
fn abbreviate(names: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = names.iter().take(4).map(String::as_str).collect();
    if names.len() > shown.len() {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Whether memcached runs: `/etc/init.d/memcached status` (exit 0 running, 3 stopped).
async fn read_memcached(host: &Host, node: &Node, notes: &mut Vec<String>) -> Result<bool> {
    let line = "/etc/init.d/memcached status";
    let out = host.exec(node, line, Effect::Read, None).await?;
    Ok(match out.code {
        0 => true,
        3 => false,
        code => {
            notes.push(format!(
                "{}: `{line}` exited {code} ({}): the replica has memcached, stopped",
                node.name,
                crate::host::tail(&out.stderr, 1)
            ));
            false
        }
    })
}

/// Every libvirt domain and its state (`virsh list --all --name`, `virsh domstate`).
async fn read_domains(
    host: &Host,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, DomState>> {
    let line = "virsh list --all --name";
    let out = host.exec_ok(node, line, Effect::Read, None).await?;
    let mut domains = BTreeMap::new();
    for vm in virsh::list_names(&node.name, line, &out.stdout)? {
        let state = match vms::domstate(host, node, &vm).await? {
            virsh::DomState::Running => DomState::Running,
            virsh::DomState::InShutdown => {
                notes.push(format!(
                    "{}: VM {vm:?} was shutting down; on the replica it is off a second later",
                    node.name
                ));
                DomState::InShutdown
            }
            virsh::DomState::ShutOff => DomState::ShutOff,
            virsh::DomState::Paused => DomState::Paused,
            virsh::DomState::Crashed => DomState::Crashed,
            other @ (virsh::DomState::Idle | virsh::DomState::PmSuspended) => {
                let (sim, word) = if other == virsh::DomState::Idle {
                    (DomState::Running, "running")
                } else {
                    (DomState::Paused, "paused")
                };
                notes.push(format!(
                    "{}: VM {vm:?} is {}; the replica has it {word}",
                    node.name,
                    other.as_str()
                ));
                sim
            }
        };
        domains.insert(vm, state);
    }
    Ok(domains)
}

/// backplane1's address and prefix (`10.107.1.11/24`), `None` when the node has no such
/// interface.
async fn read_backplane(
    host: &Host,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<Option<String>> {
    let line = quote::join(&["ip", "-4", "-o", "addr", "show", "dev", topology::BACKPLANE])?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    if out.code != 0 {
        if out.stderr.contains("does not exist") {
            notes.push(format!(
                "{}: no {} interface: the replica has none either",
                node.name,
                topology::BACKPLANE
            ));
            return Ok(None);
        }
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    let Some(ip) = parse::health::ipv4(&out.stdout, &node.name, &line)? else {
        return Ok(None);
    };
    let prefix = out
        .stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{ip}/")))
        .and_then(|p| p.parse::<u8>().ok())
        .filter(|p| *p <= 32)
        .ok_or_else(|| Error::Unexpected {
            node: node.name.clone(),
            command: line.clone(),
            line: out.stdout.lines().next().unwrap_or("").to_string(),
            message: "`inet A.B.C.D/N` with a prefix length N of 0 to 32".into(),
        })?;
    Ok(Some(format!("{ip}/{prefix}")))
}

/// apt's update stamp (epoch seconds), `None` when the lists were never updated cleanly.
async fn read_stamp(host: &Host, node: &Node) -> Result<Option<u64>> {
    let line = quote::join(&["stat", "-c", "%Y", health::UPDATE_STAMP])?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    if out.code != 0 {
        if out.stderr.contains("No such file") {
            return Ok(None);
        }
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    parse::health::epoch_seconds(&out.stdout, &node.name, &line).map(Some)
}

/// The free bytes where packages are downloaded and unpacked; the simulator has one figure
/// per node: the smaller, said in a note when they differ.
async fn read_free(host: &Host, node: &Node, notes: &mut Vec<String>) -> Result<Option<u64>> {
    let paths: Vec<String> = health::PACKAGE_PATHS.map(String::from).into();
    let free = all_ok(health::free_space(host, std::slice::from_ref(node), &paths).await)?;
    let Some((_, free)) = free.into_iter().next() else {
        return Ok(None);
    };
    let values: BTreeSet<u64> = free.values().copied().collect();
    if values.len() > 1 {
        let shown: Vec<String> = free
            .iter()
            .map(|(p, b)| format!("{p} {} MiB", b / 1_048_576))
            .collect();
        notes.push(format!(
            "{}: free space {}: the simulator has one figure per node, the replica has the smaller",
            node.name,
            shown.join(", ")
        ));
    }
    Ok(values.first().copied())
}

/// The `ALLOWED_HOSTS` lines of the framework's `settings.py` — only those lines leave the
/// node (`grep`): the rest of the file (its secret key) is never read. `None` when the node
/// has no such file.
async fn read_allowed_hosts(
    host: &Host,
    node: &Node,
    notes: &mut Vec<String>,
) -> Result<Option<Vec<String>>> {
    let line = quote::join(&["grep", "^ALLOWED_HOSTS", crate::sim::seed::SETTINGS_PY])?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    match out.code {
        0 | 1 => Ok(Some(
            out.stdout
                .lines()
                .filter(|l| l.starts_with("ALLOWED_HOSTS"))
                .map(str::to_string)
                .collect(),
        )),
        2 if out.stderr.contains("No such file") => {
            notes.push(format!(
                "{}: no {}: the replica has none either",
                node.name,
                crate::sim::seed::SETTINGS_PY
            ));
            Ok(None)
        }
        _ => Err(crate::host::failed(&node.name, &line, &out)),
    }
}

/// The cluster names in the node's Arakoon config directory (none when it has no such
/// directory).
async fn read_config_dir(host: &Host, node: &Node) -> Result<Vec<String>> {
    let line = quote::join(&["ls", topology::ARAKOON_CONFIG_DIR])?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    if out.code != 0 {
        if out.stderr.contains("No such file") {
            return Ok(Vec::new());
        }
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Each Arakoon cluster's config (read once, from the first node that lists it, checked by
/// ovsup's parser, kept as [`replica::keep_config`] says) and its master
/// (`arakoon --who-master`, asked of a member node).
async fn read_clusters(
    host: &Host,
    targets: &[Node],
    nodes: &[ObservedNode],
    notes: &mut Vec<String>,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let names: BTreeSet<&String> = nodes.iter().flat_map(|n| &n.arakoon_dirs).collect();
    let node_of = |name: &str| targets.iter().find(|t| t.name == name);
    let mut configs = BTreeMap::new();
    let mut masters = BTreeMap::new();
    let mut dropped_keys = BTreeSet::new();
    for cluster in names {
        let Some(reader) = nodes
            .iter()
            .find(|n| n.arakoon_dirs.contains(cluster))
            .and_then(|n| node_of(&n.name))
        else {
            continue;
        };
        let file = topology::config_path(cluster);
        let text = match host.read_file(reader, &file).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(Error::Remote { stderr, .. }) => {
                notes.push(format!(
                    "Arakoon cluster {cluster}: {file} cannot be read on {} ({}): the replica \
                     has its directory without the file",
                    reader.name,
                    stderr.trim()
                ));
                continue;
            }
            Err(e) => return Err(e),
        };
        let cfg = parse::arakoon::config(&text, &reader.name, &file)?;
        let (kept, dropped) = replica::keep_config(&text);
        dropped_keys.extend(dropped);
        configs.insert(cluster.clone(), kept);
        let asker = cfg
            .members
            .iter()
            .find_map(|m| {
                nodes
                    .iter()
                    .find(|n| n.machine_id.as_deref() == Some(m.id.as_str()))
                    .and_then(|n| node_of(&n.name))
            })
            .unwrap_or(reader);
        match topology::who_master(host, asker, cluster).await? {
            (Some(id), _) => {
                masters.insert(cluster.clone(), id);
            }
            (None, why) => notes.push(format!(
                "Arakoon cluster {cluster} had no master at the capture ({}); the replica \
                 elects one when a majority of its members runs",
                why.map_or("no answer", |w| w.as_str())
            )),
        }
    }
    if !dropped_keys.is_empty() {
        notes.push(format!(
            "Arakoon configs: keys not kept (their values stay on the nodes): {}",
            dropped_keys.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok((configs, masters))
}
