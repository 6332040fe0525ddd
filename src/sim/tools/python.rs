//! The three OpenvCloud post-upgrade hooks the framework and Arakoon/ALBA upgrades run with
//! `python`. The two post-upgrade scripts are answered here, under the node's lock;
//! `arakoon-restart.py` reaches other nodes and runs outside it (see [`super::restart_hook`]
//! and [`hook_call`]). Any other script is refused.

use super::{Ctx, join};
use crate::sim::SimOutput;

/// Where the OpenvCloud OVS scripts live on a node.
pub const SCRIPTS: &str = "/opt/code/git/0-complexity/openvcloud/scripts/ovs";
/// The Arakoon config directory: one subdirectory per cluster.
pub const ARAKOON_CONFIG: &str = crate::sim::arakoon::CONFIG_DIR;

/// The script name of `python SCRIPTS/NAME …`, and its arguments.
fn script(argv: &[String]) -> Option<(&str, Vec<&str>)> {
    let name = argv
        .get(1)?
        .strip_prefix(SCRIPTS)
        .and_then(|s| s.strip_prefix('/'))?;
    Some((name, argv[2..].iter().map(String::as_str).collect()))
}

/// `(cluster, address)` when `argv` is `python …/arakoon-restart.py --cluster C --address IP`
/// (the options in either order).
pub fn hook_call(argv: &[String]) -> Option<(String, String)> {
    if !matches!(
        argv.first().map(|a| super::basename(a)),
        Some("python" | "python2" | "python2.7")
    ) {
        return None;
    }
    match script(argv)? {
        ("arakoon-restart.py", args) => match args.as_slice() {
            ["--cluster", c, "--address", a] | ["--address", a, "--cluster", c] => {
                Some(((*c).to_owned(), (*a).to_owned()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `python SCRIPT ARGS…` for the post-upgrade hooks.
pub fn run(_ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    match script(argv) {
        Some(("post-upgrade-single.py", args)) if args.is_empty() => {
            SimOutput::ok("Running post-upgrade (single node) ...\nDone\n")
        }
        Some(("post-upgrade-all.py", args)) if args.is_empty() => {
            SimOutput::ok("Running post-upgrade (all nodes) ...\nDone\n")
        }
        _ => SimOutput::not_simulated(&join(argv)),
    }
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
