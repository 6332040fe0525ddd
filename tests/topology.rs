//! Issue 8, "know the cluster before touching it", on layouts whose nodes are not alike (the
//! 5-node example and the realistic 3-node default: Arakoon clusters, vpools and ALBA
//! backends on different subsets, the first node a member of few clusters), on both
//! backends: the whole guide, with every restart exactly where the job runs and nodes
//! without a vpool or backend job left alone; a stalled election failing after its deadline;
//! a cluster without its majority, a half-configured package and what `plan` names refused
//! before the first change; a failing postinst caught, and configured by the re-run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ovsup::sim::cluster::CONTROLLERS;
use ovsup::sim::layout::Layout;
use ovsup::sim::seed::machine_id;
use ovsup::sim::state::PkgStatus;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::background::wait_until;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};
use crate::support::topology::{
    asds, assert_hooks_on_members, assert_only_members_restarted, backends, cluster_names,
    hook_calls, job_names, member_jobs, pids, restarted, sent_pairs, vpools,
};

/// The components, as `check` and `plan` report them.
const COMPONENTS: [&str; 4] = ["arakoon", "framework", "volumedriver", "alba"];

// ---------------------------------------------------------------------------------------------
// Running ovsup, reading the cluster

/// `ovsup --yes` on the cluster, with a legacy VM record path private to the test (absent),
/// and its temporary files (ssh control sockets) in the test's directory.
fn ovsup(c: &Cluster) -> Ovsup {
    let dir = c.state_dir().parent().expect("a parent").to_path_buf();
    c.ovsup()
        .env(
            "OVSUP_LEGACY_VM_RECORD",
            &dir.join("ovs-machine-state.json").display().to_string(),
        )
        .env("TMPDIR", &dir.display().to_string())
        .args(["--yes"])
}

/// `ovsup --yes --json ARGS…`, to the end.
fn run(c: &Cluster, args: &[&str]) -> Ran {
    ovsup(c).args(["--json"]).args(args).run()
}

/// `ovsup --yes ARGS…` with the human output (its messages on stderr), to the end.
fn human(c: &Cluster, args: &[&str]) -> Ran {
    ovsup(c).args(args).run()
}

/// The run's value (of a `--json` run).
fn value(ran: &Ran) -> Value {
    ran.json_result()["value"].clone()
}

/// Set a fault knob of the simulator on a node (as `ovsup sim fault NODE KEY VALUE`).
fn fault(c: &Cluster, node: &str, key: &str, val: &str) {
    c.update(node, |s| ovsup::sim::cli::set_fault(s, key, val))
        .unwrap_or_else(|e| panic!("{node}: fault {key} {val}: {e}"));
}

/// The commands of `sent` that change a node: installs, dpkg, hooks, services, VMs.
fn changes(sent: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    const CHANGES: [&str; 11] = [
        "DEBIAN_FRONTEND=",
        "apt-get install",
        "dpkg --configure",
        "python ",
        "start ",
        "stop ",
        "restart ",
        "systemctl start",
        "systemctl stop",
        "systemctl restart",
        "virsh ",
    ];
    sent_pairs(sent)
        .into_iter()
        .filter(|(_, l)| {
            CHANGES.iter().any(|p| l.starts_with(p))
                && !l.starts_with("virsh list")
                && !l.starts_with("virsh domstate")
        })
        .map(|(n, l)| format!("{n}: {l}"))
        .collect()
}

/// Each storage node's installed version of every package.
fn installed(c: &Cluster) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    c.storage_names()
        .into_iter()
        .map(|n| {
            let pkgs = c
                .state(&n)
                .packages
                .into_iter()
                .map(|(p, v)| (p, v.installed))
                .collect();
            (n, pkgs)
        })
        .collect()
}

/// A run refused before its first change: exit 3, no node received a changing command, no
/// package changed version anywhere, no step left in progress. Returns the run.
fn assert_refused_unchanged(c: &Cluster, args: &[&str]) -> Ran {
    let versions = installed(c);
    let steps_before = c.steps_in_progress();
    let m = c.history_marks();
    let ran = run(c, args).code(3);
    let sent = changes(&c.history_since(&m));
    assert!(sent.is_empty(), "{args:?} was refused but sent {sent:#?}");
    assert_eq!(installed(c), versions, "{args:?} was refused but installed");
    assert_eq!(
        c.steps_in_progress(),
        steps_before,
        "{args:?} left a step in progress"
    );
    ran
}

/// Every package of a component's packages at the repository's newest version, configured, on
/// every storage node.
fn assert_newest(c: &Cluster, pkgs: &[&str]) {
    for node in c.storage_names() {
        let s = c.state(&node);
        for pkg in pkgs {
            let p = &s.packages[*pkg];
            assert_eq!(
                p.installed.as_deref(),
                p.newest_in_repository(),
                "{node}: {pkg}"
            );
            assert_eq!(p.status, PkgStatus::Installed, "{node}: {pkg}");
        }
    }
}

/// The nodes a `check` (or a `plan` component) entry says something is pending on.
fn pending_on(entry: &Value) -> BTreeSet<String> {
    entry["nodes"]
        .as_object()
        .unwrap_or_else(|| panic!("no nodes: {entry}"))
        .keys()
        .cloned()
        .collect()
}

/// `dpkg_audit` of every storage node, read through ovsup: node → the packages listed.
fn audit(c: &Cluster) -> BTreeMap<String, Vec<String>> {
    let v = value(&run(c, &["eval", "dpkg_audit(nodes())"]).code(0));
    v.as_object()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|(n, list)| {
            let names = list
                .as_array()
                .unwrap_or_else(|| panic!("{list}"))
                .iter()
                .map(|a| {
                    format!(
                        "{} ({})",
                        a["name"].as_str().unwrap_or("?"),
                        a["problem"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            (n.clone(), names)
        })
        .collect()
}

/// Nothing ever ran on a controller instance.
fn assert_controllers_untouched(c: &Cluster) {
    for name in CONTROLLERS {
        let history = c.state(name).history;
        assert!(history.is_empty(), "{name} received: {history:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios

on_both_backends!(
    the_guide_on_five_unlike_nodes_restarts_each_job_where_it_runs,
    a_stalled_election_fails_after_its_deadline_and_a_cluster_without_majority_is_refused,
    a_half_configured_package_is_refused_before_and_caught_after_an_install,
    plan_names_every_blocker_and_passes_once_they_are_cleared,
);

/// The procedure of docs/upgrade-guide.md on the 5-node example: node-01 is a member of ovsdb
/// only, serves no vpool and runs no ALBA job; every cluster lives on its own subset.
fn the_guide_on_five_unlike_nodes_restarts_each_job_where_it_runs(backend: Backend) {
    let c = Cluster::with_layout(backend, Layout::five_nodes().expect("the example"));
    let storage: BTreeSet<String> = c.storage_names().into_iter().collect();
    let every_cluster = cluster_names(&c, |_| true);
    let backend_clusters = cluster_names(&c, |n| n != "ovsdb" && n != "voldrv");
    let vms_before = c.running_vms();

    run(&c, &["update"]).code(0);
    let check = value(&run(&c, &["check"]).code(0));
    for comp in COMPONENTS {
        assert_eq!(pending_on(&check[comp]), storage, "{comp}: {check}");
    }
    // Nothing blocks, and the plan says where each cluster restarts.
    let plan = value(&run(&c, &["plan"]).code(0));
    assert_eq!(plan["ok"], true, "{plan}");
    assert_eq!(plan["blockers"], json!([]), "{plan}");
    let impact = plan["components"]["arakoon"]["impact"]["arakoon"]
        .as_array()
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(impact.len(), every_cluster.len(), "{plan}");
    for cl in impact {
        let name = cl["name"].as_str().unwrap_or_else(|| panic!("{cl}"));
        let on: BTreeSet<String> =
            serde_json::from_value(cl["member_nodes"].clone()).expect("nodes");
        assert_eq!(
            on,
            crate::support::topology::member_nodes(&c, name),
            "{name}"
        );
    }

    run(&c, &["preprocess"]).code(0);
    run(&c, &["framework"]).code(0);

    // arakoon: each cluster through one of its members; a new pid for every member, exactly on
    // the member nodes; no member job created or touched elsewhere.
    let jobs = job_names(&c);
    let before = pids(&c);
    let m = c.history_marks();
    run(&c, &["arakoon"]).code(0);
    assert_hooks_on_members(
        &c,
        &hook_calls(sent_pairs(&c.history_since(&m))),
        &every_cluster,
    );
    assert_only_members_restarted(&c, &before, &every_cluster, "arakoon");
    assert_eq!(job_names(&c), jobs, "arakoon created or removed jobs");

    let stopped = value(&run(&c, &["stop-vm"]).code(0));
    let stopped: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_value(stopped).expect("node → VMs");
    assert_eq!(stopped, vms_before);

    // alba --skip-vm: each node restarts what it runs; node-01 runs none of it, and says so.
    let before = pids(&c);
    let m = c.history_marks();
    let alba = human(&c, &["--verbose", "alba", "--skip-vm"]).code(0);
    for pattern in [
        "alba-asd-*",
        "ovs-albaproxy_*",
        "ovs-alba-maintenance_*",
        "ovs-alba-rebalancer_*",
    ] {
        alba.stderr_has(&format!(
            "node-01: no job matches \"{pattern}\" here: nothing to do"
        ));
    }
    alba.stderr_lacks("node-03: no job matches \"ovs-albaproxy_*\"");
    assert_hooks_on_members(
        &c,
        &hook_calls(sent_pairs(&c.history_since(&m))),
        &backend_clusters,
    );
    let moved = restarted(&before, &pids(&c));
    for node in &storage {
        let mut want: BTreeSet<String> = asds(&c, node)
            .iter()
            .map(|id| format!("alba-asd-{id}"))
            .collect();
        want.extend(
            vpools(&c, node)
                .iter()
                .map(|v| format!("ovs-albaproxy_{v}")),
        );
        for b in backends(&c, node) {
            want.insert(format!("ovs-alba-maintenance_{b}"));
            want.insert(format!("ovs-alba-rebalancer_{b}"));
        }
        want.extend(member_jobs(&c, node, &backend_clusters));
        assert_eq!(moved[node], want, "alba: {node}: jobs with a new pid");
    }

    // volumedriver --skip-vm: the drivers of the vpools each node serves; node-01 has none.
    let before = pids(&c);
    let vd = human(&c, &["--verbose", "volumedriver", "--skip-vm"]).code(0);
    vd.stderr_has("node-01: no job matches \"ovs-volumedriver_*\" here: nothing to do");
    let moved = restarted(&before, &pids(&c));
    for node in &storage {
        let want: BTreeSet<String> = vpools(&c, node)
            .iter()
            .map(|v| format!("ovs-volumedriver_{v}"))
            .collect();
        assert_eq!(
            moved[node], want,
            "volumedriver: {node}: jobs with a new pid"
        );
    }
    assert!(
        c.running_vms().values().all(BTreeSet::is_empty),
        "--skip-vm started VMs"
    );

    run(&c, &["start-vm"]).code(0);
    assert_eq!(c.running_vms(), vms_before, "every VM that ran runs again");
    run(&c, &["postprocess"]).code(0);
    let last = value(&run(&c, &["check"]).code(0));
    for comp in COMPONENTS {
        assert_eq!(last[comp]["pending"], false, "{comp}: {last}");
    }

    for node in &storage {
        let s = c.state(node);
        let down: Vec<&String> = s
            .jobs
            .iter()
            .filter(|(_, j)| !j.running || j.failed)
            .map(|(n, _)| n)
            .collect();
        assert!(down.is_empty(), "{node}: not running: {down:?}");
        assert!(s.memcached_running, "{node}: memcached");
        assert!(s.agent_pid.is_some(), "{node}: the agent");
    }
    assert!(
        !c.state_dir().join("vm-record.json").exists(),
        "the VM record is left"
    );
    assert!(
        c.steps_in_progress().is_empty(),
        "steps left in progress: {:?}",
        c.steps_in_progress()
    );
    assert_controllers_untouched(&c);
}

/// On the realistic 3-node layout, where mybackend-abm (node-02, node-03) is the first cluster
/// restarted and has two members (restarted together: the hook does not wait for a master).
fn a_stalled_election_fails_after_its_deadline_and_a_cluster_without_majority_is_refused(
    backend: Backend,
) {
    let c = Cluster::with_layout(backend, Layout::default_for(3));
    run(&c, &["update"]).code(0);
    run(&c, &["preprocess"]).code(0);

    // Elections on node-03's clusters take 10 s, longer than the deadline of 3 s: every
    // member ran for a day, so the clusters are healthy before; after its restart,
    // mybackend-abm has no master when the deadline passes.
    c.update("node-03", |s| s.faults.election_ms = Some(10_000));
    let m = c.history_marks();
    let began = Instant::now();
    let stalled = run(&c, &["arakoon", "--set", "arakoon_timeout=3"]).code(1);
    let took = began.elapsed();
    stalled
        .json_error_has("Arakoon cluster mybackend-abm is not back 3 s after its restart")
        .json_error_has("no master");
    assert!(
        took >= Duration::from_secs(3),
        "failed after {took:?}, before the deadline"
    );
    let calls = hook_calls(sent_pairs(&c.history_since(&m)));
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        ["mybackend-abm"],
        "the run goes no further than the cluster that is not back: {calls:#?}"
    );
    assert!(
        c.steps_in_progress().contains("arakoon"),
        "{:?}",
        c.steps_in_progress()
    );

    // Elections back to normal, the same step converges: every cluster restarted exactly
    // where its members run.
    c.update("node-03", |s| s.faults.election_ms = None);
    let every_cluster = cluster_names(&c, |_| true);
    let jobs = job_names(&c);
    let before = pids(&c);
    let m = c.history_marks();
    let again = value(&run(&c, &["arakoon"]).code(0));
    assert_eq!(again["updated"], true, "{again}");
    assert_hooks_on_members(
        &c,
        &hook_calls(sent_pairs(&c.history_since(&m))),
        &every_cluster,
    );
    assert_only_members_restarted(&c, &before, &every_cluster, "arakoon, run again");
    assert_eq!(job_names(&c), jobs, "jobs created or removed");
    assert_newest(&c, &["arakoon"]);
    assert!(!c.steps_in_progress().contains("arakoon"));

    // mybackend-abm loses its majority (one of its two members is down): alba, which would
    // restart it, is refused before it installs anything, naming the cluster and the member.
    fault(&c, "node-02", "down", "ovs-arakoon-mybackend-abm");
    let refused = assert_refused_unchanged(&c, &["alba", "--skip-vm"]);
    refused
        .json_error_has("Arakoon cluster mybackend-abm (members on node-02, node-03)")
        .json_error_has(&format!(
            "member {} on node-02 does not run",
            machine_id("node-02")
        ))
        .json_error_lacks("on node-03 does not run")
        .json_error_lacks("Arakoon cluster mybackend-nsm_0");
    // Brought back, as the refusal says, the cluster elects a master and nothing blocks.
    fault(&c, "node-02", "down", "");
    run(
        &c,
        &[
            "eval",
            r#"service_start("node-02", "ovs-arakoon-mybackend-abm")"#,
        ],
    )
    .code(0);
    wait_until("mybackend-abm has a master again", || {
        value(
            &run(
                &c,
                &["eval", r#"arakoon_clusters("mybackend-abm")[0].healthy"#],
            )
            .code(0),
        ) == true
    });
    let plan = value(&run(&c, &["plan", "alba"]).code(0));
    assert_eq!(plan["ok"], true, "{plan}");
    assert_controllers_untouched(&c);
}

/// A package of another component left half-configured blocks a step before it starts; a
/// postinst failing during the step's own install fails it, naming node and package, and
/// the re-run configures the package first.
fn a_half_configured_package_is_refused_before_and_caught_after_an_install(backend: Backend) {
    let c = Cluster::with_layout(backend, Layout::default_for(3));
    run(&c, &["update"]).code(0);
    run(&c, &["preprocess"]).code(0);

    fault(&c, "node-03", "pkg_status", "alba=iF");
    assert_refused_unchanged(&c, &["framework"])
        .json_error_has("node-03: dpkg left alba (half configured) half-done")
        .json_error_has("run dpkg --configure -a on node-03")
        .json_error_lacks("node-01")
        .json_error_lacks("node-02");
    // What the refusal says to do clears it.
    run(
        &c,
        &["eval", r#"cmd("node-03", ["dpkg", "--configure", "-a"])"#],
    )
    .code(0);
    assert!(audit(&c).values().all(Vec::is_empty), "{:?}", audit(&c));

    // arakoon's postinst fails on node-02: the install fails naming node and package, and
    // dpkg --audit lists it.
    fault(&c, "node-02", "failing_installs", "arakoon");
    let failed = run(&c, &["arakoon"]).code(1);
    failed
        .json_error_has("node-02: `DEBIAN_FRONTEND=noninteractive apt-get install")
        .json_error_has("dpkg: error processing package arakoon (--configure)");
    let listed = audit(&c);
    assert_eq!(
        listed["node-02"],
        ["arakoon (half configured)"],
        "{listed:?}"
    );
    assert!(
        listed["node-01"].is_empty() && listed["node-03"].is_empty(),
        "{listed:?}"
    );
    assert!(c.steps_in_progress().contains("arakoon"));
    // Another step is blocked by it; arakoon's own is not (it configures its package first).
    let blocked = run(&c, &["plan", "framework"]).code(3);
    blocked.json_error_has("node-02: dpkg left arakoon (half configured) half-done");
    let own = value(&run(&c, &["plan", "arakoon"]).code(0));
    assert_eq!(own["ok"], true, "{own}");
    let pending = own["components"]["arakoon"]["nodes"]["node-02"]["arakoon"]
        .as_str()
        .unwrap_or_else(|| panic!("{own}"));
    assert!(pending.ends_with("(half-configured)"), "{pending}");

    // The postinst fixed, the same step configures it first, then restarts the clusters.
    fault(&c, "node-02", "failing_installs", "");
    let ran = run(&c, &["arakoon"]).code(0);
    assert_eq!(value(&ran)["updated"], true, "{}", ran.stdout);
    let started: Vec<(String, String)> = ran
        .json_events()
        .iter()
        .filter(|e| e["event"] == "exec")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("?").to_string();
            (field("node"), field("command"))
        })
        .collect();
    let configure = started
        .iter()
        .position(|(n, l)| n == "node-02" && l == "dpkg --configure -a")
        .unwrap_or_else(|| panic!("node-02 was not configured: {started:#?}"));
    let first_hook = started
        .iter()
        .position(|(_, l)| l.contains("arakoon-restart.py"))
        .unwrap_or_else(|| panic!("no cluster restarted: {started:#?}"));
    assert!(configure < first_hook, "{started:#?}");
    assert_newest(&c, &["arakoon"]);
    assert!(audit(&c).values().all(Vec::is_empty), "{:?}", audit(&c));
    let check = value(&run(&c, &["check"]).code(0));
    assert_eq!(check["arakoon"]["pending"], false, "{check}");
    assert!(!c.steps_in_progress().contains("arakoon"));
    assert_controllers_untouched(&c);
}

/// `plan` on a cluster with stale lists on node-01, a package dpkg left unpacked on node-02
/// and a VM record: exit 3, each named in the value and on stderr; once each is cleared as
/// the blocker says, exit 0.
fn plan_names_every_blocker_and_passes_once_they_are_cleared(backend: Backend) {
    let c = Cluster::with_layout(backend, Layout::default_for(3));
    run(&c, &["update"]).code(0);
    let vms_before = c.running_vms();
    run(&c, &["stop-vm"]).code(0);
    fault(&c, "node-01", "stamp_hours_ago", "48");
    fault(&c, "node-02", "pkg_status", "memcached=iU");

    let ran = run(&c, &["plan"]).code(3);
    let plan = value(&ran);
    assert_eq!(plan["ok"], false, "{plan}");
    let blockers = plan["blockers"]
        .as_array()
        .unwrap_or_else(|| panic!("{plan}"));
    let named = |node: Value, what: &str, fix: &str| -> Vec<&Value> {
        blockers
            .iter()
            .filter(|b| {
                b["node"] == node
                    && b["what"].as_str().is_some_and(|w| w.contains(what))
                    && b["fix"].as_str().is_some_and(|f| f.contains(fix))
            })
            .collect()
    };
    assert_eq!(
        named(
            json!("node-01"),
            "its apt lists are 48 h old",
            "ovsup update"
        )
        .len(),
        1,
        "{plan:#}"
    );
    assert_eq!(
        named(
            json!("node-02"),
            "dpkg left memcached (",
            "dpkg --configure -a"
        )
        .len(),
        1,
        "{plan:#}"
    );
    let record = named(
        Value::Null,
        "the VM record already holds 7 VMs",
        "--skip-vm",
    );
    let steps_named: BTreeSet<&str> = record.iter().filter_map(|b| b["step"].as_str()).collect();
    assert_eq!(
        steps_named,
        BTreeSet::from(["alba", "volumedriver"]),
        "{plan:#}"
    );
    assert_eq!(blockers.len(), 4, "{plan:#}");
    // The refusal names each too, a line each.
    ran.json_error_has("\n  node-01: its apt lists are 48 h old: run ovsup update first")
        .json_error_has("\n  node-02: dpkg left memcached (")
        .json_error_has("\n  the VM record already holds 7 VMs");
    // And so does the human output, on stderr.
    let told = human(&c, &["plan"]).code(3);
    told.stderr_has("blocks: node-01: its apt lists are 48 h old: run ovsup update first")
        .stderr_has("blocks: node-02: dpkg left memcached (")
        .stderr_has("blocks: the VM record already holds 7 VMs");
    // check warns about the stale lists too, and so does a dangerous step, whose --force
    // turns each blocker into a loud warning (in a dry run: nothing changes).
    human(&c, &["check"])
        .code(0)
        .stderr_has("warning: node-01: its apt lists are 48 h old: run ovsup update first");
    let versions = installed(&c);
    human(&c, &["--force", "--dry-run", "framework"])
        .code(0)
        .stderr_has("warning: node-01: its apt lists are 48 h old: run ovsup update first")
        .stderr_has("--force: framework goes on although node-02: dpkg left memcached (");
    assert_eq!(installed(&c), versions, "a dry run installed");

    // Cleared as each blocker says: the plan passes.
    run(&c, &["update"]).code(0);
    run(
        &c,
        &["eval", r#"cmd("node-02", ["dpkg", "--configure", "-a"])"#],
    )
    .code(0);
    run(&c, &["start-vm"]).code(0);
    assert_eq!(c.running_vms(), vms_before);
    let plan = value(&run(&c, &["plan"]).code(0));
    assert_eq!(plan["ok"], true, "{plan:#}");
    assert_eq!(plan["blockers"], json!([]), "{plan:#}");
    for comp in COMPONENTS {
        assert_eq!(
            plan["components"][comp]["pending"], true,
            "{comp}: {plan:#}"
        );
    }
    assert_controllers_untouched(&c);
}
