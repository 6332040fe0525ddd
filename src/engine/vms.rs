//! Script API of the vms primitives (see `src/primitives/vms.rs`): `running_vms`, `stop_vms`,
//! `start_vms`, `vm_record`, `import_legacy_vm_record`.

use rhai::plugin::*;
use rhai::{Dynamic, Map};

use super::call::{arg, call, fan_out, shaped};
use crate::error::Result;
use crate::primitives::vms::StopOptions;
use crate::state::vm_record::VmRecord;

fn names(vms: Vec<String>) -> Dynamic {
    Dynamic::from_array(vms.into_iter().map(Dynamic::from).collect())
}

fn record_map(record: &VmRecord) -> Dynamic {
    let map: Map = record
        .nodes()
        .iter()
        .map(|(n, vms)| (n.as_str().into(), names(vms.clone())))
        .collect();
    map.into()
}

fn stop_options(opts: &Map) -> Result<StopOptions> {
    super::options::known(opts, &["timeout", "force"])?;
    Ok(StopOptions {
        timeout: super::options::seconds(opts, "timeout", StopOptions::default().timeout)?,
        force: super::options::flag(opts, "force")?,
    })
}

/// The script API of the vms primitives.
#[export_module]
pub mod vms_api {
    use super::*;

    /// The names of the running VMs (libvirt domains) of a node, as an array (a map node name
    /// → array for an array of nodes). Runs `virsh list --name`; read-only, so it runs in
    /// `--dry-run` too. Raises when a node cannot be read or prints something unexpected.
    #[rhai_fn(return_raw)]
    pub fn running_vms(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            target,
            async |host, nodes| Ok(crate::primitives::vms::running(host, nodes).await),
            names,
        )
    }

    /// `stop_vms(t)` with the defaults: `timeout` 600 s, no `force`.
    #[rhai_fn(name = "stop_vms", return_raw)]
    pub fn stop_vms_default(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        stop_vms(ctx, target, Map::new())
    }

    /// Shut down every running VM of the nodes and wait until they are off. First records them
    /// in the VM record (`<state-dir>/vm-record.json`, added to what it already holds, written
    /// atomically) so that `start_vms()` brings back exactly those; then sends
    /// `virsh shutdown NAME` to each, on every node in parallel; then reads `virsh list --name`
    /// every second. Options: `timeout` (seconds, default 600), `force` (default false).
    ///
    /// Returns the VMs it stopped (a map node name → array for an array of nodes). When the
    /// timeout passes, raises naming every node and VM still running (they stay recorded);
    /// with `force: true` it powers those off instead (`virsh destroy`) and checks they are
    /// off. Ctrl-C ends the wait. Refused (exit 3) while a legacy `update-ovs.py` VM list has
    /// not been imported (`import_legacy_vm_record()`). With `--dry-run` the shutdowns are only
    /// printed and nothing is recorded.
    #[rhai_fn(name = "stop_vms", return_raw)]
    pub fn stop_vms(
        ctx: NativeCallContext,
        target: Dynamic,
        options: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let opts = arg(&ctx, stop_options(&options))?;
        fan_out(
            &ctx,
            target,
            async |host, nodes| crate::primitives::vms::stop(host, nodes, opts).await,
            names,
        )
    }

    /// Start every VM the VM record holds, on the nodes it names, and return a map node name
    /// → array of the VMs started. Runs `virsh start NAME` (a VM already running counts once
    /// `virsh domstate` says `running`), waits until each is `running`, and only then removes
    /// it from the record; the record file is deleted when it is empty. A VM that does not
    /// start stays recorded and the call raises naming it (the other nodes are still done).
    /// Nodes outside `--limit` are skipped with a warning. Refused (exit 3) while a legacy
    /// VM list has not been imported. With `--dry-run` the starts are only printed and the
    /// record is left as it is.
    #[rhai_fn(name = "start_vms", return_raw)]
    pub fn start_vms_all(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let results = call(&ctx, async |host| {
            crate::primitives::vms::start(host, None).await
        })?;
        shaped(&ctx, None, results, names)
    }

    /// `start_vms()` restricted to some nodes: starts the recorded VMs of a node (an array;
    /// a map node name → array for an array of nodes; a node with nothing recorded gives an
    /// empty array).
    #[rhai_fn(name = "start_vms", return_raw)]
    pub fn start_vms(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            target,
            async |host, nodes| crate::primitives::vms::start(host, Some(nodes)).await,
            names,
        )
    }

    /// The VM record: a map node name → array of the VMs stopped by `stop_vms` and not yet
    /// started again (empty when there are none). Reads `<state-dir>/vm-record.json` and each
    /// target node's copy (`/var/lib/ovsup/vm-record.json`): a VM either holds is kept, a
    /// disagreement is warned about, and what only the nodes knew is written back to the
    /// controller's record (this is how a new controller finds the VMs to start). Read-only on
    /// the nodes. Raises when a record is malformed; refused (exit 3) while a legacy VM list
    /// has not been imported.
    #[rhai_fn(return_raw)]
    pub fn vm_record(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let record = call(&ctx, async |host| {
            crate::primitives::vms::record(host).await
        })?;
        Ok(record_map(&record))
    }

    /// Import the VM list left by the legacy `update-ovs.py` (`/tmp/ovs-machine-state.json`,
    /// or `$OVSUP_LEGACY_VM_RECORD`): merge it into the VM record, then rename it to
    /// `….imported` so it is never imported twice. Returns what it held (a map node name →
    /// array; empty when there is no such file). With `--dry-run`, only reads it.
    #[rhai_fn(return_raw)]
    pub fn import_legacy_vm_record(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let imported = call(&ctx, async |host| {
            host.before_change().await?;
            crate::primitives::vms::import_legacy(host)
        })?;
        Ok(record_map(&imported))
    }
}
