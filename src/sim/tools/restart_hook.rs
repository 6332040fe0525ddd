//! OpenvCloud's `arakoon-restart.py --cluster C --address IP`, the hook that restarts an
//! Arakoon cluster after an upgrade. `IP` names a storage node (its backplane1 address) whose
//! config of `C` gives the members; the hook restarts each member on its own node: with 1 or
//! 2 members all stop and then all start, with 3 or more one at a time, each waiting (at
//! most [`MASTER_WAIT`]) for the cluster to have a master again before the next. A member
//! that does not start again makes it exit 1, naming it.
//!
//! It reaches the member nodes through the peers (see [`crate::sim::peers`]): one node's
//! lock at a time, in node-name order, never while sleeping, never its own node's meanwhile.

use std::time::{Duration, Instant};

use crate::sim::arakoon::{self, Cfg, Election};
use crate::sim::error::SimError;
use crate::sim::peers::Peers;
use crate::sim::state::{NodeState, StartError, now_ms};
use crate::sim::{SimNode, SimOutput, deadline_passed, pause};

/// How long the hook waits for a master after restarting a member of a 3+ member cluster.
pub const MASTER_WAIT: Duration = Duration::from_secs(5);
/// How often it looks.
const POLL: Duration = Duration::from_millis(50);
const NAME: &str = "arakoon-restart.py";

fn fail(message: String) -> SimOutput {
    SimOutput::fail(1, format!("{NAME}: {message}\n"))
}

/// The hook's outcome so far: `Ok(Err(answer))` ends it with that answer.
type Step<T> = Result<Result<T, SimOutput>, SimError>;

/// A member to restart: its id and the node that runs it.
struct Target {
    id: String,
    node: String,
}

/// Runs the hook on `node`.
pub fn run(
    node: &SimNode,
    cluster: &str,
    address: &str,
    deadline: Option<Instant>,
) -> Result<SimOutput, SimError> {
    let peers = Peers::beside(node.state_path());
    let own = node.state()?;
    let (cfg, targets) = match plan(node, &peers, cluster, address)? {
        Ok(plan) => plan,
        Err(answer) => return Ok(answer),
    };
    let mut out = SimOutput::ok(format!(
        "Restarting Arakoon cluster {cluster} ({} members) through {address}\n",
        targets.len()
    ));
    let done = if targets.len() <= 2 {
        restart_together(&peers, &cfg, &targets, &mut out)?
    } else {
        restart_one_by_one(&peers, &cfg, &own, &targets, deadline, &mut out)?
    };
    if let Err(answer) = done {
        out.code = answer.code;
        out.stderr.push_str(&answer.stderr);
    } else {
        out.stdout
            .push_str(&format!("Cluster {cluster} restarted\n"));
    }
    Ok(out)
}

/// The config and the members to restart (in node-name order), or the answer refusing.
fn plan(node: &SimNode, peers: &Peers, cluster: &str, address: &str) -> Step<(Cfg, Vec<Target>)> {
    if address.parse::<std::net::Ipv4Addr>().is_err() {
        return Ok(Err(fail(format!(
            "invalid --address {address:?}: not an IPv4 address"
        ))));
    }
    let path = arakoon::cfg_path(cluster);
    let text = match cluster.contains('/') || cluster.is_empty() {
        true => None,
        false => node.read_file(&path)?,
    };
    let Some(text) = text else {
        return Ok(Err(fail(format!(
            "no Arakoon cluster {cluster:?} on this node ({path} does not exist)"
        ))));
    };
    if peers.by_address(address)?.is_none() {
        return Ok(Err(fail(format!(
            "no storage node of this environment has address {address}"
        ))));
    }
    let cfg = match arakoon::parse_cfg(&text) {
        Ok(cfg) => cfg,
        Err(e) => return Ok(Err(fail(format!("cannot read {path}: {e}")))),
    };
    let mut targets = Vec::new();
    for m in &cfg.members {
        match peers.by_id(&m.id)? {
            Some((name, _)) => targets.push(Target {
                id: m.id.clone(),
                node: name,
            }),
            None => {
                return Ok(Err(fail(format!(
                    "member {} of {cluster} ({}) is on no node of this environment",
                    m.id, m.ip
                ))));
            }
        }
    }
    targets.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(Ok((cfg, targets)))
}

/// Starts member `t`'s job on its node (stopping it first when `restart`).
fn start_member(
    peers: &Peers,
    job: &str,
    t: &Target,
    restart: bool,
) -> Result<Result<u32, StartError>, SimError> {
    peers.update(&t.node, |s: &mut NodeState| {
        if restart {
            s.stop_job(job);
        }
        s.start_job(job, now_ms())
    })
}

fn did_not_come_back(cfg: &Cfg, job: &str, t: &Target, why: StartError) -> SimOutput {
    let why = match why {
        StartError::Unknown => format!("{} has no service {job}", t.node),
        StartError::Failed => format!("{job} failed to start"),
    };
    fail(format!(
        "member {} of {} on {} did not come back: {why}",
        t.id, cfg.cluster_id, t.node
    ))
}

/// 1 or 2 members: stop all, then start all.
fn restart_together(peers: &Peers, cfg: &Cfg, targets: &[Target], out: &mut SimOutput) -> Step<()> {
    let job = arakoon::job_name(&cfg.cluster_id);
    for t in targets {
        peers.update(&t.node, |s| s.stop_job(&job))?;
        out.stdout
            .push_str(&format!("Stopped {} on {}: {job}\n", t.id, t.node));
    }
    let mut failed = None;
    for t in targets {
        match start_member(peers, &job, t, false)? {
            Ok(pid) => out.stdout.push_str(&format!(
                "Started {} on {}: {job}, process {pid}\n",
                t.id, t.node
            )),
            Err(why) => {
                failed.get_or_insert_with(|| did_not_come_back(cfg, &job, t, why));
            }
        }
    }
    Ok(failed.map_or(Ok(()), Err))
}

/// 3 or more members: restart one, wait for a master, then the next.
fn restart_one_by_one(
    peers: &Peers,
    cfg: &Cfg,
    own: &NodeState,
    targets: &[Target],
    deadline: Option<Instant>,
    out: &mut SimOutput,
) -> Step<()> {
    let job = arakoon::job_name(&cfg.cluster_id);
    for t in targets {
        match start_member(peers, &job, t, true)? {
            Ok(pid) => out.stdout.push_str(&format!(
                "Restarted {} on {}: {job}, process {pid}\n",
                t.id, t.node
            )),
            Err(why) => return Ok(Err(did_not_come_back(cfg, &job, t, why))),
        }
        match wait_for_master(peers, cfg, own, deadline)? {
            Some(master) => out
                .stdout
                .push_str(&format!("Master of {}: {master}\n", cfg.cluster_id)),
            None if deadline_passed(deadline) => return Ok(Err(SimOutput::timed_out())),
            None => {
                return Ok(Err(fail(format!(
                    "cluster {} has no master {} s after restarting member {} on {}",
                    cfg.cluster_id,
                    MASTER_WAIT.as_secs(),
                    t.id,
                    t.node
                ))));
            }
        }
    }
    Ok(Ok(()))
}

/// Polls (holding no lock while sleeping) until the cluster has a master, at most
/// [`MASTER_WAIT`] and never past `deadline`.
fn wait_for_master(
    peers: &Peers,
    cfg: &Cfg,
    own: &NodeState,
    deadline: Option<Instant>,
) -> Result<Option<String>, SimError> {
    let give_up = Instant::now() + MASTER_WAIT;
    loop {
        let view = arakoon::observe(cfg, peers, own)?;
        if let Election::Master(id) = view.election(now_ms()) {
            return Ok(Some(id));
        }
        if Instant::now() >= give_up || pause(POLL, deadline) {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use crate::sim::SimOutput;
    use crate::sim::cli::set_fault;
    use crate::sim::layout::Layout;
    use crate::sim::seed::machine_id;
    use crate::sim::tools::testutil::{cluster_of, open, run};

    const HOOK: &str =
        "python /opt/code/git/0-complexity/openvcloud/scripts/ovs/arakoon-restart.py";

    /// (pid, started_ms) of a cluster's job on every storage node that has it.
    fn members(dir: &Path, cluster: &str, nodes: usize) -> BTreeMap<String, (u32, u64)> {
        (1..=nodes)
            .map(|i| format!("node-{i:02}"))
            .filter_map(|n| {
                let s = open(dir, &n).state().expect("state");
                let j = s.jobs.get(&format!("ovs-arakoon-{cluster}"))?;
                Some((n, (j.pid, j.started_ms)))
            })
            .collect()
    }

    fn hook(dir: &Path, on: &str, cluster: &str, address: &str) -> SimOutput {
        run(
            &open(dir, on),
            &format!("{HOOK} --cluster {cluster} --address {address}"),
        )
    }

    #[test]
    fn one_member_on_another_node() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let before = members(&dir, "mybackend-nsm_0", 3);
        assert_eq!(before.keys().collect::<Vec<_>>(), ["node-03"]);
        let o = hook(&dir, "node-01", "mybackend-nsm_0", "10.107.1.11");
        assert_eq!(o.code, 0, "{o:?}");
        let id = machine_id("node-03");
        assert!(o.stdout.starts_with(
            "Restarting Arakoon cluster mybackend-nsm_0 (1 members) through 10.107.1.11\n"
        ));
        assert!(o.stdout.contains(&format!(
            "Stopped {id} on node-03: ovs-arakoon-mybackend-nsm_0\n"
        )));
        assert!(
            o.stdout.ends_with("Cluster mybackend-nsm_0 restarted\n"),
            "{}",
            o.stdout
        );
        let after = members(&dir, "mybackend-nsm_0", 3);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            ["node-03"],
            "no job on non-members"
        );
        assert_ne!(after["node-03"].0, before["node-03"].0, "a new pid");
        assert!(after["node-03"].1 > before["node-03"].1, "a new start");
        // The hook ran on node-01 only: the others received no command.
        assert!(
            open(&dir, "node-03")
                .state()
                .expect("state")
                .history
                .is_empty()
        );
    }

    #[test]
    fn two_members_stop_together_then_start() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let before = members(&dir, "mybackend-abm", 3);
        let o = hook(&dir, "node-02", "mybackend-abm", "10.107.1.13");
        assert_eq!(o.code, 0, "{o:?}");
        let lines: Vec<&str> = o.stdout.lines().collect();
        assert!(
            lines[1].starts_with("Stopped ") && lines[2].starts_with("Stopped "),
            "{lines:?}"
        );
        assert!(
            lines[3].starts_with("Started ") && lines[4].starts_with("Started "),
            "{lines:?}"
        );
        let after = members(&dir, "mybackend-abm", 3);
        assert_eq!(after.keys().collect::<Vec<_>>(), ["node-02", "node-03"]);
        for n in ["node-02", "node-03"] {
            assert_ne!(after[n].0, before[n].0, "{n}");
        }
    }

    #[test]
    fn three_members_one_at_a_time_each_waiting_for_a_master() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let before = members(&dir, "ovsdb", 3);
        let started = Instant::now();
        let n1 = open(&dir, "node-01");
        let o = hook(&dir, "node-01", "ovsdb", "10.107.1.12");
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            o.stdout.matches("\nMaster of ovsdb: ").count(),
            3,
            "{}",
            o.stdout
        );
        let after = members(&dir, "ovsdb", 3);
        let starts: Vec<u64> = after.values().map(|(_, s)| *s).collect();
        assert!(
            starts.windows(2).all(|w| w[1] >= w[0] + 500),
            "one at a time: {starts:?}"
        );
        for (n, (pid, _)) in &after {
            assert_ne!(*pid, before[n].0, "{n}");
        }
        // Right after, the last restarted member still settles; then there is a master.
        std::thread::sleep(Duration::from_millis(550));
        assert_eq!(
            run(
                &n1,
                "arakoon --who-master -config /opt/OpenvStorage/config/arakoon/ovsdb/ovsdb.cfg"
            )
            .code,
            0
        );
    }

    #[test]
    fn a_member_that_does_not_come_back_is_named() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        open(&dir, "node-02")
            .update(|s| set_fault(s, "down", "ovs-arakoon-ovsdb"))
            .expect("update")
            .expect("knob");
        let o = hook(&dir, "node-01", "ovsdb", "10.107.1.11");
        assert_eq!(o.code, 1, "{o:?}");
        assert_eq!(
            o.stderr,
            format!(
                "arakoon-restart.py: member {} of ovsdb on node-02 did not come back: ovs-arakoon-ovsdb failed to start\n",
                machine_id("node-02")
            )
        );
        let s = open(&dir, "node-02").state().expect("state");
        assert!(!s.jobs["ovs-arakoon-ovsdb"].running);
        // Two members: both are stopped, the one that can starts again.
        open(&dir, "node-03")
            .update(|s| set_fault(s, "down", "ovs-arakoon-mybackend-abm"))
            .expect("update")
            .expect("knob");
        let o = hook(&dir, "node-01", "mybackend-abm", "10.107.1.11");
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("on node-03 did not come back"),
            "{}",
            o.stderr
        );
        assert!(members(&dir, "mybackend-abm", 3).len() == 2);
    }

    #[test]
    fn a_restart_without_majority_leaves_no_master_until_members_return() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        for n in ["node-02", "node-03"] {
            open(&dir, n)
                .update(|s| set_fault(s, "down", "ovs-arakoon-voldrv"))
                .expect("update")
                .expect("knob");
        }
        let n1 = open(&dir, "node-01");
        // While the hook waits, the nodes answer (no lock is held while it sleeps).
        let probe = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let t = Instant::now();
                for n in ["node-01", "node-02"] {
                    assert_eq!(run(&open(&dir, n), "virsh list --name").code, 0);
                }
                t.elapsed()
            })
        };
        let o = hook(&dir, "node-01", "voldrv", "10.107.1.11");
        assert!(probe.join().expect("probe") < Duration::from_millis(500));
        assert_eq!(o.code, 1, "{o:?}");
        assert!(
            o.stderr
                .contains("cluster voldrv has no master 5 s after restarting member"),
            "{}",
            o.stderr
        );
        let cfg = "/opt/OpenvStorage/config/arakoon/voldrv/voldrv.cfg";
        assert_eq!(
            run(&n1, &format!("arakoon --who-master -config {cfg}")).code,
            2
        );
        let n2 = open(&dir, "node-02");
        n2.update(|s| set_fault(s, "down", ""))
            .expect("update")
            .expect("knob");
        assert_eq!(run(&n2, "systemctl start ovs-arakoon-voldrv").code, 0);
        std::thread::sleep(Duration::from_millis(550));
        assert_eq!(
            run(&n1, &format!("arakoon --who-master -config {cfg}")).code,
            0
        );
    }

    #[test]
    fn refusals() {
        let (_t, dir) = cluster_of(&Layout::default_for(3));
        let o = hook(&dir, "node-01", "ovsdb", "10.9.9.9");
        assert_eq!(
            o,
            SimOutput::fail(
                1,
                "arakoon-restart.py: no storage node of this environment has address 10.9.9.9\n"
            )
        );
        let o = hook(&dir, "node-01", "ovsdb", "node-01");
        assert_eq!(o.code, 1);
        assert!(o.stderr.contains("not an IPv4 address"), "{}", o.stderr);
        let o = hook(&dir, "node-01", "nope", "10.107.1.11");
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("no Arakoon cluster \"nope\""),
            "{}",
            o.stderr
        );
        let o = run(&open(&dir, "node-01"), &format!("{HOOK} --cluster ovsdb"));
        assert_eq!(o.code, 127);
    }
}
