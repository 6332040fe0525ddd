//! The VMs (libvirt domains) of the nodes: list the running ones, stop them around an
//! upgrade, and start again exactly those afterwards.
//!
//! `stop` records the running VMs in the durable VM record ([`crate::state::vm_record`])
//! *before* the first `virsh shutdown`, then polls with a deadline (a guest may ignore the
//! request: the legacy script polled forever) and names every VM still running when it
//! passes; only `force` powers those off. `start` starts what the record holds and removes
//! each VM from it once `virsh domstate` says it runs, so an interrupted start can be
//! resumed and the record is empty (and its file gone) when everything is back.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;

use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, PerNode, all_ok, interrupted};
use crate::inventory::Node;
use crate::primitives::parse::virsh::{self, DomState};
use crate::primitives::vm_mirror;
use crate::quote;
use crate::report::{Event, Level};
use crate::state::vm_record::{self, VmRecord};
use crate::wait::{Probe, Waited};

/// The command that lists the running domains.
pub const LIST: &str = "virsh list --name";

/// How often the state of stopping or starting VMs is read again.
pub const POLL: Duration = Duration::from_secs(1);

/// How long `stop` waits for the guests by default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a VM may take to show `running` after `virsh start`, or `shut off` after
/// `virsh destroy`.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// How `stop` waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    /// How long the guests get to shut down after `virsh shutdown`.
    pub timeout: Duration,
    /// Power off (`virsh destroy`) the VMs still running when `timeout` passes.
    pub force: bool,
}

impl Default for StopOptions {
    fn default() -> Self {
        StopOptions {
            timeout: DEFAULT_STOP_TIMEOUT,
            force: false,
        }
    }
}

fn log(host: &Host, level: Level, message: String) {
    host.report(Event::Log { level, message });
}

/// The running domains of one node (`virsh list --name`, read-only).
pub async fn list_running(host: &Host, node: &Node) -> Result<Vec<String>> {
    let out = host.exec_ok(node, LIST, Effect::Read, None).await?;
    virsh::list_names(&node.name, LIST, &out.stdout)
}

/// The state of one domain (`virsh domstate NAME`, read-only).
pub async fn domstate(host: &Host, node: &Node, vm: &str) -> Result<DomState> {
    let line = quote::join(&["virsh", "domstate", vm])?;
    let out = host.exec_ok(node, &line, Effect::Read, None).await?;
    virsh::domstate(&node.name, &line, &out.stdout)
}

/// The running domains of every node, in parallel (read-only: runs in a dry run too).
pub async fn running(host: &Host, nodes: &[Node]) -> PerNode<Vec<String>> {
    host.fan_out(LIST, nodes, OnFailure::Continue, |node| async move {
        list_running(host, &node).await
    })
    .await
}

/// The VM record as it is now, reconciled with the nodes' copies (see
/// [`crate::primitives::vm_mirror`]); refused while an unimported legacy record holds VMs.
pub async fn record(host: &Host) -> Result<VmRecord> {
    vm_mirror::reconciled(host).await
}

/// Merge the legacy `update-ovs.py` record into the VM record and rename it `….imported`;
/// returns what it held. In a dry run, only reads it.
pub fn import_legacy(host: &Host) -> Result<VmRecord> {
    let legacy = vm_record::legacy_path();
    if host.dry_run {
        return if legacy.exists() {
            VmRecord::load(&legacy)
        } else {
            Ok(VmRecord::default())
        };
    }
    let imported = vm_record::import_legacy(&VmRecord::path(&host.state_dir), &legacy)?;
    if !imported.is_empty() {
        log(
            host,
            Level::Info,
            format!(
                "imported the legacy VM record {} into {}",
                legacy.display(),
                VmRecord::path(&host.state_dir).display()
            ),
        );
    }
    Ok(imported)
}

/// `virsh shutdown NAME`; a VM that stopped meanwhile is fine.
async fn shutdown(host: &Host, node: &Node, vm: &str) -> Result<()> {
    let line = quote::join(&["virsh", "shutdown", vm])?;
    let out = host.exec(node, &line, Effect::Change, None).await?;
    if out.code == 0 || virsh::not_running(&out.stderr) {
        Ok(())
    } else {
        Err(crate::host::failed(&node.name, &line, &out))
    }
}

/// `virsh destroy NAME`, then wait until `virsh domstate` says it is off.
async fn destroy(host: &Host, node: &Node, vm: &str) -> Result<()> {
    let line = quote::join(&["virsh", "destroy", vm])?;
    let out = host.exec(node, &line, Effect::Change, None).await?;
    if out.code != 0 && !virsh::not_running(&out.stderr) {
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    let waited = host
        .poll_until(CONFIRM_TIMEOUT, POLL, async || {
            let state = domstate(host, node, vm).await?;
            Ok(if state.is_off() {
                Probe::Done(())
            } else {
                Probe::NotYet(state)
            })
        })
        .await?;
    match waited {
        Waited::Done(()) => Ok(()),
        Waited::Expired(state) => Err(Error::node_state(
            &node.name,
            format!(
                "{vm:?} is still {} {} s after `{line}`",
                state.as_str(),
                CONFIRM_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Stop every running VM of `nodes`: record them durably (merged into what the record holds),
/// `virsh shutdown` each, in parallel on every node, then poll until they are off or
/// `opts.timeout` passes. Returns per node the VMs it stopped. A node whose VMs are still
/// running at the deadline fails naming them (they stay recorded), unless `opts.force` powers
/// them off. In a dry run nothing is recorded and the shutdowns are only printed.
///
/// The outer error is a failure before any VM was touched (legacy record not imported,
/// unreadable record, a node that cannot be listed), or Ctrl-C.
pub async fn stop(host: &Host, nodes: &[Node], opts: StopOptions) -> Result<PerNode<Vec<String>>> {
    let listed = record_running(host, nodes).await?;
    let sent = send_shutdowns(host, nodes, &listed).await;
    if host.dry_run {
        return Ok(sent);
    }
    interrupted(&sent)?;
    let mut outcome: BTreeMap<String, Result<Vec<String>>> = BTreeMap::new();
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, r) in sent {
        if let Ok(vms) = &r
            && !vms.is_empty()
        {
            pending.insert(name.clone(), vms.clone());
        }
        outcome.insert(name, r);
    }
    let stuck = wait_off(host, nodes, pending, opts.timeout, &mut outcome).await?;
    if !stuck.is_empty() {
        if opts.force {
            power_off(host, nodes, &stuck, opts.timeout, &mut outcome).await?;
        } else {
            for (name, vms) in &stuck {
                outcome.insert(name.clone(), Err(still_running(name, vms, opts.timeout)));
            }
        }
    }
    Ok(nodes
        .iter()
        .filter_map(|n| outcome.remove_entry(&n.name))
        .collect())
}

/// The first phase of [`stop`]: list the running VMs of every node and, unless in a dry run,
/// add them to the VM record — the controller's and each node's copy — before anything is
/// shut down.
async fn record_running(host: &Host, nodes: &[Node]) -> Result<BTreeMap<String, Vec<String>>> {
    let record_path = VmRecord::path(&host.state_dir);
    let mut record = vm_mirror::reconciled(host).await?;
    let listed: BTreeMap<String, Vec<String>> =
        all_ok(running(host, nodes).await)?.into_iter().collect();
    if host.dry_run {
        return Ok(listed);
    }
    let added: usize = listed
        .iter()
        .map(|(node, vms)| record.merge(node, vms))
        .sum();
    if added > 0 {
        host.before_change().await?;
        record.save(&record_path)?;
        let holding: Vec<Node> = nodes
            .iter()
            .filter(|n| !record.vms(&n.name).is_empty())
            .cloned()
            .collect();
        vm_mirror::write_all(host, &holding, &record).await?;
        log(
            host,
            Level::Info,
            format!(
                "recorded {added} VMs in {} and on their nodes ({})",
                record_path.display(),
                vm_mirror::NODE_PATH
            ),
        );
    }
    Ok(listed)
}

/// `virsh shutdown` every listed VM, all VMs of a node at once, nodes in parallel; a failure
/// stops the nodes not yet started. Returns per node the VMs asked to shut down.
async fn send_shutdowns(
    host: &Host,
    nodes: &[Node],
    listed: &BTreeMap<String, Vec<String>>,
) -> PerNode<Vec<String>> {
    host.fan_out(
        "virsh shutdown",
        nodes,
        OnFailure::Stop,
        |node| async move {
            let vms = listed.get(&node.name).cloned().unwrap_or_default();
            let results = join_all(vms.iter().map(|vm| shutdown(host, &node, vm))).await;
            results.into_iter().collect::<Result<Vec<()>>>()?;
            Ok(vms)
        },
    )
    .await
}

/// Wait until the `pending` VMs are off, reading `virsh list --name` on the nodes that still
/// have some; a node that cannot be read gets its error in `outcome`. Returns the VMs still
/// running when `timeout` passed (empty when all went off).
async fn wait_off(
    host: &Host,
    nodes: &[Node],
    mut pending: BTreeMap<String, Vec<String>>,
    timeout: Duration,
    outcome: &mut BTreeMap<String, Result<Vec<String>>>,
) -> Result<BTreeMap<String, Vec<String>>> {
    let count: usize = pending.values().map(Vec::len).sum();
    if count == 0 {
        return Ok(pending);
    }
    log(
        host,
        Level::Info,
        format!(
            "waiting up to {} s for {count} VMs on {} nodes to shut down",
            timeout.as_secs(),
            pending.len()
        ),
    );
    let waited = host
        .poll_until(timeout, POLL, async || {
            let polled: Vec<Node> = nodes
                .iter()
                .filter(|n| pending.contains_key(&n.name))
                .cloned()
                .collect();
            for (name, r) in running(host, &polled).await {
                match r {
                    Ok(active) => {
                        if let Some(vms) = pending.get_mut(&name) {
                            vms.retain(|v| active.contains(v));
                        }
                    }
                    Err(Error::Interrupted) => return Err(Error::Interrupted),
                    Err(e) => {
                        pending.remove(&name);
                        outcome.insert(name, Err(e));
                    }
                }
            }
            pending.retain(|_, vms| !vms.is_empty());
            Ok(if pending.is_empty() {
                Probe::Done(())
            } else {
                Probe::NotYet(())
            })
        })
        .await?;
    Ok(match waited {
        Waited::Done(()) => BTreeMap::new(),
        Waited::Expired(()) => pending,
    })
}

/// Power off (`virsh destroy`) the VMs that ignored their shutdown; a node where that fails
/// gets its error in `outcome`.
async fn power_off(
    host: &Host,
    nodes: &[Node],
    stuck: &BTreeMap<String, Vec<String>>,
    timeout: Duration,
    outcome: &mut BTreeMap<String, Result<Vec<String>>>,
) -> Result<()> {
    let targets: Vec<Node> = nodes
        .iter()
        .filter(|n| stuck.contains_key(&n.name))
        .cloned()
        .collect();
    log(
        host,
        Level::Warn,
        format!(
            "powering off VMs that ignored the shutdown for {} s: {}",
            timeout.as_secs(),
            describe(stuck)
        ),
    );
    let destroyed = host
        .fan_out(
            "virsh destroy",
            &targets,
            OnFailure::Continue,
            |node| async move {
                let vms = stuck.get(&node.name).cloned().unwrap_or_default();
                let results = join_all(vms.iter().map(|vm| destroy(host, &node, vm))).await;
                results.into_iter().collect::<Result<Vec<()>>>()
            },
        )
        .await;
    for (name, r) in destroyed {
        match r {
            Ok(_) => {}
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                outcome.insert(name, Err(e));
            }
        }
    }
    Ok(())
}

/// The error of a node whose VMs outlived their shutdown's deadline.
fn still_running(node: &str, vms: &[String], timeout: Duration) -> Error {
    Error::node_state(
        node,
        format!(
            "VMs still running {} s after `virsh shutdown`: {}; they stay in the VM record. \
             Wait longer (stop_vms(t, #{{timeout: SECONDS}})), shut them down from inside the \
             guest, or power them off with stop_vms(t, #{{force: true}})",
            timeout.as_secs(),
            quoted_list(vms)
        ),
    )
}

fn quoted_list(vms: &[String]) -> String {
    vms.iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(by_node: &BTreeMap<String, Vec<String>>) -> String {
    by_node
        .iter()
        .map(|(n, vms)| format!("{n}: {}", quoted_list(vms)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `virsh start NAME` ("already active" is fine), then wait until `virsh domstate` says it
/// runs, then remove it from the record (rewritten atomically).
async fn start_one(
    host: &Host,
    node: &Node,
    vm: &str,
    record: &Mutex<VmRecord>,
    record_path: &std::path::Path,
) -> Result<()> {
    let line = quote::join(&["virsh", "start", vm])?;
    let out = host.exec(node, &line, Effect::Change, None).await?;
    if host.dry_run {
        return Ok(());
    }
    if out.code != 0 && !virsh::already_active(&out.stderr) {
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    let waited = host
        .poll_until(CONFIRM_TIMEOUT, POLL, async || {
            match domstate(host, node, vm).await? {
                DomState::Running | DomState::Idle => Ok(Probe::Done(())),
                s if s.is_off() => Err(Error::node_state(
                    &node.name,
                    format!("{vm:?} is {} right after `{line}`", s.as_str()),
                )),
                s => Ok(Probe::NotYet(s)),
            }
        })
        .await?;
    if let Waited::Expired(s) = waited {
        return Err(Error::node_state(
            &node.name,
            format!(
                "{vm:?} is still {} {} s after `{line}`",
                s.as_str(),
                CONFIRM_TIMEOUT.as_secs()
            ),
        ));
    }
    let mut record = record
        .lock()
        .map_err(|_| Error::Internal("VM record lock poisoned".into()))?;
    record.remove(&node.name, vm);
    record.save(record_path)
}

/// Start the VMs the record holds — on `nodes`, or on every node it names when `None` — and
/// return per node the VMs started. Each VM leaves the record once it is confirmed running;
/// the record file goes when it is empty. A VM that does not start stays recorded and fails
/// its node. Every node is tried even when another fails. In a dry run the starts are only
/// printed and the record is left as it is.
///
/// A node of the record outside the run's targets (`--limit`) is skipped with a warning; one
/// not in the inventory fails. The outer error is a refusal (unimported legacy record), an
/// unreadable record, or Ctrl-C.
pub async fn start(host: &Host, nodes: Option<&[Node]>) -> Result<PerNode<Vec<String>>> {
    let record_path = VmRecord::path(&host.state_dir);
    let record = vm_mirror::reconciled(host).await?;
    let (targets, mut missing) = match nodes {
        Some(nodes) => (nodes.to_vec(), Vec::new()),
        None => recorded_targets(host, &record),
    };
    let todo: BTreeMap<String, Vec<String>> = targets
        .iter()
        .map(|n| (n.name.clone(), record.vms(&n.name).to_vec()))
        .collect();
    let record = Mutex::new(record);
    let (record, record_path, todo) = (&record, record_path.as_path(), &todo);
    let mut results = host
        .fan_out(
            "virsh start",
            &targets,
            OnFailure::Continue,
            |node| async move {
                let vms = todo.get(&node.name).cloned().unwrap_or_default();
                let started = start_node(host, &node, vms.clone(), record, record_path).await;
                // The node's copy follows, once for all its VMs (more VMs in it than still
                // stopped, after a crash, only means a start that finds them running).
                let left = record
                    .lock()
                    .map_err(|_| Error::Internal("VM record lock poisoned".into()))?
                    .vms(&node.name)
                    .to_vec();
                if left.len() != vms.len() {
                    vm_mirror::write(host, &node, &left).await?;
                }
                started
            },
        )
        .await;
    interrupted(&results)?;
    results.append(&mut missing);
    Ok(results)
}

/// The nodes of the record that are targets of this run; the others are warned about (outside
/// `--limit`) or fail (not in the inventory), keeping their VMs recorded.
fn recorded_targets(host: &Host, record: &VmRecord) -> (Vec<Node>, PerNode<Vec<String>>) {
    let in_scope = host.targets(None);
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for name in record.nodes().keys() {
        if let Some(n) = in_scope.iter().find(|n| &n.name == name) {
            chosen.push(n.clone());
        } else if host.inventory.node(name).is_some() {
            log(
                host,
                Level::Warn,
                format!(
                    "start_vms: {name} is outside this run's nodes (--limit); its VMs stay in \
                     the VM record: {}",
                    quoted_list(record.vms(name))
                ),
            );
        } else {
            missing.push((
                name.clone(),
                Err(Error::node_state(
                    name,
                    format!(
                        "the VM record names this node, which is not in the inventory; its VMs \
                         stay recorded: {}",
                        quoted_list(record.vms(name))
                    ),
                )),
            ));
        }
    }
    (chosen, missing)
}

/// Start the recorded `vms` of one node, all at once; the node fails naming those that did
/// not start (they stay recorded).
async fn start_node(
    host: &Host,
    node: &Node,
    vms: Vec<String>,
    record: &Mutex<VmRecord>,
    record_path: &std::path::Path,
) -> Result<Vec<String>> {
    let results = join_all(
        vms.iter()
            .map(|vm| start_one(host, node, vm, record, record_path)),
    )
    .await;
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(()) => {}
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        Ok(vms)
    } else {
        Err(Error::node_state(
            &node.name,
            format!(
                "{} of {} VMs did not start and stay in the VM record:\n    {}",
                failed.len(),
                vms.len(),
                failed.join("\n    ")
            ),
        ))
    }
}
