//! The three OpenvCloud post-upgrade hooks the framework and Arakoon/ALBA upgrades run with
//! `python`. `arakoon-restart.py` really restarts the cluster's job (new pid) and fails when
//! the cluster is not one of the node's Arakoon clusters; any other script is refused.

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::fs::Kind;

/// Where the OpenvCloud OVS scripts live on a node.
pub const SCRIPTS: &str = "/opt/code/git/0-complexity/openvcloud/scripts/ovs";
/// The Arakoon config directory: one subdirectory per cluster.
pub const ARAKOON_CONFIG: &str = "/opt/OpenvStorage/config/arakoon";

/// `python SCRIPT ARGS…` for the simulated hooks.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let Some(script) = argv.get(1) else {
        return SimOutput::not_simulated(&join(argv));
    };
    let Some(name) = script
        .strip_prefix(SCRIPTS)
        .and_then(|s| s.strip_prefix('/'))
    else {
        return SimOutput::not_simulated(&join(argv));
    };
    let args: Vec<&str> = argv[2..].iter().map(String::as_str).collect();
    match (name, args.as_slice()) {
        ("post-upgrade-single.py", []) => {
            SimOutput::ok("Running post-upgrade (single node) ...\nDone\n")
        }
        ("post-upgrade-all.py", []) => {
            SimOutput::ok("Running post-upgrade (all nodes) ...\nDone\n")
        }
        ("arakoon-restart.py", ["--cluster", cluster, "--address", address])
        | ("arakoon-restart.py", ["--address", address, "--cluster", cluster]) => {
            arakoon_restart(ctx, cluster, address)
        }
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

fn arakoon_restart(ctx: &mut Ctx<'_>, cluster: &str, address: &str) -> SimOutput {
    if address.parse::<std::net::Ipv4Addr>().is_err() {
        return SimOutput::fail(
            1,
            format!("arakoon-restart.py: invalid --address {address:?}: not an IPv4 address\n"),
        );
    }
    let dir = format!("{ARAKOON_CONFIG}/{cluster}");
    if cluster.is_empty() || cluster.contains('/') || ctx.fs.kind(&dir) != Some(Kind::Dir) {
        return SimOutput::fail(
            1,
            format!(
                "arakoon-restart.py: no Arakoon cluster {cluster:?} on this node ({dir} does not exist)\n"
            ),
        );
    }
    let job = format!("ovs-arakoon-{cluster}");
    if !ctx.state.jobs.contains_key(&job) {
        return SimOutput::fail(
            1,
            format!("arakoon-restart.py: cluster {cluster:?} has no service {job} on this node\n"),
        );
    }
    if ctx.state.faults.failing_services.contains(&job) {
        if let Some(j) = ctx.state.jobs.get_mut(&job) {
            j.running = false;
            j.pid = 0;
            j.failed = true;
        }
        return SimOutput::fail(
            1,
            format!("arakoon-restart.py: restarting {job} failed: Job failed to start\n"),
        );
    }
    let pid = ctx.state.alloc_pid();
    if let Some(j) = ctx.state.jobs.get_mut(&job) {
        j.running = true;
        j.pid = pid;
        j.failed = false;
    }
    SimOutput::ok(format!(
        "Restarting Arakoon cluster {cluster} ({address})\n{job} restarted, process {pid}\n"
    ))
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn hooks() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let p = "/opt/code/git/0-complexity/openvcloud/scripts/ovs";
        assert_eq!(
            run(&n, &format!("python {p}/post-upgrade-single.py")).code,
            0
        );
        assert_eq!(run(&n, &format!("python {p}/post-upgrade-all.py")).code, 0);
        let before = n.state().expect("state").jobs["ovs-arakoon-mybackend-abm"].pid;
        let o = run(
            &n,
            &format!("python {p}/arakoon-restart.py --cluster mybackend-abm --address 10.107.1.11"),
        );
        assert_eq!(o.code, 0, "{o:?}");
        assert_ne!(
            n.state().expect("state").jobs["ovs-arakoon-mybackend-abm"].pid,
            before
        );
        let o = run(
            &n,
            &format!("python {p}/arakoon-restart.py --cluster nope --address 10.107.1.11"),
        );
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("no Arakoon cluster \"nope\""),
            "{}",
            o.stderr
        );
        let o = run(&n, "python -c 'print(1)'");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (127, "ovs-sim: not simulated: python -c 'print(1)'\n")
        );
        let single = n
            .state()
            .expect("state")
            .history
            .iter()
            .filter(|l| l.contains("post-upgrade-single.py"))
            .count();
        assert_eq!(single, 1);
    }
}
