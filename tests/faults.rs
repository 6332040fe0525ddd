//! The fault suite: what breaks in a real environment, injected on both backends (the
//! in-process simulator, and real sshd nodes running the simulator's tools), each case
//! asserting the nodes' state afterwards and that nothing was lost — every VM that ran before
//! runs again once the operator has done what ovsup told him. The suite prints its tally
//! (cases, faults survived, VMs lost); docs/failure-modes.md says, per fault, what ovsup does
//! and what the operator does.
//!
//! Run it with its tally: `cargo test --test integration faults:: -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ovsup::sim::layout::Layout;
use ovsup::sim::state::NodeState;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::background::{Background, wait_until};
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};

// ---------------------------------------------------------------------------------------------
// Running ovsup on the cluster

/// `ovsup` on the cluster, with a legacy VM record path private to the test and its
/// temporary files (ssh control sockets) in the test's directory.
fn ovsup(c: &Cluster) -> Ovsup {
    let dir = test_dir(c);
    c.ovsup()
        .env(
            "OVSUP_LEGACY_VM_RECORD",
            &dir.join("ovs-machine-state.json").display().to_string(),
        )
        .env("TMPDIR", &dir.display().to_string())
}

fn test_dir(c: &Cluster) -> PathBuf {
    c.state_dir()
        .parent()
        .expect("the state dir has a parent")
        .to_path_buf()
}

/// `ovsup --yes ARGS` to the end.
fn run(c: &Cluster, args: &[&str]) -> Ran {
    ovsup(c).args(["--yes"]).args(args.iter().copied()).run()
}

/// `ovsup --yes ARGS`, which must succeed.
fn ok(c: &Cluster, args: &[&str]) -> Ran {
    run(c, args).code(0)
}

/// `ovsup --yes --json ARGS`; the result event's value.
fn value(c: &Cluster, args: &[&str]) -> Value {
    let ran = ovsup(c)
        .args(["--yes", "--json"])
        .args(args.iter().copied())
        .run()
        .code(0);
    ran.json_result()["value"].clone()
}

fn background(c: &Cluster, args: &[&str]) -> Background {
    Background::start(
        ovsup(c).args(["--yes"]).args(args.iter().copied()),
        &test_dir(c),
        &args.join(" "),
    )
}

/// Set a fault knob on a node, as `ovsup sim fault` does.
fn fault(c: &Cluster, node: &str, key: &str, value: &str) {
    c.update(node, |s| ovsup::sim::cli::set_fault(s, key, value))
        .unwrap_or_else(|e| panic!("fault {key}={value}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Looking at the nodes

/// Per node, per Open vStorage package: installed version and dpkg status.
type Packages = BTreeMap<String, BTreeMap<String, (Option<String>, String)>>;

fn packages(c: &Cluster) -> Packages {
    c.storage_names()
        .into_iter()
        .map(|n| {
            let s: NodeState = c.state(&n);
            let pkgs = s
                .packages
                .iter()
                .filter(|(p, _)| {
                    ["openvstorage", "volumedriver", "alba", "arakoon"]
                        .iter()
                        .any(|c| p.starts_with(c))
                })
                .map(|(p, v)| {
                    (
                        p.clone(),
                        (v.installed.clone(), v.status.abbrev().to_string()),
                    )
                })
                .collect();
            (n, pkgs)
        })
        .collect()
}

/// The VMs of `before` that do not run now.
fn lost(c: &Cluster, before: &BTreeMap<String, BTreeSet<String>>) -> usize {
    let now = c.running_vms();
    before
        .iter()
        .map(|(n, vms)| vms.iter().filter(|v| !now[n].contains(*v)).count())
        .sum()
}

/// The controller's VM record, as a set per node.
fn record(c: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    std::fs::read_to_string(c.state_dir().join("vm-record.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).expect("the VM record is JSON"))
        .unwrap_or_default()
}

/// Whether `node` received a command containing `needle`.
fn received(c: &Cluster, node: &str, needle: &str) -> bool {
    c.state(node).history.iter().any(|l| l.contains(needle))
}

fn installed(c: &Cluster, node: &str, pkg: &str) -> String {
    c.state(node).packages[pkg]
        .installed
        .clone()
        .unwrap_or_default()
}

fn cluster(backend: Backend) -> Cluster {
    Cluster::with_layout(backend, Layout::default_for(3))
}

// ---------------------------------------------------------------------------------------------
// The cases

/// What a case survived.
struct Survived {
    faults: usize,
    vms_lost: usize,
}

/// A node down when a step starts: the step stops before changing anything, naming it; with
/// the node back, the step goes through and every VM runs again.
fn node_down_at_start(backend: Backend) -> Survived {
    let c = cluster(backend);
    ok(&c, &["update"]);
    ok(&c, &["preprocess"]);
    let before = c.running_vms();
    let pkgs = packages(&c);
    c.set_reachable("node-02", false);
    let ran = run(&c, &["alba"]);
    assert_ne!(ran.code, 0, "{}", ran.stderr);
    ran.stderr_has("node-02").stderr_has("unreachable");
    assert_eq!(packages(&c), pkgs, "nothing was installed");
    assert_eq!(c.running_vms(), before, "no VM was stopped");
    assert!(record(&c).is_empty());
    c.set_reachable("node-02", true);
    ok(&c, &["alba"]);
    for n in c.storage_names() {
        assert_eq!(installed(&c, &n, "alba"), "0.9.18-1", "{n}");
    }
    Survived {
        faults: 1,
        vms_lost: lost(&c, &before),
    }
}

/// A node lost while VMs shut down: the step fails naming it; the record keeps every VM (on
/// the controller and on the nodes); once it is back, stop-vm and start-vm bring every VM
/// back.
fn node_down_mid_step(backend: Backend) -> Survived {
    let c = cluster(backend);
    let before = c.running_vms();
    fault(&c, "node-01", "stuck_vms", "vm-0-db");
    let run = background(&c, &["eval", "stop_vms(nodes(), #{timeout: 10})"]);
    wait_until("every VM is recorded and asked to shut down", || {
        record(&c) == before && received(&c, "node-02", "virsh shutdown")
    });
    c.set_reachable("node-02", false);
    let (code, out) = run.finish();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("node-02") && out.contains("unreachable"),
        "{out}"
    );
    assert_eq!(record(&c), before, "every VM stays recorded");
    c.set_reachable("node-02", true);
    fault(&c, "node-01", "stuck_vms", "");
    ok(&c, &["eval", "stop_vms(nodes(), #{timeout: 30})"]);
    ok(&c, &["start-vm"]);
    assert!(record(&c).is_empty());
    Survived {
        faults: 2,
        vms_lost: lost(&c, &before),
    }
}

/// The connection to a node lost while it installs (over SSH: its sshd killed, with every
/// session): the step fails naming the node; once it is back, the re-run converges.
fn connection_lost_during_an_install(backend: Backend) -> Survived {
    let c = cluster(backend);
    ok(&c, &["update"]);
    ok(&c, &["preprocess"]);
    let before = c.running_vms();
    ok(&c, &["stop-vm"]);
    fault(&c, "node-02", "download_ms", "3000");
    let run = background(&c, &["--skip-vm", "alba", "--set", "prestage=false"]);
    wait_until("node-02 installs alba", || {
        c.state("node-02")
            .history
            .iter()
            .any(|l| l.contains("apt-get install") && l.contains("alba"))
    });
    c.set_reachable("node-02", false);
    let (code, out) = run.finish();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("node-02"), "{out}");
    c.set_reachable("node-02", true);
    fault(&c, "node-02", "download_ms", "0");
    ok(&c, &["--skip-vm", "alba"]);
    for n in c.storage_names() {
        assert_eq!(installed(&c, &n, "alba"), "0.9.18-1", "{n}");
    }
    ok(&c, &["start-vm"]);
    Survived {
        faults: 1,
        vms_lost: lost(&c, &before),
    }
}

/// A command that hangs is killed at `command_timeout` on the node, and named.
fn a_hanging_command(backend: Backend) -> Survived {
    let c = cluster(backend);
    fault(&c, "node-01", "hang", "apt-get");
    let began = Instant::now();
    run(&c, &["--command-timeout", "2", "update"])
        .code(1)
        .stderr_has("node-01")
        .stderr_has("timed out after 2 s");
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "{:?}",
        began.elapsed()
    );
    fault(&c, "node-01", "hang", "");
    ok(&c, &["update"]);
    Survived {
        faults: 1,
        vms_lost: 0,
    }
}

/// A VM that ignores its shutdown: named at the deadline and kept in the record; powered off
/// on request; started again with the others.
fn a_vm_that_ignores_shutdown(backend: Backend) -> Survived {
    let c = cluster(backend);
    let before = c.running_vms();
    fault(&c, "node-02", "stuck_vms", "vm-1-db");
    run(&c, &["eval", "stop_vms(nodes(), #{timeout: 3})"])
        .code(1)
        .stderr_has("node-02")
        .stderr_has("\"vm-1-db\"");
    assert!(record(&c)["node-02"].contains("vm-1-db"));
    ok(
        &c,
        &["eval", "stop_vms(nodes(), #{timeout: 3, force: true})"],
    );
    assert!(c.running_vms().values().all(BTreeSet::is_empty));
    ok(&c, &["start-vm"]);
    Survived {
        faults: 1,
        vms_lost: lost(&c, &before),
    }
}

/// The dpkg lock held by another process: waited for when it goes within the wait (the holder
/// named), a failure naming the holder when it does not; nothing is lost either way.
fn the_dpkg_lock_held(backend: Backend) -> Survived {
    let c = cluster(backend);
    ok(&c, &["update"]);
    fault(&c, "node-01", "apt_lock_secs", "3");
    ok(
        &c,
        &[
            "--apt-lock-wait",
            "30",
            "eval",
            r#"apt_install(nodes(), "arakoon")"#,
        ],
    )
    .stderr_has("node-01: /var/lib/dpkg/lock is held by unattended-upgr");
    for n in c.storage_names() {
        assert_eq!(installed(&c, &n, "arakoon"), "1.9.22-1", "{n}");
    }
    fault(&c, "node-02", "apt_lock_secs", "600");
    run(
        &c,
        &[
            "--apt-lock-wait",
            "2",
            "eval",
            r#"apt_install("node-02", "alba")"#,
        ],
    )
    .code(1)
    .stderr_has("node-02: /var/lib/dpkg/lock is still held after 2 s")
    .stderr_has("unattended-upgr");
    assert_eq!(installed(&c, "node-02", "alba"), "0.9.17-1");
    fault(&c, "node-02", "apt_lock_secs", "0");
    ok(&c, &["eval", r#"apt_install("node-02", "alba")"#]);
    assert_eq!(installed(&c, "node-02", "alba"), "0.9.18-1");
    Survived {
        faults: 2,
        vms_lost: 0,
    }
}

/// A postinst that fails: the step fails naming the node; the package is half-configured,
/// which check shows as pending; once fixed, the re-run configures it and converges.
fn a_failing_postinst_then_a_rerun(backend: Backend) -> Survived {
    let c = cluster(backend);
    ok(&c, &["update"]);
    ok(&c, &["preprocess"]);
    let before = c.running_vms();
    ok(&c, &["stop-vm"]);
    fault(&c, "node-03", "failing_installs", "alba");
    run(&c, &["--skip-vm", "alba"])
        .code(1)
        .stderr_has("node-03");
    let check = value(&c, &["check"]);
    let pending = check["alba"]["nodes"]["node-03"]["alba"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(pending.contains("half-configured"), "{check}");
    fault(&c, "node-03", "failing_installs", "");
    ok(&c, &["--skip-vm", "alba"]);
    let check = value(&c, &["check"]);
    assert_eq!(check["alba"]["pending"], false, "{check}");
    assert_eq!(c.state("node-03").packages["alba"].status.abbrev(), "ii ");
    ok(&c, &["start-vm"]);
    Survived {
        faults: 1,
        vms_lost: lost(&c, &before),
    }
}

/// Apt lists that fail to refresh: `update` fails naming the node (older apt exits 0 there),
/// unless the operator accepts it; once the source is back, it succeeds.
fn apt_lists_that_fail_to_refresh(backend: Backend) -> Survived {
    let c = cluster(backend);
    fault(&c, "node-01", "failing_sources", "true");
    run(&c, &["update"])
        .code(1)
        .stderr_has("node-01")
        .stderr_has("did not refresh every source");
    ok(&c, &["update", "--allow-failed-sources"])
        .stderr_has("node-01: apt-get update: W: Failed to fetch");
    fault(&c, "node-01", "failing_sources", "false");
    ok(&c, &["update"]);
    Survived {
        faults: 1,
        vms_lost: 0,
    }
}

/// A second run against the same nodes while one holds the environment's lock — from another
/// state directory over SSH — is refused naming the holder; a read-only run meanwhile is not.
/// A killed holder's lock goes with it. Of two runs started at the same moment, one goes on.
fn a_second_run_while_one_holds_the_lock(backend: Backend) -> Survived {
    let c = cluster(backend);
    let mut holder = background(&c, &["--json", "eval", r#"sh(nodes(), "true"); sleep(60)"#]);
    let pid = holder.child.id();
    let other_state = test_dir(&c).join("other-state");
    let second = || match c.inventory_path() {
        Some(inv) => Ovsup::with_inventory(inv)
            .state_dir(&other_state)
            .env("TMPDIR", &test_dir(&c).display().to_string()),
        None => ovsup(&c),
    };
    // Its first command has run once it holds the lock everywhere (probing with a second run
    // before that would race it for the lock).
    wait_until("the holder holds the lock", || {
        if let Ok(Some(status)) = holder.child.try_wait() {
            panic!("the holder ended ({status})\n{}", holder.output());
        }
        holder.output().contains(r#""event":"done""#)
    });
    second()
        .args(["eval", r#"sh(nodes(), "true")"#])
        .run()
        .code(3)
        .stderr_has(&format!("pid {pid}"));
    second().args(["check"]).run().code(0);
    holder.kill_when("now", || true);
    wait_until("the killed holder's lock is gone", || {
        second().args(["eval", r#"sh(nodes(), "true")"#]).run().code == 0
    });
    // Two runs started at the same moment: exactly one goes on, the other is refused (not
    // both, as when each wins some of the nodes).
    let both = r#"sh(nodes(), "true"); sleep(1)"#;
    for round in 0..3 {
        let a = Background::start(ovsup(&c).args(["eval", both]), &test_dir(&c), "eval a");
        let b = Background::start(second().args(["eval", both]), &test_dir(&c), "eval b");
        let (a, b) = (a.finish(), b.finish());
        let mut codes = [a.0, b.0];
        codes.sort_unstable();
        assert_eq!(codes, [0, 3], "round {round}\n{}\n{}", a.1, b.1);
        let collided = a.1.contains("asking again") || b.1.contains("asking again");
        eprintln!(
            "  two runs at once, round {round}: {}",
            if collided {
                "they collided; one asked again and one went on"
            } else {
                "one took the lock first"
            }
        );
    }
    Survived {
        faults: 2,
        vms_lost: 0,
    }
}

/// Two environments side by side, both inventories called `inventory.toml`, the default state
/// directories: each keeps its own VM record. (SSH only: the built-in simulated cluster is
/// one environment.)
fn two_environments_side_by_side() -> Survived {
    let a = cluster(Backend::Ssh);
    let b = cluster(Backend::Ssh);
    let home = tempfile::tempdir().expect("XDG_STATE_HOME");
    let env = |c: &Cluster| {
        Ovsup::with_inventory(c.inventory_path().expect("an inventory file"))
            .env("XDG_STATE_HOME", &home.path().display().to_string())
            .env("TMPDIR", &test_dir(c).display().to_string())
    };
    let before = a.running_vms();
    env(&a).args(["--yes", "stop-vm"]).run().code(0);
    let ran = env(&b)
        .args(["--json", "eval", "vm_record()"])
        .run()
        .code(0);
    assert_eq!(ran.json_result()["value"], serde_json::json!({}));
    env(&b).args(["start-vm"]).run().code(0);
    assert!(
        a.running_vms().values().all(BTreeSet::is_empty),
        "b's start-vm touched a"
    );
    env(&a).args(["start-vm"]).run().code(0);
    let dirs: Vec<_> = std::fs::read_dir(home.path().join("ovsup"))
        .expect("state dirs")
        .collect();
    assert_eq!(dirs.len(), 2, "one state directory per environment");
    Survived {
        faults: 1,
        vms_lost: lost(&a, &before),
    }
}

/// The controller's state directory lost during the downtime window: a new one finds the VM
/// record on the nodes and start-vm brings back exactly the recorded VMs.
fn the_controller_state_lost_during_the_downtime(backend: Backend) -> Survived {
    let c = cluster(backend);
    let before = c.running_vms();
    ok(&c, &["stop-vm"]);
    let ran = match c.inventory_path() {
        // Another controller: a fresh state directory.
        Some(inv) => Ovsup::with_inventory(inv)
            .state_dir(&test_dir(&c).join("new-controller"))
            .env("TMPDIR", &test_dir(&c).display().to_string())
            .args(["start-vm"])
            .run(),
        None => {
            // In-process the nodes live in the state directory: lose everything else.
            for f in ["vm-record.json", "steps.json"] {
                let _ = std::fs::remove_file(c.state_dir().join(f));
            }
            run(&c, &["start-vm"])
        }
    };
    ran.code(0).stderr_has("recovered from the node");
    Survived {
        faults: 1,
        vms_lost: lost(&c, &before),
    }
}

/// SIGKILL at three more points of the procedure (the others are in tests/procedure.rs):
/// while volumedriver shuts the VMs down after its download, while update runs, while
/// postprocess starts the agents. Each re-run converges.
fn killed_and_run_again(backend: Backend) -> Survived {
    let c = cluster(backend);
    let before = c.running_vms();
    fault(&c, "node-01", "slow_ms", "300");
    background(&c, &["update"]).kill_when("apt-get update reaches node-01", || {
        received(&c, "node-01", "apt-get update")
    });
    fault(&c, "node-01", "slow_ms", "0");
    ok(&c, &["update"]);
    ok(&c, &["preprocess"]);
    fault(&c, "node-02", "stuck_vms", "vm-1-web");
    background(&c, &["volumedriver"]).kill_when("a VM is shutting down", || {
        received(&c, "node-02", "virsh shutdown")
    });
    fault(&c, "node-02", "stuck_vms", "");
    ok(&c, &["volumedriver"]);
    for n in c.storage_names() {
        assert_eq!(installed(&c, &n, "volumedriver-server"), "6.2.1-1", "{n}");
    }
    assert!(record(&c).is_empty(), "{:?}", record(&c));
    fault(&c, "node-03", "slow_ms", "300");
    background(&c, &["postprocess"])
        .kill_when("an agent starts", || received(&c, "node-03", "ays start"));
    fault(&c, "node-03", "slow_ms", "0");
    ok(&c, &["postprocess"]);
    for n in c.storage_names() {
        assert!(c.state(&n).agent_pid.is_some(), "{n} is online");
    }
    Survived {
        faults: 3,
        vms_lost: lost(&c, &before),
    }
}

// ---------------------------------------------------------------------------------------------
// The suite

on_both_backends!(suite);

/// A case of the suite: its name, and what runs it on a backend.
type Case = (&'static str, fn(Backend) -> Survived);

fn suite(backend: Backend) {
    let mut cases: Vec<Case> = vec![
        ("node down at start", node_down_at_start),
        ("node down mid-step", node_down_mid_step),
        (
            "connection lost during an install",
            connection_lost_during_an_install,
        ),
        ("a command that hangs", a_hanging_command),
        ("a VM that ignores shutdown", a_vm_that_ignores_shutdown),
        ("the dpkg lock held", the_dpkg_lock_held),
        (
            "a failing postinst, then a re-run",
            a_failing_postinst_then_a_rerun,
        ),
        (
            "apt lists that fail to refresh",
            apt_lists_that_fail_to_refresh,
        ),
        (
            "a second run while one holds the lock",
            a_second_run_while_one_holds_the_lock,
        ),
        (
            "the controller's state lost during the downtime",
            the_controller_state_lost_during_the_downtime,
        ),
        ("killed and run again", killed_and_run_again),
    ];
    if backend == Backend::Ssh {
        cases.push(("two environments side by side", |_| {
            two_environments_side_by_side()
        }));
    }
    let (mut faults, mut vms_lost) = (0, 0);
    for (name, case) in &cases {
        let began = Instant::now();
        let s = case(backend);
        eprintln!(
            "  {name}: {} fault(s) survived, {} VM(s) lost ({:.1} s)",
            s.faults,
            s.vms_lost,
            began.elapsed().as_secs_f64()
        );
        faults += s.faults;
        vms_lost += s.vms_lost;
    }
    eprintln!(
        "fault suite ({backend:?}): {} cases, {faults} faults survived, VMs lost: {vms_lost}",
        cases.len()
    );
    assert_eq!(vms_lost, 0, "VMs were lost");
}
