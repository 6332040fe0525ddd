//! The operator's procedure of docs/upgrade-guide.md as scenario tests: the whole guide on a
//! 3-node bed (both backends); every runbook run again right after it succeeded changes
//! nothing; runs killed with SIGKILL at several points converge when run again, with no VM
//! forgotten; the run lock; and the legacy flags' order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ovsup::sim::cluster::CONTROLLERS;
use ovsup::sim::state::{DomState, NodeState, now_ms};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::background::{Background, WAIT, wait_until};
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};

/// The components, as `check` reports them.
const COMPONENTS: [&str; 4] = ["arakoon", "framework", "volumedriver", "alba"];

// ---------------------------------------------------------------------------------------------
// Running ovsup

/// `ovsup` on the cluster, with a legacy VM record path private to the test (absent), so that
/// a `/tmp/ovs-machine-state.json` on the machine running the tests changes nothing; and its
/// temporary files (the ssh control sockets) in the test's directory, so that a run killed
/// with SIGKILL, which cannot remove its control directory, leaves nothing in /tmp.
fn ovsup(c: &Cluster) -> Ovsup {
    let dir = c
        .state_dir()
        .parent()
        .expect("state dir has a parent")
        .to_path_buf();
    let legacy = dir.join("ovs-machine-state.json");
    c.ovsup()
        .env("OVSUP_LEGACY_VM_RECORD", &legacy.display().to_string())
        .env("TMPDIR", &dir.display().to_string())
}

/// `ovsup --yes ARGS`: there is no terminal in tests, and the VM steps ask.
fn yes(c: &Cluster, args: &[&str]) -> Ovsup {
    ovsup(c).args(["--yes"]).args(args)
}

/// Run `args` to the end and require exit 0.
fn ok(c: &Cluster, args: &[&str]) -> Ran {
    yes(c, args).run().code(0)
}

/// `--json` run of `args` that must succeed; the result event's value.
fn json_value(c: &Cluster, args: &[&str]) -> Value {
    let ran = yes(c, &[&["--json"], args].concat()).run().code(0);
    ran.json_result()["value"].clone()
}

/// `ovsup --yes ARGS` on `c`, in the background, its output beside the state directory.
fn spawn(c: &Cluster, args: &[&str]) -> Background {
    let dir = c.state_dir().parent().expect("parent").to_path_buf();
    Background::start(yes(c, args), &dir, &args.join(" "))
}

// ---------------------------------------------------------------------------------------------
// Reading the cluster and the state directory

/// How many VMs of the storage nodes are active (running, or shutting down).
fn active_vms(c: &Cluster) -> usize {
    let now = now_ms();
    c.storage_names()
        .iter()
        .map(|node| {
            let s = c.state(node);
            s.domains
                .keys()
                .filter(|d| s.domain_state(d, now).is_some_and(DomState::is_active))
                .count()
        })
        .sum()
}

fn record_path(c: &Cluster) -> PathBuf {
    c.state_dir().join("vm-record.json")
}

/// The VM record as a map node → VMs (empty when the file is absent).
fn record(c: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    match std::fs::read_to_string(record_path(c)) {
        Ok(text) => serde_json::from_str(&text).expect("the VM record is JSON"),
        Err(_) => BTreeMap::new(),
    }
}

/// What a node looks like to an operator, pids aside: installed versions, which jobs run,
/// memcached, the agent, the running VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Look {
    installed: BTreeMap<String, Option<String>>,
    jobs_running: BTreeSet<String>,
    jobs_stopped: BTreeSet<String>,
    memcached: bool,
    agent: bool,
    vms: BTreeSet<String>,
}

fn look(s: &NodeState) -> Look {
    let now = now_ms();
    Look {
        installed: s
            .packages
            .iter()
            .map(|(n, p)| (n.clone(), p.installed.clone()))
            .collect(),
        jobs_running: s
            .jobs
            .iter()
            .filter(|(_, j)| j.running && !j.failed)
            .map(|(n, _)| n.clone())
            .collect(),
        jobs_stopped: s
            .jobs
            .iter()
            .filter(|(_, j)| !j.running || j.failed)
            .map(|(n, _)| n.clone())
            .collect(),
        memcached: s.memcached_running,
        agent: s.agent_pid.is_some(),
        vms: s
            .domains
            .keys()
            .filter(|d| s.domain_state(d, now) == Some(DomState::Running))
            .cloned()
            .collect(),
    }
}

/// Every storage node's web API settings and their `.bak` (if any), read through ovsup.
fn settings(c: &Cluster) -> BTreeMap<String, (String, Option<String>)> {
    let script = r#"
        let p = "/opt/OpenvStorage/webapps/api/settings.py";
        let out = #{};
        for n in nodes() {
            let listed = query(n, ["ls", "/opt/OpenvStorage/webapps/api"]).split("\n");
            let bak = if listed.contains("settings.py.bak") { read_file(n, p + ".bak") } else { () };
            out[n.name] = [read_file(n, p), bak];
        }
        out
    "#;
    let value = json_value(c, &["eval", script]);
    serde_json::from_value(value).expect("node → [settings, bak]")
}

/// Every storage node's [`Look`], plus the VM record and the steps in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EndState {
    nodes: BTreeMap<String, Look>,
    record: BTreeMap<String, BTreeSet<String>>,
    steps: BTreeSet<String>,
}

fn end_state(c: &Cluster) -> EndState {
    EndState {
        nodes: c
            .storage_names()
            .into_iter()
            .map(|n| {
                let s = c.state(&n);
                (n, look(&s))
            })
            .collect(),
        record: record(c),
        steps: c.steps_in_progress(),
    }
}

/// A node's state with what a no-op run may change anyway left out: the command history,
/// and the update stamp every clean `apt-get update` touches.
fn comparable(mut s: NodeState) -> NodeState {
    s.history.clear();
    s.apt_updated_ms = None;
    s
}

fn all_states(c: &Cluster) -> BTreeMap<String, NodeState> {
    c.storage_names()
        .into_iter()
        .chain(CONTROLLERS.iter().map(|n| n.to_string()))
        .map(|n| {
            let s = comparable(c.state(&n));
            (n, s)
        })
        .collect()
}

/// The packages of a component on a seeded storage node.
fn component_packages(component: &str) -> &'static [&'static str] {
    use ovsup::sim::seed::{ALBA, ARAKOON, FRAMEWORK, VOLUMEDRIVER};
    match component {
        "framework" => FRAMEWORK.0,
        "volumedriver" => VOLUMEDRIVER.0,
        "alba" => ALBA.0,
        "arakoon" => ARAKOON.0,
        other => panic!("no component {other}"),
    }
}

/// Every package of `components` is at the repository's newest version on every node; the
/// other components' packages are still at their seeded version.
fn assert_components_at_newest(c: &Cluster, components: &[&str]) {
    for node in c.storage_names() {
        let s = c.state(&node);
        for comp in COMPONENTS {
            for pkg in component_packages(comp) {
                let p = &s.packages[*pkg];
                let newest = p.newest_in_repository().map(str::to_string);
                if components.contains(&comp) {
                    assert_eq!(p.installed, newest, "{node}: {pkg} not upgraded");
                } else {
                    assert_ne!(p.installed, newest, "{node}: {pkg} upgraded by surprise");
                }
            }
        }
    }
}

/// Every job of every storage node runs (none failed), and memcached runs.
fn assert_every_job_runs(c: &Cluster) {
    for node in c.storage_names() {
        let l = look(&c.state(&node));
        assert!(
            l.jobs_stopped.is_empty(),
            "{node}: not running: {:?}",
            l.jobs_stopped
        );
        assert!(l.memcached, "{node}: memcached does not run");
    }
}

/// Nothing ever ran on a controller instance: no journal line, no command received.
fn assert_controllers_untouched(c: &Cluster) {
    let lines = c.journal();
    let touched: Vec<&Value> = lines
        .iter()
        .filter(|l| CONTROLLERS.contains(&l["node"].as_str().unwrap_or_default()))
        .collect();
    assert!(
        touched.is_empty(),
        "journal lines on controllers: {touched:?}"
    );
    for name in CONTROLLERS {
        let history = c.state(name).history;
        assert!(history.is_empty(), "{name} received: {history:?}");
    }
}

/// The `check` value: per component, whether pending, and on which nodes.
fn pending_nodes(check: &Value) -> BTreeMap<String, (bool, BTreeSet<String>)> {
    COMPONENTS
        .iter()
        .map(|comp| {
            let entry = &check[*comp];
            let pending = entry["pending"]
                .as_bool()
                .unwrap_or_else(|| panic!("{check}"));
            let nodes = entry["nodes"]
                .as_object()
                .unwrap_or_else(|| panic!("{check}"))
                .keys()
                .cloned()
                .collect();
            (comp.to_string(), (pending, nodes))
        })
        .collect()
}

/// Bring a fresh cluster to where the dangerous steps may run: lists updated, offline.
fn ready(c: &Cluster) {
    ok(c, &["update"]);
    ok(c, &["preprocess"]);
}

// ---------------------------------------------------------------------------------------------
// The whole guide

on_both_backends!(the_guide_from_update_to_check_leaves_nothing_pending,);

fn the_guide_from_update_to_check_leaves_nothing_pending(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let storage: BTreeSet<String> = c.storage_names().into_iter().collect();
    let vms_before = c.running_vms();
    assert!(vms_before.values().all(|v| !v.is_empty()), "{vms_before:?}");

    // After a step, running it again succeeds and changes nothing on any node, nor the
    // record or the steps in progress.
    let step = |args: &[&str]| -> Value {
        let value = json_value(&c, args);
        let before = (all_states(&c), record(&c), c.steps_in_progress());
        let again = json_value(&c, args);
        let after = (all_states(&c), record(&c), c.steps_in_progress());
        assert!(
            before == after,
            "`{}` run again changed something:\n{before:#?}\n-->\n{after:#?}",
            args.join(" ")
        );
        // And says it found nothing to do.
        let nothing = match args[0] {
            "check" => value.clone(),
            "framework" | "arakoon" | "alba" | "volumedriver" => json!({"updated": false}),
            "stop-vm" | "start-vm" => json!({}),
            _ => Value::Null,
        };
        assert_eq!(again, nothing, "`{}` run again", args.join(" "));
        value
    };

    step(&["update"]);
    let first = pending_nodes(&step(&["check"]));
    for comp in COMPONENTS {
        assert_eq!(first[comp], (true, storage.clone()), "{comp}: {first:?}");
    }
    step(&["preprocess"]);
    for node in &storage {
        assert!(!look(&c.state(node)).agent, "{node} still online");
    }
    let framework = step(&["framework"]);
    assert_eq!(framework["updated"], true, "{framework}");
    assert_components_at_newest(&c, &["framework"]);
    step(&["arakoon"]);
    assert_components_at_newest(&c, &["framework", "arakoon"]);

    let stopped = step(&["stop-vm"]);
    let stopped: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_value(stopped).expect("stop-vm value: node → VMs");
    assert_eq!(stopped, vms_before);
    assert_eq!(record(&c), vms_before, "the record holds what ran");
    assert!(c.running_vms().values().all(BTreeSet::is_empty));

    let alba = step(&["alba", "--skip-vm"]);
    assert_eq!(alba["vms_stopped"], json!({}), "{alba}");
    step(&["volumedriver", "--skip-vm"]);
    assert_components_at_newest(&c, &COMPONENTS);
    // --skip-vm left the VMs alone: still off, still recorded.
    assert!(c.running_vms().values().all(BTreeSet::is_empty));
    assert_eq!(record(&c), vms_before);

    let started = step(&["start-vm"]);
    let started: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_value(started).expect("start-vm value: node → VMs");
    assert_eq!(started, vms_before);
    assert_eq!(
        c.running_vms(),
        vms_before,
        "every VM that ran runs again, and only those"
    );
    assert!(
        !record_path(&c).exists(),
        "the record is gone once every VM runs"
    );

    step(&["postprocess"]);
    let last = pending_nodes(&step(&["check"]));
    for comp in COMPONENTS {
        assert_eq!(last[comp], (false, BTreeSet::new()), "{comp}: {last:?}");
    }

    assert_components_at_newest(&c, &COMPONENTS);
    assert_every_job_runs(&c);
    for node in &storage {
        assert!(look(&c.state(node)).agent, "{node}: the agent is not up");
    }
    assert_eq!(c.running_vms(), vms_before);
    assert!(
        c.steps_in_progress().is_empty(),
        "steps left in progress: {:?}",
        c.steps_in_progress()
    );
    assert_controllers_untouched(&c);
    // Every step reached every storage node.
    let touched: BTreeSet<String> = c
        .journal()
        .iter()
        .map(|l| l["node"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(touched, storage);
}

// ---------------------------------------------------------------------------------------------
// Interrupted runs converge

/// The end state of the same commands run uninterrupted on a fresh simulated cluster (the
/// test bed seeds its nodes the same way), computed once per sequence.
fn uninterrupted(commands: &[&[&str]]) -> EndState {
    static CACHE: std::sync::Mutex<BTreeMap<String, EndState>> =
        std::sync::Mutex::new(BTreeMap::new());
    let key = format!("{commands:?}");
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache
        .entry(key)
        .or_insert_with(|| {
            let c = Cluster::new(Backend::Sim, 3);
            for args in commands {
                ok(&c, args);
            }
            end_state(&c)
        })
        .clone()
}

/// Set `slow_ms` on every storage node: every command then takes that long at least.
fn slow(c: &Cluster, ms: u64) {
    for node in c.storage_names() {
        c.update(&node, |s| s.faults.slow_ms = ms);
    }
}

/// Whether any storage node received a command line containing `needle`.
fn received(c: &Cluster, needle: &str) -> bool {
    c.storage_names()
        .iter()
        .any(|n| c.state(n).history.iter().any(|l| l.contains(needle)))
}

/// Whether any storage node received an `apt-get install` that installs (not the
/// `--download-only` that comes before anything stops).
fn received_install(c: &Cluster) -> bool {
    c.storage_names().iter().any(|n| {
        c.state(n)
            .history
            .iter()
            .any(|l| l.contains("apt-get install") && !l.contains("--download-only"))
    })
}

/// Wait (bounded) until every Arakoon member job runs and none has been started for 1.5 s:
/// longer than an election (500 ms) and than the hook's pause between two members. Over SSH
/// the restart hook a killed run started goes on on its node (killing ovsup does not stop
/// what runs there, as on a real node), and a re-run during its elections is rightly refused.
fn wait_for_arakoon_to_settle(c: &Cluster) {
    let members = || -> BTreeMap<(String, String), (bool, u64)> {
        c.storage_names()
            .into_iter()
            .flat_map(|n| {
                c.state(&n)
                    .jobs
                    .into_iter()
                    .filter(|(j, _)| j.starts_with("ovs-arakoon-"))
                    .map(move |(j, job)| ((n.clone(), j), (job.running, job.started_ms)))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let began = Instant::now();
    let mut last = members();
    let mut quiet = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = members();
        if now != last {
            last = now;
            quiet = Instant::now();
        } else if quiet.elapsed() > Duration::from_millis(1500) && now.values().all(|m| m.0) {
            return;
        }
        assert!(
            began.elapsed() < WAIT,
            "the Arakoon members did not settle within {WAIT:?}: {last:?}"
        );
    }
}

/// Whether every storage node received a command line containing `needle`.
fn received_everywhere(c: &Cluster, needle: &str) -> bool {
    c.storage_names()
        .iter()
        .all(|n| c.state(n).history.iter().any(|l| l.contains(needle)))
}

/// Every VM that ran before is running now or recorded for start-vm: none is forgotten.
fn assert_no_vm_forgotten(c: &Cluster, before: &BTreeMap<String, BTreeSet<String>>) {
    let running = c.running_vms();
    let recorded = record(c);
    for (node, vms) in before {
        for vm in vms {
            let kept = running.get(node).is_some_and(|r| r.contains(vm))
                || recorded.get(node).is_some_and(|r| r.contains(vm));
            assert!(
                kept,
                "{node}: {vm:?} neither runs nor is recorded\nrunning {running:?}\nrecorded {recorded:?}"
            );
        }
    }
}

/// The end state after a killed `step` was run again: the component upgraded everywhere,
/// every job running, exactly the VMs that ran before running, the record empty, the step
/// no longer in progress; and equal to an uninterrupted run's.
fn assert_converged(
    c: &Cluster,
    step: &str,
    upgraded: &[&str],
    vms_before: &BTreeMap<String, BTreeSet<String>>,
    reference: &[&[&str]],
) {
    assert_components_at_newest(c, upgraded);
    assert_every_job_runs(c);
    assert_eq!(
        &c.running_vms(),
        vms_before,
        "the VMs that ran, and only those"
    );
    assert!(!record_path(c).exists(), "record left: {:?}", record(c));
    assert!(
        !c.steps_in_progress().contains(step),
        "{step} still in progress"
    );
    assert_eq!(end_state(c), uninterrupted(reference));
    assert_controllers_untouched(c);
}

const READY: [&[&str]; 2] = [&["update"], &["preprocess"]];
const ALBA_ALONE: [&[&str]; 3] = [READY[0], READY[1], &["alba"]];

on_both_backends!(
    alba_killed_while_the_vms_shut_down_converges_when_run_again,
    alba_killed_while_packages_install_converges_when_run_again,
    alba_killed_after_the_packages_are_in_still_restarts_and_starts_the_vms,
    framework_killed_with_its_services_stopped_converges_when_run_again,
    framework_killed_after_patching_the_settings_keeps_the_original_in_the_backup,
    arakoon_killed_between_cluster_restarts_restarts_them_when_run_again,
    stop_vm_killed_mid_shutdown_then_start_vm_brings_back_every_vm,
    start_vm_killed_mid_start_converges_when_run_again,
    the_lock_refuses_a_second_run_and_dies_with_a_killed_holder,
);

fn alba_killed_while_the_vms_shut_down_converges_when_run_again(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ready(&c);
    let before = c.running_vms();
    spawn(&c, &["alba"]).kill_when("the VM record appears", || record_path(&c).exists());
    assert!(active_vms(&c) > 0, "killed after every VM was off already");
    // The record was complete before the first shutdown, and the package was downloaded on
    // every node before it, not installed yet.
    assert_eq!(record(&c), before);
    assert!(c.steps_in_progress().contains("alba"));
    assert_no_vm_forgotten(&c, &before);
    for node in c.storage_names() {
        let alba = &c.state(&node).packages["alba"];
        assert_eq!(
            alba.downloads, 1,
            "{node}: not downloaded before the shutdown"
        );
        assert_ne!(
            alba.installed.as_deref(),
            alba.newest_in_repository(),
            "{node}"
        );
    }

    let again = json_value(&c, &["alba"]);
    assert_eq!(again["updated"], true, "{again}");
    assert_converged(&c, "alba", &["alba"], &before, &ALBA_ALONE);
    for node in c.storage_names() {
        let alba = &c.state(&node).packages["alba"];
        assert_eq!(alba.downloads, 1, "{node}: the re-run downloaded again");
    }
}

fn alba_killed_while_packages_install_converges_when_run_again(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ready(&c);
    let before = c.running_vms();
    // node-01 answers at once, the others slowly: the kill lands with node-01 upgraded
    // and the install in flight on the others.
    for node in ["node-02", "node-03"] {
        c.update(node, |s| s.faults.slow_ms = 300);
    }
    spawn(&c, &["alba"]).kill_when("alba is installed on node-01 only", || {
        let at_newest = |n: &str| {
            let p = &c.state(n).packages["alba"];
            p.installed.as_deref() == p.newest_in_repository()
        };
        at_newest("node-01") && received_install(&c) && !at_newest("node-02")
    });
    slow(&c, 0);
    assert!(
        c.running_vms().values().all(BTreeSet::is_empty),
        "VMs run while installing"
    );
    assert_eq!(record(&c), before);
    assert!(c.steps_in_progress().contains("alba"));

    json_value(&c, &["alba"]);
    assert_converged(&c, "alba", &["alba"], &before, &ALBA_ALONE);
}

fn alba_killed_after_the_packages_are_in_still_restarts_and_starts_the_vms(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ready(&c);
    let before = c.running_vms();
    slow(&c, 150);
    spawn(&c, &["alba"]).kill_when("alba is installed on every node", || {
        c.storage_names().iter().all(|n| {
            let p = &c.state(n).packages["alba"];
            p.installed.as_deref() == p.newest_in_repository()
        })
    });
    slow(&c, 0);
    // Nothing is pending any more, but the step is unfinished: the VMs are still off.
    assert!(c.steps_in_progress().contains("alba"));
    assert_eq!(record(&c), before);
    let check = pending_nodes(&json_value(&c, &["check"]));
    assert!(!check["alba"].0, "{check:?}");

    let again = json_value(&c, &["alba"]);
    assert_eq!(
        again["updated"], true,
        "the re-run finishes the step: {again}"
    );
    assert_converged(&c, "alba", &["alba"], &before, &ALBA_ALONE);
}

fn framework_killed_with_its_services_stopped_converges_when_run_again(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ready(&c);
    let before = c.running_vms();
    slow(&c, 100);
    spawn(&c, &["framework"]).kill_when("memcached is stopped on every node", || {
        c.storage_names()
            .iter()
            .all(|n| !c.state(n).memcached_running)
    });
    slow(&c, 0);
    assert!(c.steps_in_progress().contains("framework"));
    let down: Vec<String> = c
        .storage_names()
        .into_iter()
        .filter(|n| !c.state(n).jobs["ovs-watcher-framework"].running)
        .collect();
    assert_eq!(down, c.storage_names(), "the watchers were stopped first");

    json_value(&c, &["framework"]);
    let reference: [&[&str]; 3] = [READY[0], READY[1], &["framework"]];
    assert_converged(&c, "framework", &["framework"], &before, &reference);
}

fn framework_killed_after_patching_the_settings_keeps_the_original_in_the_backup(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ready(&c);
    let before = c.running_vms();
    let original = settings(&c);
    assert!(
        original
            .values()
            .all(|(s, bak)| s.contains("ALLOWED_HOSTS = ['localhost']") && bak.is_none()),
        "{original:?}"
    );
    slow(&c, 100);
    // The web API is restarted right after settings.py was patched on every node (sed is
    // not simulated over ssh, so it is not in the history there).
    spawn(&c, &["framework"]).kill_when("the web API restarts", || {
        received_everywhere(&c, "webapp-api")
    });
    slow(&c, 0);
    assert!(c.steps_in_progress().contains("framework"));

    json_value(&c, &["framework"]);
    let reference: [&[&str]; 3] = [READY[0], READY[1], &["framework"]];
    assert_converged(&c, "framework", &["framework"], &before, &reference);
    for (node, (now, bak)) in settings(&c) {
        assert!(now.contains("ALLOWED_HOSTS = ['*']\n"), "{node}: {now}");
        let kept = &original[&node].0;
        assert_eq!(
            bak.as_ref(),
            Some(kept),
            "{node}: the .bak lost the original settings"
        );
    }
}

fn arakoon_killed_between_cluster_restarts_restarts_them_when_run_again(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ready(&c);
    let before = c.running_vms();
    slow(&c, 100);
    spawn(&c, &["arakoon"]).kill_when("the first cluster restarts", || {
        received(&c, "arakoon-restart.py")
    });
    slow(&c, 0);
    assert!(c.steps_in_progress().contains("arakoon"));
    assert_components_at_newest(&c, &["arakoon"]);
    wait_for_arakoon_to_settle(&c);

    let again = json_value(&c, &["arakoon"]);
    assert_eq!(
        again["updated"], true,
        "the re-run finishes the step: {again}"
    );
    assert_eq!(
        again["nodes"],
        json!({}),
        "nothing was pending any more: {again}"
    );
    assert_eq!(
        again["clusters"].as_array().map(Vec::len),
        Some(4),
        "{again}"
    );
    let reference: [&[&str]; 3] = [READY[0], READY[1], &["arakoon"]];
    assert_converged(&c, "arakoon", &["arakoon"], &before, &reference);
}

fn stop_vm_killed_mid_shutdown_then_start_vm_brings_back_every_vm(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let before = c.running_vms();
    spawn(&c, &["stop-vm"]).kill_when("a VM is shutting down", || {
        let now = now_ms();
        record_path(&c).exists()
            && c.storage_names().iter().any(|n| {
                let s = c.state(n);
                s.domains
                    .keys()
                    .any(|d| s.domain_state(d, now) == Some(DomState::InShutdown))
            })
    });
    assert_eq!(record(&c), before);
    assert_no_vm_forgotten(&c, &before);

    json_value(&c, &["stop-vm"]);
    assert!(c.running_vms().values().all(BTreeSet::is_empty));
    assert_eq!(record(&c), before, "the second stop merged into the record");
    json_value(&c, &["start-vm"]);
    assert_converged(&c, "stop-vm", &[], &before, &[&["stop-vm"], &["start-vm"]]);
}

fn start_vm_killed_mid_start_converges_when_run_again(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let before = c.running_vms();
    ok(&c, &["stop-vm"]);
    slow(&c, 200);
    spawn(&c, &["start-vm"]).kill_when("a first VM runs again", || {
        c.running_vms().values().any(|v| !v.is_empty())
    });
    slow(&c, 0);
    assert_no_vm_forgotten(&c, &before);
    assert!(
        !record(&c).is_empty(),
        "killed before the last VM was confirmed"
    );

    json_value(&c, &["start-vm"]);
    assert_converged(&c, "start-vm", &[], &before, &[&["stop-vm"], &["start-vm"]]);
}

fn the_lock_refuses_a_second_run_and_dies_with_a_killed_holder(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let before = c.running_vms();
    // A VM that ignores the shutdown keeps stop-vm waiting (and holding the lock).
    c.update("node-02", |s| s.faults.stuck_vms = vec!["vm-1-db".into()]);
    let holder = spawn(&c, &["stop-vm"]);
    let pid = holder.child.id();
    let lock = c.state_dir().join("run.lock");
    let says_holder = || {
        std::fs::read_to_string(&lock)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|h| h["pid"] == pid)
    };
    wait_until("the holder writes the lock file", says_holder);
    wait_until("stop-vm waits for the stuck VM", || {
        record_path(&c).exists()
    });

    // A read-only run could not hurt: it is not refused (see issue 9).
    ok(&c, &["check"]);
    ovsup(&c)
        .args(["--yes", "stop-vm"])
        .run()
        .code(3)
        .stderr_has(&format!("pid {pid}"))
        .stderr_has("stop-vm");

    holder.kill_when("now", || true);
    // The dead holder's name is still in the file, but the kernel lock died with it.
    assert!(
        says_holder(),
        "the killed holder could not clear the lock file"
    );
    ok(&c, &["check"]);

    c.update("node-02", |s| s.faults.stuck_vms.clear());
    ok(&c, &["stop-vm"]);
    ok(&c, &["start-vm"]);
    assert_eq!(c.running_vms(), before);
    assert!(!record_path(&c).exists());
}

// ---------------------------------------------------------------------------------------------
// Legacy flags

/// The journal lines of the one run whose label is `label`.
fn journal_of(c: &Cluster, label: &str) -> Vec<Value> {
    let dir = c.state_dir().join("runs");
    let suffix = format!("-{label}.jsonl");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("runs dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0])
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line is JSON"))
        .collect()
}

/// `update-ovs.py` ran its options in a fixed order, check before update (design/
/// legacy-behaviour.md, docs/upgrade-guide.md): `-u -c` and `-c -u` both check the lists as
/// they were, then update them.
#[test]
fn legacy_flags_run_in_the_legacy_order_whatever_order_they_are_given_in() {
    for flags in [["-u", "-c"], ["-c", "-u"]] {
        let c = Cluster::new(Backend::Sim, 3);
        let ran = yes(&c, &[&["--json"], &flags[..]].concat()).run().code(0);
        let value = ran.json_result()["value"].clone();
        let keys: BTreeSet<&str> = value
            .as_object()
            .unwrap_or_else(|| panic!("{value}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["check", "update"]), "{value}");
        assert_eq!(value["update"], Value::Null);
        // One run, one journal; check's reads all come before the first apt-get update.
        let lines = journal_of(&c, "check_update");
        let commands: Vec<&str> = lines
            .iter()
            .map(|l| l["command"].as_str().unwrap_or_default())
            .collect();
        let first_update = commands
            .iter()
            .position(|l| l.contains("apt-get update"))
            .unwrap_or_else(|| panic!("{flags:?}: no apt-get update: {commands:#?}"));
        let last_check = commands
            .iter()
            .rposition(|l| l.contains("apt-cache policy"))
            .unwrap_or_else(|| panic!("{flags:?}: no apt-cache policy: {commands:#?}"));
        assert!(last_check < first_update, "{flags:?}: {commands:#?}");
        assert_eq!(
            commands
                .iter()
                .filter(|l| l.contains("apt-get update"))
                .count(),
            3,
            "{commands:#?}"
        );
        // check ran on the lists as they were (the legacy order): nothing pending yet; the
        // lists are updated now, so the next check sees every component pending.
        let seen = pending_nodes(&value["check"]);
        assert!(seen.values().all(|(p, _)| !p), "{seen:?}");
        let now = pending_nodes(&json_value(&c, &["-c"]));
        assert!(now.values().all(|(p, n)| *p && n.len() == 3), "{now:?}");
        assert_controllers_untouched(&c);
    }
}

#[test]
fn legacy_flags_stop_at_the_first_refusal() {
    // framework comes before preprocess in the legacy order: while online it is refused,
    // and preprocess never runs.
    let c = Cluster::new(Backend::Sim, 3);
    ok(&c, &["-u"]);
    let ran = yes(&c, &["-P", "-o"]).run().code(3);
    ran.stderr_has("online");
    for node in c.storage_names() {
        assert!(
            look(&c.state(&node)).agent,
            "{node}: preprocess ran after the refusal"
        );
    }
    assert_components_at_newest(&c, &[]);
    // In two calls, as the guide says, it works.
    ok(&c, &["-P"]);
    ok(&c, &["-o"]);
    assert_components_at_newest(&c, &["framework"]);
}

#[test]
fn an_interrupted_skip_vm_step_run_again_without_skip_vm_does_not_start_the_recorded_vms() {
    // The guide's way: stop-vm, then alba --skip-vm, which is killed mid-install. Running
    // `alba` again but forgetting --skip-vm must not start the VMs that stop-vm recorded
    // (volumedriver is still to come): the VM-record guard refuses, as for a fresh run.
    let c = Cluster::new(Backend::Sim, 3);
    ready(&c);
    let before = c.running_vms();
    ok(&c, &["stop-vm"]);
    slow(&c, 300);
    spawn(&c, &["alba", "--skip-vm"])
        .kill_when("apt-get install reaches a node", || received_install(&c));
    slow(&c, 0);
    assert!(c.steps_in_progress().contains("alba"));

    let refused = yes(&c, &["alba"]).run().code(3);
    refused.stderr_has("--skip-vm");
    assert!(
        c.running_vms().values().all(BTreeSet::is_empty),
        "VMs were started"
    );
    assert_eq!(record(&c), before);

    ok(&c, &["alba", "--skip-vm"]);
    ok(&c, &["volumedriver", "--skip-vm"]);
    assert!(c.running_vms().values().all(BTreeSet::is_empty));
    ok(&c, &["start-vm"]);
    assert_converged(
        &c,
        "alba",
        &["alba", "volumedriver"],
        &before,
        &[
            READY[0],
            READY[1],
            &["stop-vm"],
            &["alba", "--skip-vm"],
            &["volumedriver", "--skip-vm"],
            &["start-vm"],
        ],
    );
}
