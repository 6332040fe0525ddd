//! Script API of the services primitives (see `src/primitives/services.rs`): `init_system`,
//! `services`, `service_start`, `service_stop`, `service_restart`, `service_pid`, `sysv`.

use rhai::Dynamic;
use rhai::plugin::*;

use super::apt::strings;
use super::call::{arg, fan_out};
use crate::error::Error;
use crate::primitives::services::{self, Action};

fn names_array(names: Vec<String>) -> Dynamic {
    Dynamic::from_array(names.into_iter().map(Dynamic::from).collect())
}

fn control(
    ctx: &NativeCallContext,
    t: Dynamic,
    names: Dynamic,
    action: Action,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let names = arg(ctx, strings(names, "service names"))?;
    fan_out(
        ctx,
        t,
        async |host, nodes| Ok(services::control(host, nodes, action, &names).await),
        names_array,
    )
}

/// The script API of the services primitives.
#[export_module]
pub mod services_api {
    use super::*;

    /// The init system of a node (a Node, a node name, or an array of them): `"upstart"` or
    /// `"systemd"` (a map by node name for an array target). Detected once per node and run:
    /// `test -d /run/systemd/system`, else `initctl version`. Read-only (runs in `--dry-run`).
    /// Raises when the node has neither.
    #[rhai_fn(return_raw)]
    pub fn init_system(ctx: NativeCallContext, t: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(services::init_systems(host, nodes).await),
            |i| Dynamic::from(i.as_str().to_string()),
        )
    }

    /// The services whose job name starts with `prefix` (`"ovs-albaproxy_"`, `""` for all),
    /// sorted, as job names (no `.service`): an array (a map by node name for an array target).
    /// Runs `initctl list` (upstart) or `systemctl list-units --type=service --all --no-legend
    /// --plain 'PREFIX*'` (systemd); read-only, so it runs in `--dry-run` too. Raises on output
    /// it does not recognise, naming the line.
    #[rhai_fn(return_raw)]
    pub fn services(
        ctx: NativeCallContext,
        t: Dynamic,
        prefix: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(services::list(host, nodes, prefix).await),
            names_array,
        )
    }

    /// Start services: `names` is a job name or an array of them; an entry with `*` is a glob
    /// (`"ovs-arakoon-ovsdb*"`) expanded on each node (matching nothing is fine, e.g. a node
    /// without ALBA proxies). Jobs are handled one after the other in the given order, nodes in
    /// parallel. Each job's status is read first: a running job is left alone (not an error).
    /// Runs `start JOB` (upstart) or `systemctl start JOB.service` (systemd), then checks that
    /// the job runs with a pid. Returns the array of jobs it started (a map by node name for an
    /// array target): empty when everything already ran. Raises when a plain name is not a
    /// service of the node (naming node and job), when a start fails or does not leave the job
    /// running; nodes not yet started are not started. With `--dry-run` the status is read and
    /// the start only printed; the result tells which jobs would be started.
    #[rhai_fn(return_raw)]
    pub fn service_start(
        ctx: NativeCallContext,
        t: Dynamic,
        names: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        control(&ctx, t, names, Action::Start)
    }

    /// Stop services (`names` as for `service_start`). A stopped job is left alone (not an
    /// error). Runs `stop JOB` or `systemctl stop JOB.service`, then checks that the job no
    /// longer runs. Returns the array of jobs it stopped (a map by node name for an array
    /// target). Raises as `service_start`. With `--dry-run` the stop is only printed.
    #[rhai_fn(return_raw)]
    pub fn service_stop(
        ctx: NativeCallContext,
        t: Dynamic,
        names: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        control(&ctx, t, names, Action::Stop)
    }

    /// Restart services (`names` as for `service_start`): a running job is restarted
    /// (`restart JOB` / `systemctl restart JOB.service`) and must be running with a pid
    /// afterwards (a new pid is waited for up to 5 s); a stopped job is started. Returns the array of jobs restarted or started (a map by node
    /// name for an array target). Raises as `service_start`. With `--dry-run` the restart is
    /// only printed.
    #[rhai_fn(return_raw)]
    pub fn service_restart(
        ctx: NativeCallContext,
        t: Dynamic,
        names: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        control(&ctx, t, names, Action::Restart)
    }

    /// The main pid of a service (a job name): an int, or `()` when it does not run (a map by
    /// node name for an array target). Runs `status JOB` (upstart) or `systemctl show -p
    /// LoadState -p ActiveState -p MainPID JOB.service` (systemd); read-only, so it runs in
    /// `--dry-run` too. Raises when the node has no such service.
    #[rhai_fn(return_raw)]
    pub fn service_pid(
        ctx: NativeCallContext,
        t: Dynamic,
        name: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(services::pid(host, nodes, name).await),
            |p| p.map_or(Dynamic::UNIT, |p| Dynamic::from_int(i64::from(p))),
        )
    }

    /// Drive a SysV init script, `/etc/init.d/NAME ACTION` (`sysv(nodes(), "memcached",
    /// "stop")`), `action` one of `"start"`, `"stop"`, `"restart"`. For start and stop,
    /// `/etc/init.d/NAME status` is read first (exit 0 running, 3 stopped) and a start of a
    /// running or stop of a stopped service does nothing; when the script cannot tell, the
    /// action runs. Returns whether the action ran (a map by node name for an array target).
    /// Raises when the script fails (node, command, exit code, stderr); nodes not yet started
    /// are not started. With `--dry-run` the status is read and the action only printed.
    #[rhai_fn(return_raw)]
    pub fn sysv(
        ctx: NativeCallContext,
        t: Dynamic,
        name: &str,
        action: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let action = match action {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "restart" => Action::Restart,
            other => {
                return arg(
                    &ctx,
                    Err(Error::argument(format!(
                        "the action must be \"start\", \"stop\" or \"restart\", not {other:?}"
                    ))),
                );
            }
        };
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(services::sysv(host, nodes, name, action).await),
            Dynamic::from_bool,
        )
    }
}
