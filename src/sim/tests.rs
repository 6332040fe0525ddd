//! Tests of the node as a whole: the shell operators, "not simulated", deadlines and hangs,
//! the slow fault, history, and concurrent read-modify-write through separate handles.

use std::time::{Duration, Instant};

use super::state::{AptVariant, Init};
use super::tools::testutil::{node, run};
use super::{SimNode, SimOutput};

#[test]
fn operators_and_exit_codes() {
    let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
    let o = run(&n, "false && echo no || echo yes; echo end");
    assert_eq!((o.code, o.stdout.as_str()), (0, "yes\nend\n"));
    let o = run(&n, "true && false");
    assert_eq!(o.code, 1);
    let o = run(
        &n,
        "LC_ALL=C DEBIAN_FRONTEND=noninteractive sh -c 'status ovs-webapp-api && echo ok'",
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.ends_with("ok\n"));
    let o = run(&n, "stop nosuch; echo after");
    assert_eq!(
        (o.code, o.stderr.as_str(), o.stdout.as_str()),
        (0, "stop: Unknown job: nosuch\n", "after\n")
    );
}

#[test]
fn not_simulated_never_succeeds() {
    let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
    let o = run(&n, "virsh list --name | grep web");
    assert_eq!(
        o,
        SimOutput::fail(
            127,
            "ovs-sim: not simulated: virsh list --name | grep web\n"
        )
    );
    let o = run(&n, "hostname");
    assert_eq!(
        o,
        SimOutput::fail(127, "ovs-sim: not simulated: hostname\n")
    );
    let o = run(&n, "echo ok && uptime -p");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (127, "ovs-sim: not simulated: uptime -p\n")
    );
    let o = run(&n, "apt-get dist-upgrade");
    assert_eq!(o.code, 127);
    let o = n.run_argv(
        &["virsh".into(), "undefine".into(), "vm-0-web".into()],
        None,
    );
    assert_eq!(
        o,
        SimOutput::fail(127, "ovs-sim: not simulated: virsh undefine vm-0-web\n")
    );
}

#[test]
fn hang_ends_at_the_deadline_without_holding_the_lock() {
    let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
    n.update(|s| s.faults.hang = vec!["apt-get".into()])
        .expect("update");
    let start = Instant::now();
    let other = n.clone();
    let t = std::thread::spawn(move || {
        other.run_line(
            "apt-get update",
            Some(Instant::now() + Duration::from_millis(400)),
        )
    });
    std::thread::sleep(Duration::from_millis(50));
    // The node still answers while apt-get hangs.
    let quick = Instant::now();
    assert_eq!(run(&n, "status ovs-webapp-api").code, 0);
    assert!(quick.elapsed() < Duration::from_millis(300));
    let o = t.join().expect("join");
    assert_eq!(o.code, 124);
    let el = start.elapsed();
    assert!(
        el >= Duration::from_millis(390) && el < Duration::from_millis(1500),
        "{el:?}"
    );
    // timeout(1) gives its own deadline.
    let start = Instant::now();
    let o = run(&n, "timeout -k 1 0.2 apt-get update || echo timed-out");
    assert_eq!((o.code, o.stdout.as_str()), (0, "timed-out\n"));
    assert!(start.elapsed() < Duration::from_millis(1000));
    let o = run(&n, "timeout 5 virsh domstate vm-0-web");
    assert_eq!((o.code, o.stdout.as_str()), (0, "running\n\n"));
    let o = n.run_line(
        "sleep 10",
        Some(Instant::now() + Duration::from_millis(100)),
    );
    assert_eq!(o.code, 124);
}

#[test]
fn slow_answers() {
    let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
    n.update(|s| s.faults.slow_ms = 150).expect("update");
    let start = Instant::now();
    assert_eq!(run(&n, "true").code, 0);
    assert!(start.elapsed() >= Duration::from_millis(150));
    let o = n.run_line("true", Some(Instant::now() + Duration::from_millis(50)));
    assert_eq!(o.code, 124);
}

#[test]
fn history_records_every_line() {
    let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
    run(&n, "echo a && echo b");
    n.run_argv(
        &[
            "virsh".into(),
            "domstate".into(),
            "vm-0 o'brien test".into(),
        ],
        None,
    );
    let h = n.state().expect("state").history;
    assert_eq!(h.len(), 2);
    assert_eq!(h[0], "echo a && echo b");
    assert_eq!(
        shlex::split(&h[1]).expect("quoted"),
        vec!["virsh", "domstate", "vm-0 o'brien test"]
    );
}

#[test]
fn concurrent_updates_are_not_lost() {
    let (d, n) = node(Init::Upstart, AptVariant::V1_2);
    let path = n.state_path().to_owned();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let node = SimNode::open_virtual(&path).expect("open");
                for _ in 0..10 {
                    let o =
                        node.run_line(&format!("restart ovs-arakoon-ovsdb; touch /tmp/t{i}"), None);
                    assert_eq!(o.code, 0, "{o:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    let s = n.state().expect("state");
    assert_eq!(s.history.len(), 80);
    // 12 seeded jobs + agent from 1200, then 80 restarts.
    assert_eq!(s.next_pid, 1200 + 13 + 80);
    assert_eq!(s.jobs["ovs-arakoon-ovsdb"].pid, 1200 + 13 + 79);
    for i in 0..8 {
        assert!(s.files.contains_key(&format!("/tmp/t{i}")));
    }
    drop(d);
}

#[test]
fn missing_state_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(SimNode::open_virtual(dir.path().join("none.json")).is_err());
}
