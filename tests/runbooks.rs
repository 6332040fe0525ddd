//! The shipped runbooks, each run as an operator would (`ovsup -i INV [--yes] [--skip-vm]
//! [--dry-run] RUNBOOK`) on both backends: the node state afterwards is what the action
//! promises, a second run changes nothing, `--dry-run` prints the plan and changes nothing,
//! and the guards refuse with exit code 3 and say what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ovsup::sim::cluster::CONTROLLERS;
use ovsup::sim::layout::Layout;
use ovsup::sim::seed::{ALBA, ARAKOON, FRAMEWORK, SETTINGS_PY, VOLUMEDRIVER, asd_ids};
use ovsup::sim::state::NodeState;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};
use crate::support::topology::{
    SCRIPTS, asds, assert_hooks_on_members, assert_only_members_restarted, backends, cluster_names,
    hook_calls, job_names, member_jobs, member_nodes, pids, restarted, sent_pairs, vpools,
};

const READY: &str = "/etc/ready_for_upgrade";
const ARCHIVES: &str = "/var/cache/apt/archives";

// ---------------------------------------------------------------------------------------
// Running ovsup

/// `ovsup` aimed at the cluster, with a legacy VM list path private to the test (absent), so
/// that a `/tmp/ovs-machine-state.json` on the machine running the tests changes nothing.
fn ovsup(c: &Cluster) -> Ovsup {
    let legacy: PathBuf = c
        .state_dir()
        .parent()
        .expect("state dir has a parent")
        .join("ovs-machine-state.json");
    c.ovsup()
        .env("OVSUP_LEGACY_VM_RECORD", &legacy.display().to_string())
}

/// `ovsup --json ARGS…`, to the end.
fn run(c: &Cluster, args: &[&str]) -> Ran {
    ovsup(c).args(["--json"]).args(args.iter().copied()).run()
}

/// The runbook's result value (of a `--json` run).
fn value(ran: &Ran) -> Value {
    ran.json_result()["value"].clone()
}

fn eval(c: &Cluster, script: &str) -> Value {
    value(&run(c, &["eval", script]).code(0))
}

/// `update` then `preprocess` on 3 nodes of the legacy layout (every node runs everything):
/// updates pending everywhere, every node offline.
fn prepared(backend: Backend) -> Cluster {
    prepared_on(backend, Layout::uniform(3))
}

/// `update` then `preprocess` on the nodes of `layout`.
fn prepared_on(backend: Backend, layout: Layout) -> Cluster {
    let c = Cluster::with_layout(backend, layout);
    run(&c, &["update"]).code(0);
    run(&c, &["preprocess"]).code(0);
    c
}

// ---------------------------------------------------------------------------------------
// Looking at the nodes

/// Every node's state with what the clock or the reading itself changes taken out (the
/// command history, when a shutdown began), and what the host keeps (VM record, steps in
/// progress). On the SSH backend the nodes' files live on a real filesystem, not in the
/// state: what changes them is caught by the commands a run sends (see [`sent_changes`]).
#[derive(Debug, PartialEq)]
struct Snapshot {
    nodes: BTreeMap<String, NodeState>,
    record: Option<String>,
    steps: BTreeSet<String>,
}

fn snapshot(c: &Cluster) -> Snapshot {
    let nodes = c
        .all_names()
        .into_iter()
        .map(|name| {
            let mut s = c.state(&name);
            s.history.clear();
            // Every clean `apt-get update` touches the update stamp, as apt does.
            s.apt_updated_ms = None;
            for d in s.domains.values_mut() {
                d.shutdown_started_ms = None;
            }
            (name, s)
        })
        .collect();
    let record = std::fs::read_to_string(c.state_dir().join("vm-record.json")).ok();
    Snapshot {
        nodes,
        record,
        steps: c.steps_in_progress(),
    }
}

/// The files the runbooks touch, per storage node (content, or null when absent), and the
/// listing of the apt archive cache. Read through ovsup, so the same on both backends.
fn files(c: &Cluster) -> Value {
    let script = format!(
        r#"
        let out = #{{}};
        for n in nodes() {{
            let f = #{{}};
            for p in ["{READY}", "{SETTINGS_PY}", "{SETTINGS_PY}.bak"] {{
                let r = try_query(n, ["cat", p]);
                f[p] = if r.code == 0 {{ r.stdout }} else {{ () }};
            }}
            f.archives = query(n, ["ls", "{ARCHIVES}"]).split("\n").filter(|l| l.ends_with(".deb"));
            out[n.name] = f;
        }}
        out
        "#
    );
    eval(c, &script)
}

/// Whether a command line changes a node (as opposed to reading it).
fn is_change(line: &str) -> bool {
    const CHANGES: [&str; 21] = [
        "apt-get install",
        "apt-get update",
        "start ",
        "stop ",
        "restart ",
        "systemctl start",
        "systemctl stop",
        "systemctl restart",
        "/etc/init.d/memcached start",
        "/etc/init.d/memcached stop",
        "/etc/init.d/memcached restart",
        "virsh start",
        "virsh shutdown",
        "virsh destroy",
        "fuser -k",
        "ays ",
        "python ",
        "sed ",
        "touch ",
        "write ",
        "mv ",
    ];
    let line = line
        .strip_prefix("DEBIAN_FRONTEND=noninteractive ")
        .unwrap_or(line);
    CHANGES.iter().any(|p| line.starts_with(p))
}

/// The changing commands a `--json` run sent (its `exec` events; a dry run's would-be
/// commands are `done` events only), file writes included, as `node: command`.
fn sent_changes(ran: &Ran) -> Vec<String> {
    ran.json_events()
        .iter()
        .filter(|e| e["event"] == "exec")
        .filter_map(|e| {
            let cmd = e["command"].as_str()?;
            is_change(cmd).then(|| format!("{}: {cmd}", e["node"].as_str().unwrap_or("?")))
        })
        .collect()
}

/// What a dry run would have run, as `node: command`.
fn planned(ran: &Ran) -> Vec<String> {
    ran.json_events()
        .iter()
        .filter(|e| e["event"] == "done" && e["dry_run"] == true)
        .map(|e| {
            format!(
                "{}: {}",
                e["node"].as_str().unwrap_or("?"),
                e["command"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Run `args` and check that it changed nothing at all: the node states (history aside) are
/// the same, no node received a changing command, and ovsup sent none. Returns the run.
fn assert_changes_nothing(c: &Cluster, args: &[&str], code: i32) -> Ran {
    let before = snapshot(c);
    let marks = c.history_marks();
    let ran = run(c, args).code(code);
    // `update` refreshes the apt lists each time, which changes nothing once they are fresh.
    let refresh = |l: &str| args.contains(&"update") && l.ends_with("apt-get update");
    let received: Vec<String> = c
        .history_since(&marks)
        .into_iter()
        .flat_map(|(n, lines)| {
            lines
                .into_iter()
                .filter(|l| is_change(l) && !refresh(l))
                .map(move |l| format!("{n}: {l}"))
        })
        .collect();
    assert!(
        received.is_empty(),
        "{args:?} sent changing commands: {received:#?}"
    );
    let after = snapshot(c);
    assert_snapshots_equal(&before, &after, args);
    // Nothing changing was sent either (file writes, and over SSH `sed` or `touch`, never
    // show in a node's history).
    let sent = sent_changes(&ran);
    let sent: Vec<&String> = sent.iter().filter(|l| !refresh(l)).collect();
    assert!(sent.is_empty(), "{args:?} sent: {sent:#?}");
    ran
}

/// A re-run right after a success: succeeds and changes nothing. `update` re-reads the apt
/// lists, which changes nothing either.
fn assert_idempotent(c: &Cluster, args: &[&str]) -> Ran {
    assert_changes_nothing(c, args, 0)
}

/// A `--dry-run` run: succeeds, changes nothing, and returns what it would have run.
fn assert_dry_run(c: &Cluster, args: &[&str]) -> Vec<String> {
    let mut full = vec!["--dry-run"];
    full.extend_from_slice(args);
    let ran = assert_changes_nothing(c, &full, 0);
    planned(&ran)
}

fn assert_snapshots_equal(before: &Snapshot, after: &Snapshot, what: &[&str]) {
    for (name, b) in &before.nodes {
        assert_eq!(
            Some(b),
            after.nodes.get(name),
            "{what:?} changed {name}'s state"
        );
    }
    assert_eq!(
        before.record, after.record,
        "{what:?} changed the VM record"
    );
    assert_eq!(
        before.steps, after.steps,
        "{what:?} changed the steps in progress"
    );
}

/// Each planned line `node: command` for `command` on every storage node.
fn assert_planned_everywhere(c: &Cluster, plan: &[String], command: impl Fn(&str) -> String) {
    for node in c.storage_names() {
        let line = format!("{node}: {}", command(&node));
        assert!(plan.contains(&line), "plan lacks {line:?}:\n{plan:#?}");
    }
}

fn upstart(node: &str) -> bool {
    // node-02 (index 1) runs systemd; node-01 and node-03 upstart.
    node != "node-02"
}

/// The command restarting (or starting, stopping) a job on the node's init system.
fn job_cmd(node: &str, action: &str, job: &str) -> String {
    if upstart(node) {
        format!("{action} {job}")
    } else {
        format!("systemctl {action} {job}.service")
    }
}

fn installed(c: &Cluster, node: &str, pkg: &str) -> String {
    c.state(node).packages[pkg]
        .installed
        .clone()
        .unwrap_or_default()
}

/// Every package of a component is at `version` on every storage node.
fn assert_installed(c: &Cluster, component: (&[&str], &str, &str), new: bool) {
    let (names, old, newest) = component;
    let want = if new { newest } else { old };
    for node in c.storage_names() {
        for pkg in names {
            assert_eq!(installed(c, &node, pkg), want, "{node}: {pkg}");
        }
    }
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

/// How many lines run the program with these exact arguments (however they were quoted).
fn argv_count(lines: &[String], argv: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| shlex::split(l).is_some_and(|words| words == argv))
        .count()
}

/// Whether a plan (from [`planned`]) runs `argv` on `node`.
fn plans(plan: &[String], node: &str, argv: &[&str]) -> bool {
    plan.iter().any(|l| {
        l.strip_prefix(&format!("{node}: "))
            .and_then(shlex::split)
            .is_some_and(|words| words == argv)
    })
}

/// The index of the first history line equal to `line`, for ordering checks.
fn at(history: &[String], line: &str) -> usize {
    history
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("history lacks {line:?}:\n{history:#?}"))
}

/// A map node → set of names, from a runbook value such as `running_vms` or `stop_vms` give.
fn name_sets(v: &Value) -> BTreeMap<String, BTreeSet<String>> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a map: {v}"))
        .iter()
        .map(|(n, names)| {
            let set = names
                .as_array()
                .unwrap_or_else(|| panic!("not an array: {names}"))
                .iter()
                .map(|x| x.as_str().expect("a name").to_string())
                .collect();
            (n.clone(), set)
        })
        .collect()
}

fn vm_record(c: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    name_sets(&eval(c, "vm_record()"))
}

fn no_empty(m: BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    m.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// The VMs each node ran before, shut down and started again: running as before (the VM
/// that was off stays off), each really was shut down and started once, the record is gone.
fn assert_vms_back(
    c: &Cluster,
    before: &BTreeMap<String, BTreeSet<String>>,
    sent: &BTreeMap<String, Vec<String>>,
) {
    assert_eq!(&c.running_vms(), before, "the VMs running afterwards");
    for node in c.storage_names() {
        let old = format!(
            "vm-{}-old",
            &node[5..].parse::<usize>().expect("node-NN") - 1
        );
        assert!(!before[&node].contains(&old));
        for vm in &before[&node] {
            let h = &sent[&node];
            assert_eq!(
                argv_count(h, &["virsh", "shutdown", vm]),
                1,
                "{node}: {vm}: {h:#?}"
            );
            assert_eq!(
                argv_count(h, &["virsh", "start", vm]),
                1,
                "{node}: {vm}: {h:#?}"
            );
        }
        assert!(
            !sent[&node].iter().any(|l| l.contains(&old)),
            "{node}: {old} was touched"
        );
    }
    assert!(!c.state_dir().join("vm-record.json").exists());
    assert!(vm_record(c).is_empty());
}

/// Every storage node is still offline (no runbook but postprocess brings the agent back).
fn assert_offline(c: &Cluster) {
    for node in c.storage_names() {
        assert_eq!(
            c.state(&node).agent_pid,
            None,
            "{node}: the agent runs again"
        );
    }
}

/// The controller instances were never sent a command.
fn assert_controllers_untouched(c: &Cluster) {
    for name in CONTROLLERS {
        let history = c.state(name).history;
        assert!(history.is_empty(), "{name}: {history:?}");
    }
}

/// Whether a command line only downloads packages (`apt-get install --download-only`).
fn is_download(line: &str) -> bool {
    line.contains("apt-get install") && line.contains("--download-only")
}

/// Whether a command line installs packages (not only downloads them).
fn is_install(line: &str) -> bool {
    line.contains("apt-get install") && !line.contains("--download-only")
}

/// Whether a command line begins a downtime: it stops a service or a VM.
fn is_stop(line: &str) -> bool {
    line.starts_with("stop ")
        || line.starts_with("systemctl stop ")
        || line == "/etc/init.d/memcached stop"
        || line.starts_with("virsh shutdown ")
}

/// Every command a `--json` run started, in the order it started them, as (node, command).
fn started(ran: &Ran) -> Vec<(String, String)> {
    ran.json_events()
        .iter()
        .filter(|e| e["event"] == "exec")
        .map(|e| {
            (
                e["node"].as_str().unwrap_or("?").to_string(),
                e["command"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Nothing downloads inside the downtime: in the order the run started its commands, every
/// node in `nodes` downloaded its packages before the first service or VM stop and the first
/// install on any node.
fn assert_downloaded_before_anything_stops(ran: &Ran, nodes: &[String]) {
    let sent = started(ran);
    let downtime = sent
        .iter()
        .position(|(_, l)| is_stop(l) || is_install(l))
        .unwrap_or_else(|| panic!("nothing stopped nor installed: {sent:#?}"));
    for node in nodes {
        let download = sent
            .iter()
            .position(|(n, l)| n == node && is_download(l))
            .unwrap_or_else(|| panic!("{node} downloaded nothing: {sent:#?}"));
        assert!(
            download < downtime,
            "{node} downloaded after {:?} on {}: {sent:#?}",
            sent[downtime].1,
            sent[downtime].0
        );
    }
}

/// Each of `pkgs` was fetched exactly once on every storage node: the install that followed
/// the download took the `.deb` from the apt cache.
fn assert_downloaded_once(c: &Cluster, pkgs: &[&str]) {
    for node in c.storage_names() {
        let s = c.state(&node);
        for pkg in pkgs {
            assert_eq!(s.packages[*pkg].downloads, 1, "{node}: {pkg} downloads");
        }
    }
}

/// A plan's lines (`node: command`) as (node, command).
fn planned_pairs(plan: &[String]) -> Vec<(String, String)> {
    plan.iter()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, l)| (n.to_string(), l.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The runbooks

on_both_backends!(
    update_refreshes_the_apt_lists_on_every_node,
    check_reports_installed_and_candidate_per_component_on_every_node,
    preprocess_takes_every_node_offline,
    postprocess_brings_every_node_online,
    framework_upgrades_and_restarts_in_the_legacy_order,
    arakoon_upgrades_then_restarts_each_cluster_where_its_members_run,
    volumedriver_stops_and_starts_the_vms_around_the_upgrade,
    volumedriver_with_skip_vm_leaves_the_vms_to_the_operator,
    alba_restarts_its_daemons_and_backend_clusters_around_a_vm_stop,
    alba_with_skip_vm_leaves_the_vms_to_the_operator,
    stop_vm_records_and_stops_every_running_vm,
    start_vm_starts_the_recorded_vms_and_clears_the_record,
    sync_downloads_each_package_once_and_installs_download_nothing_more,
    guards_refuse_and_say_what_to_do,
);

fn update_refreshes_the_apt_lists_on_every_node(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let plan = assert_dry_run(&c, &["update"]);
    assert_planned_everywhere(&c, &plan, |_| "apt-get update".into());
    // The human output prints the plan too.
    let human = ovsup(&c).args(["--dry-run", "update"]).run().code(0);
    for node in c.storage_names() {
        let line = format!("{node}: would run: apt-get update");
        human.stderr_has(&line);
    }
    for node in c.storage_names() {
        let alba = &c.state(&node).packages["alba"];
        assert_eq!(alba.candidate.as_deref(), Some(ALBA.1), "{node}: dry run");
    }

    let marks = c.history_marks();
    run(&c, &["update"]).code(0);
    let sent = c.history_since(&marks);
    for node in c.storage_names() {
        assert_eq!(count(&sent[&node], "apt-get update"), 1, "{node}");
        let s = c.state(&node);
        for (names, old, new) in [FRAMEWORK, VOLUMEDRIVER, ALBA, ARAKOON] {
            for pkg in names {
                let p = &s.packages[*pkg];
                assert_eq!(p.candidate.as_deref(), Some(new), "{node}: {pkg}");
                assert_eq!(p.installed.as_deref(), Some(old), "{node}: {pkg}");
            }
        }
    }
    assert_controllers_untouched(&c);
    assert_idempotent(&c, &["update"]);
}

fn check_reports_installed_and_candidate_per_component_on_every_node(backend: Backend) {
    let c = Cluster::new(backend, 3);
    // Before `update` the lists know nothing newer.
    let v = value(&run(&c, &["check"]).code(0));
    for comp in ["arakoon", "framework", "volumedriver", "alba"] {
        assert_eq!(v[comp], json!({"pending": false, "nodes": {}}), "{v}");
    }
    // ... and check says so: "nothing pending" from lists never updated means nothing.
    let stale = ovsup(&c).args(["check"]).run().code(0);
    for node in c.storage_names() {
        stale.stderr_has(&format!(
            "{node}: its apt lists were never updated (no clean apt-get update): run ovsup update first"
        ));
    }
    run(&c, &["update"]).code(0);

    let expected = |names: &[&str], old: &str, new: &str, nodes: &[String]| {
        let per: serde_json::Map<String, Value> = names
            .iter()
            .map(|p| (p.to_string(), json!(format!("{old} → {new}"))))
            .collect();
        let nodes: serde_json::Map<String, Value> = nodes
            .iter()
            .map(|n| (n.clone(), Value::Object(per.clone())))
            .collect();
        json!({"pending": true, "nodes": nodes})
    };
    let all = c.storage_names();
    let ran = assert_idempotent(&c, &["check"]);
    let v = value(&ran);
    for (comp, (names, old, new)) in [
        ("framework", FRAMEWORK),
        ("volumedriver", VOLUMEDRIVER),
        ("alba", ALBA),
        ("arakoon", ARAKOON),
    ] {
        assert_eq!(v[comp], expected(names, old, new, &all), "{comp}");
    }
    // A dry run reads the same.
    let dry = assert_changes_nothing(&c, &["--dry-run", "check"], 0);
    assert_eq!(value(&dry), v);
    // The human output says it the legacy way, and names node and versions.
    let human = ovsup(&c).args(["check"]).run().code(0);
    for comp in ["arakoon", "framework", "volumedriver", "alba"] {
        human.stderr_has(&format!("[+] update for {comp}: True"));
    }
    human.stderr_has(&format!("node-03: alba {} → {}", ALBA.1, ALBA.2));
    // The lists are fresh now: no warning.
    human.stderr_lacks("apt lists");

    // Updates pending on some nodes only are seen (the legacy check looked at one node).
    eval(
        &c,
        r#"apt_install(nodes()[0], "alba"); apt_install(nodes()[0], "arakoon"); apt_install(nodes()[1], "arakoon"); apt_install(nodes()[2], "arakoon")"#,
    );
    let v = value(&run(&c, &["check"]).code(0));
    assert_eq!(
        v["alba"],
        expected(ALBA.0, ALBA.1, ALBA.2, &all[1..]),
        "{v}"
    );
    assert_eq!(v["arakoon"], json!({"pending": false, "nodes": {}}), "{v}");
    assert_controllers_untouched(&c);
}

fn preprocess_takes_every_node_offline(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let plan = assert_dry_run(&c, &["preprocess"]);
    assert_planned_everywhere(&c, &plan, |_| "fuser -k 4446/tcp".into());
    for node in c.storage_names() {
        assert!(c.state(&node).agent_pid.is_some(), "{node}: dry run");
    }

    let marks = c.history_marks();
    run(&c, &["preprocess"]).code(0);
    let sent = c.history_since(&marks);
    for node in c.storage_names() {
        assert_eq!(c.state(&node).agent_pid, None, "{node}");
        assert_eq!(count(&sent[&node], "fuser -k 4446/tcp"), 1, "{node}");
    }
    assert_eq!(
        eval(&c, "is_offline(nodes())"),
        json!({"node-01": true, "node-02": true, "node-03": true})
    );
    assert_controllers_untouched(&c);
    assert_idempotent(&c, &["preprocess"]);
}

fn postprocess_brings_every_node_online(backend: Backend) {
    let c = Cluster::new(backend, 3);
    run(&c, &["preprocess"]).code(0);
    let plan = assert_dry_run(&c, &["postprocess"]);
    assert_planned_everywhere(&c, &plan, |_| "ays start -n jsagent".into());

    let marks = c.history_marks();
    run(&c, &["postprocess"]).code(0);
    let sent = c.history_since(&marks);
    for node in c.storage_names() {
        assert!(c.state(&node).agent_pid.is_some(), "{node}");
        assert_eq!(count(&sent[&node], "ays start -n jsagent"), 1, "{node}");
    }
    assert_eq!(
        eval(&c, "is_offline(nodes())"),
        json!({"node-01": false, "node-02": false, "node-03": false})
    );
    assert_controllers_untouched(&c);
    assert_idempotent(&c, &["postprocess"]);
}

fn framework_upgrades_and_restarts_in_the_legacy_order(backend: Backend) {
    let c = prepared(backend);
    let plan = assert_dry_run(&c, &["framework"]);
    assert_planned_everywhere(&c, &plan, |n| job_cmd(n, "stop", "ovs-watcher-framework"));
    assert_planned_everywhere(&c, &plan, |_| "/etc/init.d/memcached stop".into());
    assert_planned_everywhere(&c, &plan, |_| format!("touch {READY}"));
    assert_planned_everywhere(&c, &plan, |_| {
        format!("python {SCRIPTS}/post-upgrade-all.py")
    });
    assert_planned_everywhere(&c, &plan, |n| job_cmd(n, "restart", "ovs-webapp-api"));
    assert_planned_everywhere(&c, &plan, |_| "ays restart -n nginx".into());
    assert!(
        plan.iter().any(|l| l.starts_with("node-02: ")
            && l.contains("apt-get install")
            && l.contains("openvstorage-webapps")),
        "{plan:#?}"
    );
    assert_eq!(
        plan.iter()
            .filter(|l| l.ends_with("post-upgrade-single.py"))
            .count(),
        1,
        "{plan:#?}"
    );
    // The packages are downloaded before anything stops, unless told not to.
    for node in c.storage_names() {
        let on = |l: &String| l.starts_with(&format!("{node}: "));
        let download = plan
            .iter()
            .position(|l| on(l) && is_download(l) && l.contains("openvstorage-webapps"))
            .unwrap_or_else(|| panic!("{node}: no download planned: {plan:#?}"));
        let stop = format!(
            "{node}: {}",
            job_cmd(&node, "stop", "ovs-watcher-framework")
        );
        assert!(download < at(&plan, &stop), "{node}: {plan:#?}");
    }
    let unstaged = assert_dry_run(&c, &["framework", "--set", "prestage=false"]);
    assert!(!unstaged.iter().any(|l| is_download(l)), "{unstaged:#?}");

    // A slow election after ovsdb's members start again: the step waits for the master, so
    // that the next step does not find the cluster mid-election.
    for node in c.storage_names() {
        c.update(&node, |s| {
            ovsup::sim::cli::set_fault(s, "election_ms", "2500")
        })
        .expect("election_ms fault");
    }
    let pids_before = pids(&c);
    let vms_before = c.running_vms();
    let marks = c.history_marks();
    let ran = run(&c, &["framework"]).code(0);
    assert_eq!(
        c.eval_value(&[], r#"arakoon_clusters("ovsdb")[0].healthy"#),
        json!(true),
        "framework ended with ovsdb still electing"
    );
    let v = value(&ran);
    assert_eq!(v["updated"], true, "{v}");
    let sent = c.history_since(&marks);
    assert_downloaded_before_anything_stops(&ran, &c.storage_names());
    assert_downloaded_once(&c, FRAMEWORK.0);

    assert_installed(&c, FRAMEWORK, true);
    assert_installed(&c, VOLUMEDRIVER, false);
    assert_installed(&c, ALBA, false);
    assert_installed(&c, ARAKOON, false);
    let restarted = restarted(&pids_before, &pids(&c));
    let files = files(&c);
    for node in c.storage_names() {
        let want: BTreeSet<String> = [
            "ovs-watcher-framework",
            "ovs-webapp-api",
            "ovs-arakoon-ovsdb",
        ]
        .map(String::from)
        .into();
        assert_eq!(restarted[&node], want, "{node}: jobs with a new pid");
        let s = c.state(&node);
        assert!(s.memcached_running, "{node}");
        let h = &sent[&node];
        // memcached: stopped, started, restarted, once each.
        for action in ["stop", "start", "restart"] {
            assert_eq!(
                count(h, &format!("/etc/init.d/memcached {action}")),
                1,
                "{node}: {h:#?}"
            );
        }
        let single = count(h, &format!("python {SCRIPTS}/post-upgrade-single.py"));
        assert_eq!(
            single,
            usize::from(node == "node-01"),
            "{node}: post-upgrade-single"
        );
        assert_eq!(
            count(h, &format!("python {SCRIPTS}/post-upgrade-all.py")),
            1,
            "{node}"
        );
        assert_eq!(count(h, "ays install -r -n ovs_branding"), 1, "{node}");
        assert_eq!(count(h, "ays restart -n nginx"), 1, "{node}");
        // The legacy order, on each node, after the download.
        let install = h
            .iter()
            .position(|l| is_install(l) && l.contains("openvstorage"))
            .unwrap_or_else(|| panic!("{node}: no install: {h:#?}"));
        let download = h
            .iter()
            .position(|l| is_download(l) && l.contains("openvstorage"))
            .unwrap_or_else(|| panic!("{node}: no download: {h:#?}"));
        assert!(
            download < at(h, &job_cmd(&node, "stop", "ovs-watcher-framework")),
            "{node}: {h:#?}"
        );
        assert!(
            at(h, &job_cmd(&node, "stop", "ovs-watcher-framework")) < install,
            "{node}: {h:#?}"
        );
        assert!(
            at(h, "/etc/init.d/memcached stop") < install,
            "{node}: {h:#?}"
        );
        assert!(
            at(h, &job_cmd(&node, "stop", "ovs-arakoon-ovsdb")) < install,
            "{node}: {h:#?}"
        );
        assert!(
            install < at(h, "/etc/init.d/memcached start"),
            "{node}: {h:#?}"
        );
        assert!(
            install < at(h, &job_cmd(&node, "start", "ovs-arakoon-ovsdb")),
            "{node}: {h:#?}"
        );
        let all_hook = at(h, &format!("python {SCRIPTS}/post-upgrade-all.py"));
        assert!(
            at(h, &job_cmd(&node, "start", "ovs-arakoon-ovsdb")) < all_hook,
            "{node}: {h:#?}"
        );
        assert!(
            all_hook < at(h, "/etc/init.d/memcached restart"),
            "{node}: {h:#?}"
        );
        assert!(
            at(h, "ays install -r -n ovs_branding") < at(h, "ays restart -n nginx"),
            "{node}: {h:#?}"
        );
        // No VM was touched.
        assert!(
            !h.iter()
                .any(|l| l.starts_with("virsh shutdown") || l.starts_with("virsh start")),
            "{node}"
        );
        // Files: the upgrade marker, and the web API open to every host, the original kept.
        let f = &files[node.as_str()];
        assert!(f[READY].is_string(), "{node}: {f}");
        let settings = f[SETTINGS_PY]
            .as_str()
            .unwrap_or_else(|| panic!("{node}: {f}"));
        assert!(
            settings.contains("\nALLOWED_HOSTS = ['*']\n"),
            "{node}: {settings}"
        );
        assert!(!settings.contains("localhost"), "{node}: {settings}");
        assert!(
            settings.contains("TIME_ZONE = 'UTC'\n"),
            "{node}: {settings}"
        );
        let bak = f[format!("{SETTINGS_PY}.bak").as_str()]
            .as_str()
            .unwrap_or_else(|| panic!("{node}: {f}"));
        assert!(
            bak.contains("\nALLOWED_HOSTS = ['localhost']\n"),
            "{node}: {bak}"
        );
    }
    assert_eq!(c.running_vms(), vms_before);
    assert!(c.steps_in_progress().is_empty());
    assert_controllers_untouched(&c);
    assert_offline(&c);

    let again = assert_idempotent(&c, &["framework"]);
    assert_eq!(value(&again)["updated"], false);
}

fn arakoon_upgrades_then_restarts_each_cluster_where_its_members_run(backend: Backend) {
    // The realistic layout: node-01 is no member of the backend's clusters, node-02 none of
    // mybackend-nsm_0.
    let c = prepared_on(backend, Layout::default_for(3));
    let clusters = cluster_names(&c, |_| true);
    let plan = assert_dry_run(&c, &["arakoon"]);
    assert!(
        plan.iter()
            .any(|l| l.starts_with("node-03: ") && is_install(l) && l.ends_with(" arakoon")),
        "{plan:#?}"
    );
    assert_hooks_on_members(&c, &hook_calls(planned_pairs(&plan)), &clusters);

    let jobs_before = job_names(&c);
    let pids_before = pids(&c);
    let vms_before = c.running_vms();
    let marks = c.history_marks();
    let v = value(&run(&c, &["arakoon"]).code(0));
    let sent = c.history_since(&marks);
    let mut named: Vec<String> = v["clusters"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|x| x.as_str().expect("name").to_string())
        .collect();
    named.sort();
    assert_eq!(named, clusters, "{v}");

    assert_installed(&c, ARAKOON, true);
    assert_installed(&c, FRAMEWORK, false);
    // Each cluster's hook ran once, on one of its member nodes, with that node's address.
    assert_hooks_on_members(&c, &hook_calls(sent_pairs(&sent)), &clusters);
    // Its members got a new pid exactly on the member nodes; nothing else was restarted, and
    // no node got a member job it did not have.
    assert_only_members_restarted(&c, &pids_before, &clusters, "arakoon");
    assert_eq!(job_names(&c), jobs_before, "jobs created or removed");
    // The value says it too: per cluster, each member node's pid before and after, a master.
    let restarts = v["restarted"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(restarts.len(), clusters.len(), "{v}");
    for r in restarts {
        let cluster = r["cluster"].as_str().unwrap_or_else(|| panic!("{r}"));
        let members = member_nodes(&c, cluster);
        let on: BTreeSet<String> = r["members"]
            .as_object()
            .unwrap_or_else(|| panic!("{r}"))
            .keys()
            .cloned()
            .collect();
        assert_eq!(on, members, "{cluster}: {r}");
        for (node, m) in r["members"].as_object().into_iter().flatten() {
            assert!(
                m["before"].is_number() && m["after"].is_number() && m["before"] != m["after"],
                "{cluster} on {node}: {m}"
            );
        }
        let master = r["master_node"].as_str().unwrap_or_else(|| panic!("{r}"));
        assert!(members.contains(master), "{cluster}: master on {master}");
    }
    // Arakoon needs no VM stop (the operator guide wins over the legacy script).
    assert_eq!(c.running_vms(), vms_before);
    for node in c.storage_names() {
        assert!(
            !sent[&node].iter().any(|l| l.starts_with("virsh shutdown")),
            "{node}"
        );
    }
    assert_controllers_untouched(&c);
    assert_offline(&c);

    let again = assert_idempotent(&c, &["arakoon"]);
    assert_eq!(value(&again)["updated"], false);
}

fn volumedriver_stops_and_starts_the_vms_around_the_upgrade(backend: Backend) {
    // The realistic layout: node-01 serves vpool1, node-02 vpool1 and vpool2, node-03 vpool2.
    let c = prepared_on(backend, Layout::default_for(3));
    let drivers = |node: &str| -> BTreeSet<String> {
        vpools(&c, node)
            .iter()
            .map(|vp| format!("ovs-volumedriver_{vp}"))
            .collect()
    };
    let plan = assert_dry_run(&c, &["volumedriver"]);
    for node in c.storage_names() {
        for vp in ["vpool1", "vpool2"] {
            let line = format!(
                "{node}: {}",
                job_cmd(&node, "restart", &format!("ovs-volumedriver_{vp}"))
            );
            assert_eq!(
                plan.contains(&line),
                vpools(&c, &node).iter().any(|v| v == vp),
                "{line}: {plan:#?}"
            );
        }
    }
    assert!(
        plans(
            &plan,
            "node-01",
            &["virsh", "shutdown", "vm-0 o'brien test"]
        ),
        "{plan:#?}"
    );
    assert!(
        plan.contains(&"node-02: virsh shutdown vm-1-web".to_string()),
        "{plan:#?}"
    );
    assert!(
        plan.iter().any(|l| l.starts_with("node-02: ")
            && is_install(l)
            && l.contains("volumedriver-server")),
        "{plan:#?}"
    );

    let pids_before = pids(&c);
    let vms_before = c.running_vms();
    let marks = c.history_marks();
    let ran = run(&c, &["--yes", "volumedriver"]).code(0);
    let v = value(&ran);
    let sent = c.history_since(&marks);
    assert_eq!(name_sets(&v["vms_stopped"]), vms_before, "{v}");
    assert_installed(&c, VOLUMEDRIVER, true);
    assert_installed(&c, ALBA, false);
    // Downloaded before the first VM went down, and not again by the install.
    assert_downloaded_before_anything_stops(&ran, &c.storage_names());
    assert_downloaded_once(&c, VOLUMEDRIVER.0);
    let restarted = restarted(&pids_before, &pids(&c));
    for node in c.storage_names() {
        assert_eq!(restarted[&node], drivers(&node), "{node}");
        // The VMs were off while the driver was installed and restarted.
        let h = &sent[&node];
        let install = h
            .iter()
            .position(|l| is_install(l))
            .unwrap_or_else(|| panic!("{node}: no install: {h:#?}"));
        let last_shutdown = h
            .iter()
            .rposition(|l| l.starts_with("virsh shutdown"))
            .expect("shutdown");
        let first_start = h
            .iter()
            .position(|l| l.starts_with("virsh start"))
            .expect("start");
        assert!(last_shutdown < install, "{node}: {h:#?}");
        for job in drivers(&node) {
            let restart = at(h, &job_cmd(&node, "restart", &job));
            assert!(
                install < restart && restart < first_start,
                "{node}: {job}: {h:#?}"
            );
        }
    }
    assert_vms_back(&c, &vms_before, &sent);
    assert!(c.steps_in_progress().is_empty());
    assert_controllers_untouched(&c);
    assert_offline(&c);

    let again = assert_idempotent(&c, &["--yes", "volumedriver"]);
    assert_eq!(value(&again)["updated"], false);
}

fn volumedriver_with_skip_vm_leaves_the_vms_to_the_operator(backend: Backend) {
    let c = prepared(backend);
    let vms_before = c.running_vms();
    run(&c, &["--yes", "stop-vm"]).code(0);
    let recorded = vm_record(&c);
    assert_eq!(recorded, vms_before);
    let plan = assert_dry_run(&c, &["--skip-vm", "volumedriver"]);
    assert_planned_everywhere(&c, &plan, |n| {
        job_cmd(n, "restart", "ovs-volumedriver_vpool1")
    });
    assert!(!plan.iter().any(|l| l.contains("virsh")), "{plan:#?}");

    let pids_before = pids(&c);
    let marks = c.history_marks();
    // No --yes: nothing to confirm, no VM is stopped.
    let v = value(&run(&c, &["--skip-vm", "volumedriver"]).code(0));
    let sent = c.history_since(&marks);
    assert_eq!(v["vms_stopped"], json!({}), "{v}");
    assert_installed(&c, VOLUMEDRIVER, true);
    let restarted = restarted(&pids_before, &pids(&c));
    for node in c.storage_names() {
        assert_eq!(
            restarted[&node],
            BTreeSet::from(["ovs-volumedriver_vpool1".to_string()]),
            "{node}"
        );
        assert!(
            !sent[&node]
                .iter()
                .any(|l| l.starts_with("virsh start") || l.starts_with("virsh shutdown")),
            "{node}"
        );
        assert!(
            c.running_vms()[&node].is_empty(),
            "{node}: the VMs stay stopped"
        );
    }
    assert_eq!(vm_record(&c), recorded, "the record is left for start-vm");
    assert_idempotent(&c, &["--skip-vm", "volumedriver"]);

    run(&c, &["start-vm"]).code(0);
    assert_eq!(c.running_vms(), vms_before);
    assert!(vm_record(&c).is_empty());
}

fn alba_restarts_its_daemons_and_backend_clusters_around_a_vm_stop(backend: Backend) {
    // The realistic layout: node-01 serves vpool1 only (no backend jobs, no ASD, no member
    // of a backend cluster); node-02 and node-03 run the backend's jobs and its members.
    let c = prepared_on(backend, Layout::default_for(3));
    let backend_clusters = cluster_names(&c, |n| n != "ovsdb" && n != "voldrv");
    let plan = assert_dry_run(&c, &["alba"]);
    for node in c.storage_names() {
        for vp in vpools(&c, &node) {
            let proxy = job_cmd(&node, "restart", &format!("ovs-albaproxy_{vp}"));
            assert!(plan.contains(&format!("{node}: {proxy}")), "{plan:#?}");
        }
        let rebalancer = format!(
            "{node}: {}",
            job_cmd(&node, "restart", "ovs-alba-rebalancer_mybackend")
        );
        assert_eq!(
            plan.contains(&rebalancer),
            !backends(&c, &node).is_empty(),
            "{rebalancer}: {plan:#?}"
        );
    }
    assert_hooks_on_members(&c, &hook_calls(planned_pairs(&plan)), &backend_clusters);
    assert!(
        plan.contains(&"node-03: virsh shutdown vm-2-db".to_string()),
        "{plan:#?}"
    );

    let jobs_before = job_names(&c);
    let pids_before = pids(&c);
    let vms_before = c.running_vms();
    let marks = c.history_marks();
    let ran = run(&c, &["--yes", "alba"]).code(0);
    let v = value(&ran);
    let sent = c.history_since(&marks);
    assert_eq!(name_sets(&v["vms_stopped"]), vms_before, "{v}");
    assert_installed(&c, ALBA, true);
    assert_installed(&c, VOLUMEDRIVER, false);
    assert_downloaded_before_anything_stops(&ran, &c.storage_names());
    assert_downloaded_once(&c, ALBA.0);
    // The backend's Arakoon clusters (not ovsdb nor voldrv), each through one member node.
    assert_hooks_on_members(&c, &hook_calls(sent_pairs(&sent)), &backend_clusters);
    let restarted = restarted(&pids_before, &pids(&c));
    for node in c.storage_names() {
        let asds: Vec<String> = asds(&c, &node)
            .iter()
            .map(|id| format!("alba-asd-{id}"))
            .collect();
        let proxies: Vec<String> = vpools(&c, &node)
            .iter()
            .map(|vp| format!("ovs-albaproxy_{vp}"))
            .collect();
        let mut jobs = Vec::new();
        for b in backends(&c, &node) {
            jobs.push(format!("ovs-alba-maintenance_{b}"));
            jobs.push(format!("ovs-alba-rebalancer_{b}"));
        }
        let mut want: BTreeSet<String> =
            asds.iter().chain(&proxies).chain(&jobs).cloned().collect();
        want.extend(member_jobs(&c, &node, &backend_clusters));
        assert_eq!(restarted[&node], want, "{node}: jobs with a new pid");
        // Install, ASDs, proxies, then maintenance before rebalancer: those the node runs.
        let h = &sent[&node];
        let install = h
            .iter()
            .position(|l| is_install(l))
            .unwrap_or_else(|| panic!("{node}: no install: {h:#?}"));
        let mut order = vec![install];
        order.extend(asds.first().map(|j| at(h, &job_cmd(&node, "restart", j))));
        order.extend(
            proxies
                .first()
                .map(|j| at(h, &job_cmd(&node, "restart", j))),
        );
        order.extend(jobs.iter().map(|j| at(h, &job_cmd(&node, "restart", j))));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{node}: {h:#?}");
    }
    assert_eq!(job_names(&c), jobs_before, "jobs created or removed");
    assert_vms_back(&c, &vms_before, &sent);
    assert!(c.steps_in_progress().is_empty());
    assert_controllers_untouched(&c);
    assert_offline(&c);

    let again = assert_idempotent(&c, &["--yes", "alba"]);
    assert_eq!(value(&again)["updated"], false);
}

fn alba_with_skip_vm_leaves_the_vms_to_the_operator(backend: Backend) {
    let c = prepared(backend);
    let vms_before = c.running_vms();
    run(&c, &["--yes", "stop-vm"]).code(0);
    let recorded = vm_record(&c);
    let plan = assert_dry_run(&c, &["--skip-vm", "alba"]);
    assert!(!plan.iter().any(|l| l.contains("virsh")), "{plan:#?}");
    assert_planned_everywhere(&c, &plan, |n| {
        job_cmd(n, "restart", "ovs-alba-maintenance_mybackend")
    });

    let pids_before = pids(&c);
    let marks = c.history_marks();
    run(&c, &["--skip-vm", "alba"]).code(0);
    let sent = c.history_since(&marks);
    assert_installed(&c, ALBA, true);
    let restarted = restarted(&pids_before, &pids(&c));
    for (i, node) in c.storage_names().iter().enumerate() {
        assert!(
            restarted[node].contains("ovs-albaproxy_vpool1"),
            "{node}: {:?}",
            restarted[node]
        );
        assert!(
            restarted[node].contains(&format!("alba-asd-{}", asd_ids(i)[1])),
            "{node}"
        );
        assert!(!restarted[node].contains("ovs-arakoon-ovsdb"), "{node}");
        assert!(
            !sent[node]
                .iter()
                .any(|l| l.starts_with("virsh start") || l.starts_with("virsh shutdown")),
            "{node}"
        );
    }
    assert!(restarted["node-01"].contains("ovs-arakoon-mybackend-nsm_0"));
    assert!(
        c.running_vms().values().all(BTreeSet::is_empty),
        "the VMs stay stopped"
    );
    assert_eq!(vm_record(&c), recorded);
    assert_idempotent(&c, &["--skip-vm", "alba"]);

    run(&c, &["start-vm"]).code(0);
    assert_eq!(c.running_vms(), vms_before);
}

fn stop_vm_records_and_stops_every_running_vm(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let vms_before = c.running_vms();
    assert_eq!(vms_before["node-01"].len(), 3);
    let plan = assert_dry_run(&c, &["stop-vm"]);
    for (node, vms) in &vms_before {
        for vm in vms {
            assert!(plans(&plan, node, &["virsh", "shutdown", vm]), "{plan:#?}");
        }
    }
    assert_eq!(
        plan.iter().filter(|l| l.contains("virsh shutdown")).count(),
        7,
        "{plan:#?}"
    );

    let v = value(&run(&c, &["--yes", "stop-vm"]).code(0));
    assert_eq!(name_sets(&v), vms_before, "{v}");
    assert!(
        c.running_vms().values().all(BTreeSet::is_empty),
        "{:?}",
        c.running_vms()
    );
    assert!(c.state_dir().join("vm-record.json").exists());
    assert_eq!(vm_record(&c), vms_before);
    // Nothing runs any more: a second stop-vm does nothing and keeps the record.
    assert_idempotent(&c, &["stop-vm"]);
    assert_eq!(vm_record(&c), vms_before);
    // The VMs that were off were not touched, and nothing depends on being offline.
    assert!(
        !c.state("node-02")
            .history
            .iter()
            .any(|l| l.contains("vm-1-old"))
    );
    assert_controllers_untouched(&c);
}

fn start_vm_starts_the_recorded_vms_and_clears_the_record(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let vms_before = c.running_vms();
    // Nothing recorded: nothing to do.
    assert_idempotent(&c, &["start-vm"]);
    let marks = c.history_marks();
    run(&c, &["--yes", "stop-vm"]).code(0);
    let plan = assert_dry_run(&c, &["start-vm"]);
    for (node, vms) in &vms_before {
        for vm in vms {
            assert!(plans(&plan, node, &["virsh", "start", vm]), "{plan:#?}");
        }
    }
    assert_eq!(vm_record(&c), vms_before, "a dry run keeps the record");

    let v = value(&run(&c, &["start-vm"]).code(0));
    let sent = c.history_since(&marks);
    assert_eq!(no_empty(name_sets(&v)), vms_before, "{v}");
    assert_vms_back(&c, &vms_before, &sent);
    // The record is gone: the next stop-vm is not refused (the legacy list stayed).
    assert_idempotent(&c, &["start-vm"]);
    assert_controllers_untouched(&c);
}

fn sync_downloads_each_package_once_and_installs_download_nothing_more(backend: Backend) {
    let c = Cluster::new(backend, 3);
    // Nothing pending before `update`.
    assert_eq!(
        value(&assert_idempotent(&c, &["sync"])),
        json!({"downloaded": [], "copied": 0})
    );
    run(&c, &["update"]).code(0);
    let plan = assert_dry_run(&c, &["sync"]);
    let downloads: Vec<&String> = plan
        .iter()
        .filter(|l| l.contains("--download-only"))
        .collect();
    assert_eq!(downloads.len(), 1, "{plan:#?}");

    let v = value(&run(&c, &["sync"]).code(0));
    let packages: Vec<&str> = [FRAMEWORK, VOLUMEDRIVER, ALBA, ARAKOON]
        .iter()
        .flat_map(|(names, _, _)| names.iter().copied())
        .collect();
    let mut sorted = packages.clone();
    sorted.sort_unstable();
    assert_eq!(v["downloaded"], json!(sorted), "{v}");
    let downloads = |c: &Cluster| -> BTreeMap<&str, u32> {
        packages
            .iter()
            .map(|p| {
                let sum = c
                    .storage_names()
                    .iter()
                    .map(|n| c.state(n).packages[*p].downloads)
                    .sum();
                (*p, sum)
            })
            .collect()
    };
    let once: BTreeMap<&str, u32> = packages.iter().map(|p| (*p, 1)).collect();
    assert_eq!(
        downloads(&c),
        once,
        "each package downloaded once across the nodes"
    );
    let files = files(&c);
    for node in c.storage_names() {
        let debs: BTreeSet<String> = files[node.as_str()]["archives"]
            .as_array()
            .expect("listing")
            .iter()
            .map(|f| f.as_str().expect("name").to_string())
            .collect();
        for (names, _, new) in [FRAMEWORK, VOLUMEDRIVER, ALBA, ARAKOON] {
            for pkg in names {
                let deb = format!("{pkg}_{new}_amd64.deb");
                assert!(debs.contains(&deb), "{node}: no {deb} in {debs:?}");
            }
        }
        // Nothing was installed.
        assert_eq!(installed(&c, &node, "alba"), ALBA.1);
    }
    let again = assert_idempotent(&c, &["sync"]);
    assert_eq!(value(&again), json!({"downloaded": [], "copied": 0}));

    // The updates then install from the cache: not one more download.
    run(&c, &["preprocess"]).code(0);
    run(&c, &["framework"]).code(0);
    run(&c, &["arakoon"]).code(0);
    run(&c, &["--yes", "stop-vm"]).code(0);
    run(&c, &["--skip-vm", "volumedriver"]).code(0);
    run(&c, &["--skip-vm", "alba"]).code(0);
    for component in [FRAMEWORK, VOLUMEDRIVER, ALBA, ARAKOON] {
        assert_installed(&c, component, true);
    }
    assert_eq!(downloads(&c), once, "the installs downloaded again");
    assert_controllers_untouched(&c);
}

fn guards_refuse_and_say_what_to_do(backend: Backend) {
    let c = Cluster::new(backend, 3);
    run(&c, &["update"]).code(0);
    // Online: the dangerous runbooks refuse, naming every node, and change nothing.
    for runbook in ["framework", "arakoon", "volumedriver", "alba"] {
        assert_changes_nothing(&c, &["--yes", runbook], 3)
            .json_error_has("node-01, node-02, node-03")
            .json_error_has("ovsup preprocess");
    }
    ovsup(&c)
        .args(["arakoon"])
        .run()
        .code(3)
        .stderr_has("refused");
    // One node online is enough to refuse.
    eval(&c, "set_offline(nodes()[0]); set_offline(nodes()[2])");
    assert_changes_nothing(&c, &["framework"], 3)
        .json_error_has("node-02")
        .json_error_lacks("node-01");
    // --force overrides, loudly.
    ovsup(&c)
        .args(["--force", "arakoon"])
        .run()
        .code(0)
        .stderr_has("--force")
        .stderr_has("ONLINE")
        .stderr_has("node-02");
    assert_installed(&c, ARAKOON, true);

    run(&c, &["preprocess"]).code(0);
    // Stopping VMs needs a confirmation: without --yes and without a terminal, refused,
    // with nothing stopped, installed, or left in progress.
    for runbook in ["stop-vm", "volumedriver", "alba"] {
        assert_changes_nothing(&c, &[runbook], 3).json_error_has("--yes");
    }
    // VMs recorded by stop-vm: volumedriver and alba without --skip-vm refuse (the
    // operator forgot --skip-vm), even after a refused run of the same step.
    let vms_before = c.running_vms();
    run(&c, &["--yes", "stop-vm"]).code(0);
    for runbook in ["volumedriver", "alba"] {
        assert_changes_nothing(&c, &["--yes", runbook], 3)
            .json_error_has("7 VMs")
            .json_error_has("--skip-vm")
            .json_error_has("start-vm");
    }
    assert_eq!(vm_record(&c), vms_before);
    assert!(c.running_vms().values().all(BTreeSet::is_empty));
    run(&c, &["start-vm"]).code(0);
    assert_eq!(c.running_vms(), vms_before);
    // With the record empty, the same runs go through.
    run(&c, &["--yes", "volumedriver"]).code(0);
    assert_installed(&c, VOLUMEDRIVER, true);
    assert_eq!(c.running_vms(), vms_before);
    // The forgotten --skip-vm is refused even when nothing is pending any more: the guard
    // comes before "nothing to do".
    run(&c, &["--yes", "stop-vm"]).code(0);
    assert_changes_nothing(&c, &["--yes", "volumedriver"], 3).json_error_has("--skip-vm");
    run(&c, &["start-vm"]).code(0);
    assert_eq!(c.running_vms(), vms_before);
    assert_controllers_untouched(&c);
}
