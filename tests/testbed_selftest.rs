//! Self-tests of the SSH test bed (the `ovsup-testbed` crate, `tests/testbed/`), with the
//! system `ssh`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use crate::support::{Node, TestBed};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ssh(bed: &TestBed, node: &Node, remote: &str) -> Output {
    bed.ssh(node, &[remote]).output().expect("run ssh")
}

/// Runs `remote` on `node` and returns its stdout; panics with stderr on failure.
fn ssh_ok(bed: &TestBed, node: &Node, remote: &str) -> String {
    let out = ssh(bed, node, remote);
    assert!(
        out.status.success(),
        "ssh {} {remote:?} failed ({}): {}\nsshd.log:\n{}",
        node.name(),
        out.status,
        text(&out.stderr),
        node.sshd_log()
    );
    text(&out.stdout)
}

fn processes_of(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| {
            // A zombie has no namespace links any more: count only live processes.
            fs::read_link(format!("/proc/{p}/ns/mnt")).is_ok()
        })
        .collect()
}

#[test]
fn nodes_have_separate_filesystems() {
    let bed = TestBed::start(3);
    for (i, n) in bed.nodes().iter().enumerate() {
        ssh_ok(
            &bed,
            n,
            &format!("echo probe-{i} > /etc/ovsup-probe && echo tmp-{i} > /tmp/ovsup-probe"),
        );
    }
    for (i, n) in bed.nodes().iter().enumerate() {
        assert_eq!(
            ssh_ok(&bed, n, "cat /etc/ovsup-probe /tmp/ovsup-probe"),
            format!("probe-{i}\ntmp-{i}\n")
        );
        let local = n.run_local(["cat", "/etc/ovsup-probe"]);
        assert_eq!(text(&local.stdout), format!("probe-{i}\n"));
        assert_eq!(
            fs::read_to_string(n.root_path().join("etc/ovsup-probe")).unwrap(),
            format!("probe-{i}\n")
        );
        // `hostname` answers the node's name (own UTS namespace).
        assert_eq!(ssh_ok(&bed, n, "hostname").trim(), n.name());
    }
    assert!(
        !Path::new("/etc/ovsup-probe").exists(),
        "leaked to host /etc"
    );
    assert!(
        !Path::new("/tmp/ovsup-probe").exists(),
        "leaked to host /tmp"
    );

    // Removing the file on node 1 doesn't touch node 2's.
    ssh_ok(&bed, bed.node(0), "rm /etc/ovsup-probe");
    assert_eq!(
        ssh_ok(&bed, bed.node(1), "cat /etc/ovsup-probe"),
        "probe-1\n"
    );
    let gone = ssh(&bed, bed.node(0), "cat /etc/ovsup-probe");
    assert!(!gone.status.success());

    // Distinct addresses, all in 127/8, port 22.
    let addrs: std::collections::HashSet<_> = bed.nodes().iter().map(|n| n.addr()).collect();
    assert_eq!(addrs.len(), 3);
    for n in bed.nodes() {
        assert_eq!(n.addr().octets()[0], 127);
        // 22 unless a host sshd holds 0.0.0.0:22 (then 2222).
        assert!([22, 2222].contains(&n.port()));
        assert!(n.sshd_pid().is_some());
    }
}

#[test]
fn ssh_config_host_aliases_and_inventory() {
    let bed = TestBed::builder()
        .nodes(2)
        .node_groups("node-02", &["master"])
        .extra_node("ovc_master", &["controller"])
        .defaults_toml("retries = 2\ncommand_timeout = 60")
        .start();
    // `ssh -F cfg node-01` works through the Host alias.
    let out = Command::new("ssh")
        .arg("-F")
        .arg(bed.ssh_config_path())
        .args(["ovc_master", "hostname"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ovc_master");

    let inv: toml::Table = fs::read_to_string(bed.inventory_path())
        .unwrap()
        .parse()
        .expect("inventory.toml parses");
    let d = inv["defaults"].as_table().unwrap();
    assert_eq!(d["user"].as_str(), Some("root"));
    assert_eq!(
        d["ssh_config"].as_str(),
        Some(bed.ssh_config_path().to_str().unwrap())
    );
    assert_eq!(d["connect_timeout"].as_integer(), Some(5));
    assert_eq!(d["command_timeout"].as_integer(), Some(60));
    assert_eq!(d["retries"].as_integer(), Some(2));
    let nodes = inv["nodes"].as_table().unwrap();
    assert_eq!(
        nodes.keys().collect::<Vec<_>>(),
        ["node-01", "node-02", "ovc_master"]
    );
    let n2 = nodes["node-02"].as_table().unwrap();
    assert_eq!(
        n2["host"].as_str(),
        Some(bed.node(1).addr().to_string().as_str())
    );
    assert_eq!(n2["port"].as_integer(), Some(bed.node(1).port() as i64));
    let groups: Vec<_> = n2["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(groups, ["storage", "master"]);
    let m = nodes["ovc_master"].as_table().unwrap();
    assert_eq!(
        m["groups"].as_array().unwrap()[0].as_str(),
        Some("controller")
    );

    let cfg = fs::read_to_string(bed.ssh_config_path()).unwrap();
    for want in [
        "IdentitiesOnly yes",
        "StrictHostKeyChecking yes",
        "BatchMode yes",
        "GlobalKnownHostsFile /dev/null",
        "ForwardAgent no",
    ] {
        assert!(cfg.contains(want), "ssh_config lacks {want:?}:\n{cfg}");
    }
}

#[test]
fn path_prepend_env_and_setup_hook() {
    let bin = tempfile::tempdir().unwrap();
    // Shadows /usr/bin/hostname: the prepended dir must come first.
    let fake = bin.path().join("hostname");
    fs::write(&fake, "#!/bin/sh\necho fake-hostname\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let bed = TestBed::builder()
        .nodes(2)
        .path_prepend(bin.path())
        .env("OVS_SIM_STATE", "/var/lib/ovs-sim/state.json")
        .node_env("node-02", "ONLY_ON_2", "yes it is")
        .setup(|node| {
            let out = node.sh_local(&format!(
                "mkdir -p /var/lib/ovs-sim && echo seeded-{} > /var/lib/ovs-sim/state.json",
                node.name()
            ));
            assert!(out.status.success(), "{}", text(&out.stderr));
        })
        .start();
    for n in bed.nodes() {
        assert_eq!(ssh_ok(&bed, n, "hostname"), "fake-hostname\n");
        let path = ssh_ok(&bed, n, "echo $PATH");
        assert!(
            path.starts_with(&format!("{}:", bin.path().display())),
            "PATH = {path}"
        );
        assert_eq!(
            ssh_ok(&bed, n, "cat \"$OVS_SIM_STATE\""),
            format!("seeded-{}\n", n.name())
        );
        // The lean rc file: nothing from the host's ~/.bashrc (pyenv) in the session.
        assert_eq!(ssh_ok(&bed, n, "echo \"[$PYENV_ROOT]\""), "[]\n");
    }
    assert_eq!(
        ssh_ok(&bed, bed.node(1), "echo \"$ONLY_ON_2\""),
        "yes it is\n"
    );
    assert_eq!(ssh_ok(&bed, bed.node(0), "echo \"[$ONLY_ON_2]\""), "[]\n");
    // A file added to the prepended dir after start is seen at once (live bind).
    let late = bin.path().join("late-tool");
    fs::write(&late, "#!/bin/sh\necho late\n").unwrap();
    fs::set_permissions(&late, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(ssh_ok(&bed, bed.node(0), "late-tool"), "late\n");
}

#[test]
fn stopped_node_refuses_and_start_brings_it_back() {
    let bed = TestBed::start(2);
    let n = bed.node(0);
    ssh_ok(&bed, n, "echo kept > /var/tmp/ovsup-kept");
    // A long-running session is killed with the node.
    let mut long = bed
        .ssh(n, &["sleep 300"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let old_pid = n.sshd_pid().unwrap();
    n.stop();
    assert!(n.sshd_pid().is_none());
    assert!(processes_of(&[old_pid]).is_empty());
    let st = long.wait().unwrap();
    assert!(!st.success(), "session survived the stop");
    let out = ssh(&bed, n, "true");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out.stderr)
    );
    // The other node is unaffected.
    ssh_ok(&bed, bed.node(1), "true");
    // The node's files outlive the stop; run_local still works.
    assert_eq!(
        text(&n.run_local(["cat", "/var/tmp/ovsup-kept"]).stdout),
        "kept\n"
    );
    n.start();
    assert_ne!(n.sshd_pid().unwrap(), old_pid);
    assert_eq!(ssh_ok(&bed, n, "cat /var/tmp/ovsup-kept"), "kept\n");
}

#[test]
fn regenerated_host_key_is_refused() {
    let bed = TestBed::start(2);
    let n = bed.node(1);
    ssh_ok(&bed, n, "true");
    n.regenerate_host_key();
    let out = ssh(&bed, n, "true");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            && err.contains("Host key verification failed"),
        "{err}"
    );
    // Node 0 still fine; trusting the new key again works.
    ssh_ok(&bed, bed.node(0), "true");
    bed.refresh_known_hosts();
    ssh_ok(&bed, n, "true");
}

#[test]
fn drop_cleans_up_even_on_panic() {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let bed = TestBed::start(2);
        // A background process started over ssh must die with the bed too.
        let bg: u32 = ssh_ok(
            &bed,
            bed.node(0),
            "nohup sleep 600 >/dev/null 2>&1 & echo $!",
        )
        .trim()
        .parse()
        .unwrap();
        let mut pids: Vec<u32> = vec![bg];
        for n in bed.nodes() {
            pids.push(n.holder_pid());
            pids.push(n.sshd_pid().unwrap());
        }
        // (pid, its mount namespace): a pid counts as left over only if both still match.
        let pids: Vec<(u32, String)> = pids
            .into_iter()
            .map(|p| (p, mnt_ns(p).expect("process is alive")))
            .collect();
        tx.send((bed.dir().to_path_buf(), pids)).unwrap();
        panic!("deliberate panic with a live test bed");
    })
    .join();
    assert!(r.is_err(), "the thread was meant to panic");
    let (dir, pids) = rx.recv().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    for (p, ns) in &pids {
        assert_ne!(mnt_ns(*p).as_ref(), Some(ns), "process {p} left behind");
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()));
}

fn mnt_ns(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// Not run by default: `cargo test --test integration testbed_bringup_times -- --ignored --nocapture`.
#[test]
#[ignore]
fn testbed_bringup_times() {
    for n in [10, 50] {
        let t = Instant::now();
        let bed = TestBed::start(n);
        let up = t.elapsed();
        let t = Instant::now();
        drop(bed);
        eprintln!("{n} nodes: up in {up:?}, torn down in {:?}", t.elapsed());
    }
}

/// Not run by default: per-command cost of `ssh` over a ControlMaster, with the lean rc file
/// and with the host's `~/.bashrc`.
#[test]
#[ignore]
fn testbed_command_cost() {
    for lean in [true, false] {
        let bed = TestBed::builder().nodes(1).lean_shell(lean).start();
        let n = bed.node(0);
        let ctl = bed.dir().join("ctl");
        let mk = |extra: &[&str]| {
            let mut c = Command::new("ssh");
            c.arg("-F")
                .arg(bed.ssh_config_path())
                .arg("-o")
                .arg(format!("ControlPath={}", ctl.display()))
                .args(extra)
                .arg(n.addr().to_string());
            c
        };
        let st = mk(&[
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=60",
            "-N",
            "-f",
        ])
        .status()
        .unwrap();
        assert!(st.success());
        for _ in 0..5 {
            mk(&[]).arg("true").output().unwrap();
        }
        let runs = 50;
        let t = Instant::now();
        for _ in 0..runs {
            let out = mk(&[]).arg("true").output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let per = t.elapsed() / runs;
        eprintln!("lean_shell={lean}: {per:?} per `ssh true` over a ControlMaster");
        let _ = mk(&["-O", "exit"]).output();
    }
}
