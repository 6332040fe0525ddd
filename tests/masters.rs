//! SSH masters that outlive an invocation (issue 10): a second run reuses the first one's
//! masters (one handshake per node in the sshd logs), never one of another connection (host,
//! port or user changed); `ovsup disconnect` closes them all; a master found dead is replaced;
//! a killed run's masters are reused, not orphaned, and its run lock dies with it;
//! `--control-persist 0` closes them at the end of the run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ovsup_testbed::{Node, TestBed, kill_and_wait, processes_naming};

use crate::support::background::wait_until;
use crate::support::ovsup::Ovsup;

fn state(bed: &TestBed) -> PathBuf {
    bed.dir().join("state")
}

fn control_dir(bed: &TestBed) -> PathBuf {
    state(bed).join("ssh")
}

/// `ovsup -i INVENTORY --state-dir <bed>/state ARGS`.
fn ovsup(bed: &TestBed, inventory: &Path, args: &[&str]) -> Ovsup {
    Ovsup::with_inventory(inventory)
        .state_dir(&state(bed))
        .args(args)
}

/// The ssh masters of the bed's environment: processes whose command line names its control
/// directory (`ssh -E DIR/KEY.log -S DIR/KEY -M …`).
fn masters(bed: &TestBed) -> Vec<u32> {
    processes_naming(&control_dir(bed))
}

/// How many times sshd authenticated a client on `node`: one handshake each.
fn handshakes(node: &Node) -> usize {
    node.sshd_log().matches("Accepted publickey").count()
}

fn handshakes_all(bed: &TestBed) -> Vec<usize> {
    bed.nodes().iter().map(handshakes).collect()
}

/// `ovsup disconnect`, then no master of the environment is left.
fn disconnect(bed: &TestBed) {
    ovsup(bed, bed.inventory_path(), &["disconnect"])
        .run()
        .code(0)
        .stdout_has("closed");
    wait_until("the masters exit", || masters(bed).is_empty());
}

#[test]
fn a_second_invocation_reuses_the_first_ones_masters_and_disconnect_closes_them() {
    let bed = TestBed::start(3);
    let inventory = bed.inventory_path();
    for _ in 0..2 {
        ovsup(
            &bed,
            inventory,
            &["--json", "eval", r#"sh(nodes(), "hostname")"#],
        )
        .run()
        .code(0);
    }
    // Two invocations, one handshake per node: the second ran over the first one's masters.
    assert_eq!(handshakes_all(&bed), [1, 1, 1], "one handshake per node");
    assert_eq!(masters(&bed).len(), 3, "one master per node is kept");

    let ran = ovsup(&bed, inventory, &["disconnect"]).run().code(0);
    ran.stdout_has("closed 3 SSH master(s)");
    wait_until("the masters exit", || masters(&bed).is_empty());
    let left: Vec<_> = std::fs::read_dir(control_dir(&bed))
        .expect("control dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "disconnect left {left:?}");
    // Nothing to close the second time; the next run connects anew.
    ovsup(&bed, inventory, &["disconnect"])
        .run()
        .code(0)
        .stdout_has("closed 0 SSH master(s)");
    ovsup(&bed, inventory, &["eval", r#"sh(nodes(), "true")"#])
        .run()
        .code(0);
    assert_eq!(handshakes_all(&bed), [2, 2, 2]);
    disconnect(&bed);
}

/// An inventory of one node, `a`, at `host`, with this port and user (`None`: the ssh
/// config's, which says root and the node's port for its address only through `Host` blocks
/// by name, so a port is always given here).
fn one_node_inventory(bed: &TestBed, host: &Node, port: u16, user: Option<&str>) -> PathBuf {
    let mut s = format!(
        "[defaults]\nssh_config = {:?}\nconnect_timeout = 5\ncommand_timeout = 30\n\n[nodes.a]\nhost = \"{}\"\nport = {port}\n",
        bed.ssh_config_path().display().to_string(),
        host.addr()
    );
    if let Some(u) = user {
        s.push_str(&format!("user = \"{u}\"\n"));
    }
    let path = bed.dir().join("one.toml");
    std::fs::write(&path, s).expect("write the inventory");
    path
}

#[test]
fn a_master_is_not_reused_for_a_node_whose_host_port_or_user_changed() {
    let bed = TestBed::builder().nodes(2).extra_port(2022).start();
    let (first, second) = (bed.node(0), bed.node(1));
    let hostname = |inventory: &Path| {
        let ran = ovsup(
            &bed,
            inventory,
            &["--json", "eval", r#"sh(nodes(), "hostname")"#],
        )
        .run()
        .code(0);
        ran.json_result()["value"]["a"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let inv = one_node_inventory(&bed, first, first.port(), Some("root"));
    assert_eq!(hostname(&inv), first.name());
    assert_eq!(hostname(&inv), first.name());
    assert_eq!(handshakes(first), 1, "the same connection: reused");

    // Another port of the same server: another connection.
    let extra = first.extra_port().expect("extra port");
    let inv = one_node_inventory(&bed, first, extra, Some("root"));
    assert_eq!(hostname(&inv), first.name());
    assert_eq!(handshakes(first), 2, "a changed port: a new master");

    // The user left to the ssh config (root as well): another connection all the same.
    let inv = one_node_inventory(&bed, first, first.port(), None);
    assert_eq!(hostname(&inv), first.name());
    assert_eq!(handshakes(first), 3, "a changed user: a new master");

    // The node moved to another host: the old master is not used for it.
    let inv = one_node_inventory(&bed, second, second.port(), Some("root"));
    assert_eq!(hostname(&inv), second.name());
    assert_eq!((handshakes(first), handshakes(second)), (3, 1));

    assert_eq!(masters(&bed).len(), 4, "one master per connection");
    disconnect(&bed);
}

#[test]
fn a_master_found_dead_is_replaced() {
    let bed = TestBed::start(2);
    let inventory = bed.inventory_path();
    ovsup(&bed, inventory, &["eval", r#"sh(nodes(), "true")"#])
        .run()
        .code(0);
    let kept = masters(&bed);
    assert_eq!(kept.len(), 2);
    // A master killed behind ovsup's back leaves its socket; the next run notices.
    kill_and_wait(&kept[..1]);
    ovsup(&bed, inventory, &["eval", r#"sh(nodes(), "true")"#])
        .run()
        .code(0);
    let mut counts = handshakes_all(&bed);
    counts.sort();
    assert_eq!(
        counts,
        [1, 2],
        "only the dead master's node connected again"
    );
    assert_eq!(masters(&bed).len(), 2);
    disconnect(&bed);
}

/// Whether the environment's run lock is free on `node` (nobody `flock`s it).
fn lock_free(node: &Node) -> bool {
    node.sh_local("flock -n /var/lib/ovsup/run.lock true")
        .status
        .success()
}

#[test]
fn a_killed_runs_lock_dies_with_it_and_its_masters_are_reused_not_orphaned() {
    let bed = TestBed::start(3);
    let inventory = bed.inventory_path();
    let mut child = ovsup(&bed, inventory, &["eval", r#"sh(nodes(), "sleep 60")"#])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ovsup");
    // The holder file says the run holds the lock (probing the lock itself now could make
    // the run's own attempt find it busy).
    let holder = format!("\"pid\":{}", child.id());
    wait_until("the run holds the lock on every node", || {
        bed.nodes().iter().all(|n| {
            std::fs::read_to_string(n.root_path().join("var/lib/ovsup/run.lock.holder"))
                .is_ok_and(|h| h.contains(&holder))
        })
    });
    wait_until("the commands run on every node", || {
        bed.nodes().iter().all(|n| {
            n.sh_local("pgrep -f '^sleep 60' >/dev/null")
                .status
                .success()
        })
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // The masters live on, and keep no lock: the kernel lock went with the lock session,
    // which the master closed when the run's connection to it died.
    let began = Instant::now();
    while !bed.nodes().iter().all(lock_free) {
        if began.elapsed() > Duration::from_secs(30) {
            let held: Vec<String> = bed
                .nodes()
                .iter()
                .filter(|n| !lock_free(n))
                .map(|n| {
                    let why = n.sh_local(
                        "flock -n /var/lib/ovsup/run.lock true; echo \"flock: $?\"; \
                         ls -lai /var/lib/ovsup; cat /proc/locks",
                    );
                    format!(
                        "{}:\n{}{}",
                        n.name(),
                        String::from_utf8_lossy(&why.stdout),
                        String::from_utf8_lossy(&why.stderr)
                    )
                })
                .collect();
            panic!(
                "the killed run's lock is still held after 30 s on:\n{}",
                held.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(masters(&bed).len(), 3, "the masters outlive the killed run");

    // The next run is not refused, and uses the killed run's masters: no new handshake, and
    // no master beyond the kept ones.
    ovsup(&bed, inventory, &["eval", r#"sh(nodes(), "hostname")"#])
        .run()
        .code(0);
    assert_eq!(handshakes_all(&bed), [1, 1, 1]);
    assert_eq!(masters(&bed).len(), 3, "no orphan master");
    assert!(
        bed.nodes().iter().all(lock_free),
        "the run let go of its lock"
    );
    disconnect(&bed);
}

#[test]
fn control_persist_zero_closes_the_masters_at_the_end_of_the_run() {
    let bed = TestBed::start(2);
    ovsup(
        &bed,
        bed.inventory_path(),
        &["--control-persist", "0", "eval", r#"sh(nodes(), "true")"#],
    )
    .run()
    .code(0);
    wait_until("the masters exit", || masters(&bed).is_empty());
}
