//! The `arakoon` client as the upgrade asks it about a cluster: `--who-master`,
//! `--expect-progress-possible`, `--node-state ID` (each with `-config CFG`, one dash) and
//! `--version`. It reads the config from the node's filesystem and looks at the member
//! nodes' jobs through the peers (see [`crate::sim::peers`]), so it runs without holding the
//! node's lock. Errors are OCaml's: `Fatal error: exception …` on stderr, exit 2.

use crate::sim::arakoon::{self, ClusterView, Election};
use crate::sim::error::SimError;
use crate::sim::peers::Peers;
use crate::sim::state::now_ms;
use crate::sim::tools::join;
use crate::sim::{SimNode, SimOutput};

/// Where arakoon looks for its config without `-config`.
const DEFAULT_CONFIG: &str = "cfg/arakoon.ini";

const USAGE: &str = "arakoon --<command>\n\
  --version  : shows version\n\
  --who-master  : tells you who's the master\n\
  --expect-progress-possible  : tells you if the master thinks progress is possible\n\
  --node-state <node>  : tells you the state of a node\n\
  -config  : specifies config file (default = cfg/arakoon.ini )\n\
  -help  Display this list of options\n\
  --help  Display this list of options\n";

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Query {
    Version,
    WhoMaster,
    ProgressPossible,
    NodeState(String),
}

fn fatal(exception: &str) -> SimOutput {
    SimOutput::fail(2, format!("Fatal error: exception {exception}\n"))
}

fn usage_error(message: &str) -> SimOutput {
    SimOutput::fail(2, format!("arakoon: {message}.\n{USAGE}"))
}

/// Splits the arguments the way OCaml's `Arg` does; `Err` is the answer to give instead.
fn parse(argv: &[String]) -> Result<(Query, String), SimOutput> {
    let mut query = None;
    let mut config = DEFAULT_CONFIG.to_owned();
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        let mut value = |opt: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| usage_error(&format!("option '{opt}' needs an argument")))
        };
        let q = match a.as_str() {
            "--version" => Query::Version,
            "--who-master" => Query::WhoMaster,
            "--expect-progress-possible" => Query::ProgressPossible,
            "--node-state" => Query::NodeState(value("--node-state")?),
            "-config" => {
                config = value("-config")?;
                continue;
            }
            o if o.starts_with('-') => return Err(usage_error(&format!("unknown option '{o}'"))),
            _ => return Err(SimOutput::not_simulated(&join(argv))),
        };
        if query.replace(q).is_some() {
            return Err(SimOutput::not_simulated(&join(argv)));
        }
    }
    query
        .map(|q| (q, config))
        .ok_or_else(|| SimOutput::not_simulated(&join(argv)))
}

/// `arakoon …` on `node`.
pub fn run(node: &SimNode, argv: &[String]) -> Result<SimOutput, SimError> {
    let own = node.state()?;
    let Some(installed) = own
        .packages
        .get("arakoon")
        .and_then(|p| p.apt_installed())
        .map(str::to_owned)
    else {
        return Ok(SimOutput::fail(127, "sh: 1: arakoon: not found\n"));
    };
    let (query, config) = match parse(argv) {
        Ok(parsed) => parsed,
        Err(answer) => return Ok(answer),
    };
    if query == Query::Version {
        return Ok(SimOutput::ok(version(&installed)));
    }
    let Some(text) = node.read_file(&config)? else {
        return Ok(fatal(&format!(
            "Sys_error(\"{config}: No such file or directory\")"
        )));
    };
    let cfg = match arakoon::parse_cfg(&text) {
        Ok(cfg) => cfg,
        Err(e) => return Ok(fatal(&format!("Failure(\"{e}\")"))),
    };
    let view = arakoon::observe(&cfg, &Peers::beside(node.state_path()), &own)?;
    Ok(answer(&query, &view, now_ms()))
}

/// The answer to a cluster query, from the cluster as observed at `now_ms`.
fn answer(query: &Query, view: &ClusterView, now_ms: u64) -> SimOutput {
    let election = view.election(now_ms);
    match (query, &election) {
        (Query::NodeState(id), _) => node_state(id, view, &election),
        (_, Election::AllDown) => fatal("Failure(\"too many nodes down\")"),
        (_, Election::NoMaster) => fatal("Failure(\"No Master\")"),
        (Query::WhoMaster, Election::Master(id)) => SimOutput::ok(format!("{id}\n")),
        (_, Election::Master(_)) => {
            let possible = view.running() >= view.majority();
            SimOutput::ok(format!("{possible}\n"))
        }
    }
}

/// `--node-state ID`: the member's state word, or the exception of a member that is down.
fn node_state(id: &str, view: &ClusterView, election: &Election) -> SimOutput {
    let Some(member) = view.members.iter().find(|m| m.id == id) else {
        return fatal("Not_found");
    };
    if !member.running {
        return fatal("Unix.Unix_error(Unix.ECONNREFUSED, \"connect\", \"\")");
    }
    let word = match election {
        Election::Master(m) if m == id => "Stable_master",
        Election::Master(_) => "Slave_steady_state",
        _ => "Election_suggest",
    };
    SimOutput::ok(format!("{word}\n"))
}

/// `arakoon --version` for the installed package version (`1.9.17-1` → `1.9.17`).
fn version(installed: &str) -> String {
    let v = installed.rsplit_once('-').map_or(installed, |(v, _)| v);
    format!(
        "version: {v}\n\
         git_revision: \"tags/{v}-0-g5c1b2c8\"\n\
         compiled: \"15/03/2017 09:41:27 UTC\"\n\
         machine: \"ovs-build 4.4.0-66-generic x86_64 x86_64 x86_64 GNU/Linux\"\n\
         compiler_version : \"4.03.0\"\n\
         tlogEntriesPerFile: 100000\n\
         dependencies:\n\
         camltc           0.9.4  Tokyo Cabinet bindings for OCaml.\n\
         lwt              2.5.2  A cooperative threads library for OCaml\n"
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::sim::SimOutput;
    use crate::sim::layout::Layout;
    use crate::sim::seed::{boot_ms, machine_id};
    use crate::sim::state::now_ms;
    use crate::sim::tools::testutil::{cluster_of, open, run};

    fn ask(node: &crate::sim::SimNode, what: &str, cluster: &str) -> SimOutput {
        run(
            node,
            &format!(
                "arakoon {what} -config /opt/OpenvStorage/config/arakoon/{cluster}/{cluster}.cfg"
            ),
        )
    }

    const NO_MASTER: &str = "Fatal error: exception Failure(\"No Master\")\n";

    /// The member of `names` a fresh cluster elects: the longest running, then lowest id.
    fn expected_master(names: &[&str]) -> String {
        let now = now_ms();
        names
            .iter()
            .map(|n| (boot_ms(n, now), machine_id(n)))
            .min()
            .map(|(_, id)| id)
            .unwrap_or_default()
    }

    #[test]
    fn a_healthy_cluster_and_its_node_states() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let n1 = open(&dir, "node-01");
        let master = expected_master(&["node-01", "node-02", "node-03"]);
        assert_eq!(
            ask(&n1, "--who-master", "ovsdb"),
            SimOutput::ok(format!("{master}\n"))
        );
        assert_eq!(
            ask(&n1, "--expect-progress-possible", "ovsdb"),
            SimOutput::ok("true\n")
        );
        for node in ["node-01", "node-02", "node-03"] {
            let id = machine_id(node);
            let want = if id == master {
                "Stable_master\n"
            } else {
                "Slave_steady_state\n"
            };
            assert_eq!(
                ask(&n1, &format!("--node-state {id}"), "ovsdb"),
                SimOutput::ok(want)
            );
        }
        assert_eq!(
            ask(&n1, "--node-state nobody", "ovsdb"),
            SimOutput::fail(2, "Fatal error: exception Not_found\n")
        );
        // node-01 is no member of the backend's clusters, yet knows their master.
        assert_eq!(
            ask(&n1, "--who-master", "mybackend-nsm_0"),
            SimOutput::ok(format!("{}\n", machine_id("node-03")))
        );
        // The same answer from every node.
        for node in ["node-02", "node-03"] {
            assert_eq!(
                ask(&open(&dir, node), "--who-master", "ovsdb").stdout,
                format!("{master}\n")
            );
        }
    }

    #[test]
    fn no_master_for_a_moment_after_a_member_restarts() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let n1 = open(&dir, "node-01");
        let n2 = open(&dir, "node-02");
        let before = ask(&n1, "--who-master", "ovsdb").stdout;
        assert_eq!(run(&n2, "systemctl restart ovs-arakoon-ovsdb").code, 0);
        assert_eq!(
            ask(&n1, "--who-master", "ovsdb"),
            SimOutput::fail(2, NO_MASTER)
        );
        assert_eq!(
            ask(&n1, "--expect-progress-possible", "ovsdb"),
            SimOutput::fail(2, NO_MASTER)
        );
        let id2 = machine_id("node-02");
        assert_eq!(
            ask(&n1, &format!("--node-state {id2}"), "ovsdb"),
            SimOutput::ok("Election_suggest\n")
        );
        std::thread::sleep(Duration::from_millis(550));
        let after = ask(&n1, "--who-master", "ovsdb");
        assert_eq!(after.code, 0);
        if before.trim() != id2 {
            assert_eq!(
                after.stdout, before,
                "the longest-running member stays master"
            );
        } else {
            assert_ne!(
                after.stdout, before,
                "the restarted master lost its seniority"
            );
        }
    }

    #[test]
    fn minority_all_down_and_stalled() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let n1 = open(&dir, "node-01");
        assert_eq!(
            run(&open(&dir, "node-02"), "systemctl stop ovs-arakoon-ovsdb").code,
            0
        );
        assert_eq!(
            ask(&n1, "--who-master", "ovsdb").code,
            0,
            "2 of 3 is a majority"
        );
        assert_eq!(
            run(&open(&dir, "node-03"), "stop ovs-arakoon-ovsdb").code,
            0
        );
        assert_eq!(
            ask(&n1, "--who-master", "ovsdb"),
            SimOutput::fail(2, NO_MASTER)
        );
        assert_eq!(
            ask(&n1, "--expect-progress-possible", "ovsdb"),
            SimOutput::fail(2, NO_MASTER)
        );
        assert_eq!(
            ask(
                &n1,
                &format!("--node-state {}", machine_id("node-03")),
                "ovsdb"
            ),
            SimOutput::fail(
                2,
                "Fatal error: exception Unix.Unix_error(Unix.ECONNREFUSED, \"connect\", \"\")\n"
            )
        );
        assert_eq!(run(&n1, "stop ovs-arakoon-ovsdb").code, 0);
        let down = "Fatal error: exception Failure(\"too many nodes down\")\n";
        assert_eq!(ask(&n1, "--who-master", "ovsdb"), SimOutput::fail(2, down));
        assert_eq!(
            ask(&n1, "--expect-progress-possible", "ovsdb"),
            SimOutput::fail(2, down)
        );
        // A stalled election: every member runs, no master ever.
        n1.update(|s| s.faults.stalled_elections = vec!["voldrv".into()])
            .expect("update");
        assert_eq!(
            ask(&n1, "--who-master", "voldrv"),
            SimOutput::fail(2, NO_MASTER)
        );
        assert_eq!(
            ask(&open(&dir, "node-03"), "--who-master", "voldrv"),
            SimOutput::fail(2, NO_MASTER),
            "seen from another node too"
        );
        assert_eq!(ask(&n1, "--who-master", "mybackend-abm").code, 0);
    }

    #[test]
    fn usage_and_version() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let n1 = open(&dir, "node-01");
        let o = run(
            &n1,
            "arakoon --who-master --config /opt/OpenvStorage/config/arakoon/ovsdb/ovsdb.cfg",
        );
        assert_eq!(o.code, 2);
        assert_eq!(o.stdout, "");
        assert!(
            o.stderr
                .starts_with("arakoon: unknown option '--config'.\n"),
            "{}",
            o.stderr
        );
        let o = run(&n1, "arakoon --who-master -config /etc/nope.cfg");
        assert_eq!(
            o,
            SimOutput::fail(
                2,
                "Fatal error: exception Sys_error(\"/etc/nope.cfg: No such file or directory\")\n"
            )
        );
        assert_eq!(run(&n1, "arakoon --who-master -config").code, 2);
        let o = run(&n1, "arakoon --version");
        assert_eq!(o.code, 0);
        assert!(o.stdout.starts_with("version: 1.9.17\n"), "{}", o.stdout);
        assert!(o.stdout.lines().count() > 1);
        assert_eq!(run(&n1, "arakoon").code, 127);
        assert_eq!(run(&n1, "arakoon --who-master extra -config x").code, 127);
        assert_eq!(
            run(&open(&dir, "ovc_master"), "arakoon --version"),
            SimOutput::fail(127, "sh: 1: arakoon: not found\n")
        );
    }
}
