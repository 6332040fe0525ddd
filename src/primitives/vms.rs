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
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::error::{EXIT_FAILED, Error, Result};
use crate::host::{Effect, Host, OnFailure, all_ok};
use crate::inventory::Node;
use crate::primitives::parse::virsh::{self, DomState};
use crate::quote;
use crate::report::{Event, Level};
use crate::state::vm_record::{self, VmRecord};

/// The command that lists the running domains.
pub const LIST: &str = "virsh list --name";

/// How often the state of stopping or starting VMs is read again.
pub const POLL: Duration = Duration::from_secs(1);

/// How long `stop` waits for the guests by default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a VM may take to show `running` after `virsh start`, or `shut off` after
/// `virsh destroy`.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Each node's outcome, in node order.
pub type PerNode<T> = Vec<(String, Result<T>)>;

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

/// Wait `d`, or fail with [`Error::Interrupted`] on Ctrl-C.
async fn pause(host: &Host, d: Duration) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = host.cancel.cancelled() => Err(Error::Interrupted),
    }
}

fn log(host: &Host, level: Level, message: String) {
    host.report(Event::Log { level, message });
}

fn failure(message: String) -> Error {
    Error::Script {
        location: None,
        message,
        code: EXIT_FAILED,
    }
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

/// The VM record as it is now; refused while an unimported legacy record holds VMs.
pub fn record(host: &Host) -> Result<VmRecord> {
    vm_record::refuse_unimported_legacy(&vm_record::legacy_path())?;
    VmRecord::load(&VmRecord::path(&host.state_dir))
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
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    loop {
        let state = domstate(host, node, vm).await?;
        if state.is_off() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(failure(format!(
                "{}: {vm:?} is still {} {} s after `{line}`",
                node.name,
                state.as_str(),
                CONFIRM_TIMEOUT.as_secs()
            )));
        }
        pause(host, POLL).await?;
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
    vm_record::refuse_unimported_legacy(&vm_record::legacy_path())?;
    let record_path = VmRecord::path(&host.state_dir);
    let mut record = VmRecord::load(&record_path)?;
    let listed = all_ok(running(host, nodes).await)?;
    let listed: BTreeMap<String, Vec<String>> = listed.into_iter().collect();

    if !host.dry_run {
        let mut added = 0;
        for (node, vms) in &listed {
            added += record.merge(node, vms);
        }
        if added > 0 {
            record.save(&record_path)?;
            log(
                host,
                Level::Info,
                format!("recorded {added} VMs in {}", record_path.display()),
            );
        }
    }

    let listed = &listed;
    let sent = host
        .fan_out(
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
        .await;
    if host.dry_run {
        return Ok(sent);
    }
    if sent
        .iter()
        .any(|(_, r)| matches!(r, Err(Error::Interrupted)))
    {
        return Err(Error::Interrupted);
    }

    // Wait for the guests, polling every node that still has some.
    let mut outcome: BTreeMap<String, Result<Vec<String>>> = BTreeMap::new();
    let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, r) in sent {
        match r {
            Ok(vms) if !vms.is_empty() => {
                pending.insert(name.clone(), vms.clone());
                outcome.insert(name, Ok(vms));
            }
            other => {
                outcome.insert(name, other);
            }
        }
    }
    let count: usize = pending.values().map(Vec::len).sum();
    if count > 0 {
        log(
            host,
            Level::Info,
            format!(
                "waiting up to {} s for {count} VMs on {} nodes to shut down",
                opts.timeout.as_secs(),
                pending.len()
            ),
        );
    }
    let deadline = Instant::now() + opts.timeout;
    while !pending.is_empty() {
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
        let now = Instant::now();
        if pending.is_empty() || now >= deadline {
            break;
        }
        pause(host, POLL.min(deadline - now)).await?;
    }

    if !pending.is_empty() {
        if opts.force {
            let stuck: Vec<Node> = nodes
                .iter()
                .filter(|n| pending.contains_key(&n.name))
                .cloned()
                .collect();
            log(
                host,
                Level::Warn,
                format!(
                    "powering off VMs that ignored the shutdown for {} s: {}",
                    opts.timeout.as_secs(),
                    describe(&pending)
                ),
            );
            let pending = &pending;
            let destroyed = host
                .fan_out(
                    "virsh destroy",
                    &stuck,
                    OnFailure::Continue,
                    |node| async move {
                        let vms = pending.get(&node.name).cloned().unwrap_or_default();
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
        } else {
            for (name, vms) in &pending {
                outcome.insert(
                    name.clone(),
                    Err(failure(format!(
                        "{name}: VMs still running {} s after `virsh shutdown`: {}; they stay in \
                         the VM record. Wait longer (stop_vms(t, #{{timeout: SECONDS}})), shut \
                         them down from inside the guest, or power them off with \
                         stop_vms(t, #{{force: true}})",
                        opts.timeout.as_secs(),
                        quoted_list(vms)
                    ))),
                );
            }
        }
    }

    Ok(nodes
        .iter()
        .filter_map(|n| outcome.remove_entry(&n.name))
        .collect())
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
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    loop {
        let state = domstate(host, node, vm).await?;
        match state {
            DomState::Running | DomState::Idle => break,
            s if s.is_off() => {
                return Err(failure(format!(
                    "{}: {vm:?} is {} right after `{line}`",
                    node.name,
                    s.as_str()
                )));
            }
            s if Instant::now() >= deadline => {
                return Err(failure(format!(
                    "{}: {vm:?} is still {} {} s after `{line}`",
                    node.name,
                    s.as_str(),
                    CONFIRM_TIMEOUT.as_secs()
                )));
            }
            _ => pause(host, POLL).await?,
        }
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
    vm_record::refuse_unimported_legacy(&vm_record::legacy_path())?;
    let record_path = VmRecord::path(&host.state_dir);
    let record = VmRecord::load(&record_path)?;
    let mut missing: Vec<(String, Result<Vec<String>>)> = Vec::new();
    let targets: Vec<Node> = match nodes {
        Some(nodes) => nodes.to_vec(),
        None => {
            let in_scope = host.targets(None);
            let mut chosen = Vec::new();
            for name in record.nodes().keys() {
                if let Some(n) = in_scope.iter().find(|n| &n.name == name) {
                    chosen.push(n.clone());
                } else if host.inventory.node(name).is_some() {
                    log(
                        host,
                        Level::Warn,
                        format!(
                            "start_vms: {name} is outside this run's nodes (--limit); its VMs \
                             stay in the VM record: {}",
                            quoted_list(record.vms(name))
                        ),
                    );
                } else {
                    missing.push((
                        name.clone(),
                        Err(failure(format!(
                            "{name}: the VM record names this node, which is not in the \
                             inventory; its VMs stay recorded: {}",
                            quoted_list(record.vms(name))
                        ))),
                    ));
                }
            }
            chosen
        }
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
                let results = join_all(
                    vms.iter()
                        .map(|vm| start_one(host, &node, vm, record, record_path)),
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
                    Err(failure(format!(
                        "{}: {} of {} VMs did not start and stay in the VM record:\n    {}",
                        node.name,
                        failed.len(),
                        vms.len(),
                        failed.join("\n    ")
                    )))
                }
            },
        )
        .await;
    if results
        .iter()
        .any(|(_, r)| matches!(r, Err(Error::Interrupted)))
    {
        return Err(Error::Interrupted);
    }
    results.extend(missing);
    Ok(results)
}
