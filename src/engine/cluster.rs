//! Script API of the cluster primitives (see `src/primitives/cluster.rs`): `set_offline`,
//! `set_online`, `is_offline`, `require_offline`.

use rhai::plugin::*;

/// The script API of the cluster primitives.
#[export_module]
pub mod cluster_api {
    use rhai::Dynamic;

    use crate::engine::call::{arg, fan_out, host};
    use crate::engine::target::Target;
    use crate::primitives::cluster;

    /// Take the node(s) offline: kill the cloud agent (`fuser -k 4446/tcp`, where
    /// `fuser 4446/tcp` shows it listening), then read the port again until nothing listens
    /// (up to 10 s). Returns whether the node was online, i.e. was changed (a map node name →
    /// bool for an array). Raises naming every node still online; a failure stops the nodes
    /// not yet started. With `--dry-run` the kill is only printed.
    #[rhai_fn(return_raw)]
    pub fn set_offline(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            target,
            async |host, nodes| Ok(cluster::set_offline(host, nodes).await),
            Dynamic::from_bool,
        )
    }

    /// Bring the node(s) online: where nothing listens on 4446/tcp, run
    /// `ays start -n jsagent` and wait (up to 60 s, reading `fuser 4446/tcp` every second)
    /// until the agent listens. Returns whether the node was offline, i.e. was changed (a map
    /// node name → bool for an array). Every node is tried; raises naming the nodes still
    /// offline. Ctrl-C ends the wait. With `--dry-run` the start is only printed.
    #[rhai_fn(return_raw)]
    pub fn set_online(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            target,
            async |host, nodes| Ok(cluster::set_online(host, nodes).await),
            Dynamic::from_bool,
        )
    }

    /// True when nothing listens on the cloud agent's port (`fuser 4446/tcp` exits 1): the
    /// node is offline. A map node name → bool for an array. Read-only: runs in `--dry-run`
    /// too. Raises when a node cannot be read or answers something unexpected.
    #[rhai_fn(return_raw)]
    pub fn is_offline(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            target,
            async |host, nodes| Ok(cluster::is_offline(host, nodes).await),
            Dynamic::from_bool,
        )
    }

    /// Refuse to go on (exit 3) unless every node given is offline, naming every node still
    /// online and saying to run `ovsup preprocess` (or `set_offline`) first. Put it before any
    /// step that must not race the cloud controller. Read-only; with `--dry-run` an online
    /// node is only warned about, since the dry run's own `set_offline` changed nothing.
    #[rhai_fn(return_raw)]
    pub fn require_offline(
        ctx: NativeCallContext,
        target: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let host = host(&ctx)?;
        let target = arg(&ctx, Target::from_dynamic(&host, target))?;
        arg(
            &ctx,
            host.block_on(cluster::require_offline(&host, &target.nodes)),
        )
    }
}
