//! `ovsup -i INVENTORY sim capture NAME` (docs/capture.md): a capture of the sshd test bed is
//! a replica on which `plan` and `check` give the bed's values and the guide's procedure ends
//! as on the bed; the capture only queried the nodes; `sim list` shows it and `sim reset`
//! restores it after a rehearsal. A capture of the in-process cluster replicates it too; a
//! node answering what the parsers do not know fails the capture, which writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ovsup::sim::layout::Layout;
use ovsup::sim::state::{DomState, NodeState, now_ms};
use ovsup::sim::{FsEntry, Store, cluster};
use serde_json::Value;

use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};

/// Where a test's replicas live: its own `$XDG_STATE_HOME`.
struct Replicas {
    xdg: tempfile::TempDir,
}

impl Replicas {
    fn new() -> Replicas {
        Replicas {
            xdg: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// `ovsup` with this `$XDG_STATE_HOME` and a legacy VM record path of its own (absent), so
    /// that a `/tmp/ovs-machine-state.json` on the test machine changes nothing.
    fn env(&self, o: Ovsup) -> Ovsup {
        let legacy = self.xdg.path().join("ovs-machine-state.json");
        o.env("XDG_STATE_HOME", &self.xdg.path().display().to_string())
            .env("OVSUP_LEGACY_VM_RECORD", &legacy.display().to_string())
    }

    /// `ovsup ARGS` on the cluster (its own state directory).
    fn on(&self, c: &Cluster, args: &[&str]) -> Ovsup {
        self.env(c.ovsup()).args(args)
    }

    /// `ovsup -i sim:NAME ARGS` (the replica's default state directory).
    fn on_replica(&self, name: &str, args: &[&str]) -> Ovsup {
        self.env(Ovsup::with_inventory(Path::new(&format!("sim:{name}"))))
            .args(args)
    }

    /// The replica's state directory.
    fn dir(&self, name: &str) -> PathBuf {
        self.xdg.path().join("ovsup").join(format!("sim-{name}"))
    }

    /// A node's state on the replica now.
    fn state(&self, name: &str, node: &str) -> NodeState {
        Store::new(cluster::state_file(&self.dir(name).join("sim"), node))
            .read()
            .expect("a replica node's state")
    }

    /// `ovsup --json sim list`, without `-i`: the clusters it lists.
    fn list(&self) -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ovsup"))
            .args(["--json", "sim", "list"])
            .env_remove("OVSUP_INVENTORY")
            .env_remove("OVSUP_STATE_DIR")
            .env("XDG_STATE_HOME", self.xdg.path())
            .output()
            .expect("run ovsup sim list");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or_default();
        serde_json::from_str::<Value>(last).expect("the result event")["value"].clone()
    }
}

/// A `--json` run's exit code and value.
fn json(o: Ovsup) -> (i32, Value) {
    let ran: Ran = o.run();
    let value = ran.json_result()["value"].clone();
    (ran.code, value)
}

/// Whether a command line (as a journal or a node's history has it) is one of the queries a
/// capture may send.
fn is_query(line: &str) -> bool {
    const QUERIES: [&str; 21] = [
        "test -d /run/systemd/system && echo systemd || initctl version",
        "apt-get --version",
        "dpkg --audit",
        "dpkg-query -W ",
        "apt-cache policy ",
        "initctl list",
        "systemctl list-units '--type=service' --all --no-legend --plain '*'",
        "systemctl show -p LoadState -p ActiveState -p MainPID ",
        "/etc/init.d/memcached status",
        "virsh list --all --name",
        "virsh domstate ",
        "fuser 4446/tcp",
        "cat /etc/openvstorage_id",
        "ip -4 -o addr show dev backplane1",
        "stat -c '%Y' /var/lib/apt/periodic/update-success-stamp",
        "df '--output=avail' -B1 ",
        "grep '^ALLOWED_HOSTS' /opt/OpenvStorage/webapps/api/settings.py",
        "ls /opt/OpenvStorage/config/arakoon",
        "read /opt/OpenvStorage/config/arakoon/",
        "arakoon --who-master -config /opt/OpenvStorage/config/arakoon/",
        // The simulator's own record of a `test -d … && echo … || initctl version` line.
        "test -d /run/systemd/system",
    ];
    QUERIES.iter().any(|q| line == *q || line.starts_with(q))
        || matches!(
            line,
            "echo systemd" | "initctl version" | "status memcached"
        )
}

/// A node's state without what every command adds (its history).
fn quiet(mut s: NodeState) -> NodeState {
    s.history.clear();
    s
}

/// What a procedure leaves on a storage node: the packages and their versions and dpkg
/// states, the VMs running, the jobs running, the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Look {
    packages: BTreeMap<String, (Option<String>, String)>,
    vms: BTreeSet<String>,
    jobs: BTreeSet<String>,
    agent: bool,
}

fn look(s: &NodeState) -> Look {
    let now = now_ms();
    Look {
        packages: s
            .packages
            .iter()
            .map(|(n, p)| (n.clone(), (p.installed.clone(), p.status.word().to_owned())))
            .collect(),
        vms: s
            .domains
            .keys()
            .filter(|d| s.domain_state(d, now) == Some(DomState::Running))
            .cloned()
            .collect(),
        jobs: s
            .jobs
            .iter()
            .filter(|(_, j)| j.running)
            .map(|(n, _)| n.clone())
            .collect(),
        agent: s.agent_pid.is_some(),
    }
}

/// The steps of docs/upgrade-guide.md after `update`, as the guide's own test runs them.
const GUIDE: [&[&str]; 9] = [
    &["preprocess"],
    &["framework"],
    &["arakoon"],
    &["stop-vm"],
    &["alba", "--skip-vm"],
    &["volumedriver", "--skip-vm"],
    &["start-vm"],
    &["postprocess"],
    &["check"],
];

#[test]
fn a_capture_of_the_test_bed_rehearses_as_the_bed_runs() {
    let bed = Cluster::with_layout(Backend::Ssh, Layout::default_for(3));
    let r = Replicas::new();
    r.on(&bed, &["update"]).run().code(0);
    let all: Vec<String> = bed
        .layout()
        .inventory()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let before: BTreeMap<String, NodeState> =
        all.iter().map(|n| (n.clone(), bed.state(n))).collect();

    let (code, captured) = json(r.on(&bed, &["--json", "sim", "capture", "bed"]));
    assert_eq!(code, 0, "{captured}");
    let names: BTreeSet<String> = captured["nodes"]
        .as_object()
        .expect("nodes")
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, bed.storage_names().into_iter().collect());
    assert_eq!(captured["controllers"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        captured["notes"],
        Value::Array(Vec::new()),
        "the simulator represents the bed whole"
    );

    // Read-only: the capture's journal holds queries only (and no run lock was taken); the
    // nodes are as they were, their history grew by queries only, the controllers were not
    // sent a command.
    let runs = bed.state_dir().join("runs");
    let capture_journal = std::fs::read_dir(&runs)
        .expect("runs")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("-capture.jsonl"))
        .expect("the capture's journal");
    let lines: Vec<Value> = std::fs::read_to_string(&capture_journal)
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal line is JSON"))
        .collect();
    let typed: BTreeSet<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert!(
        !typed.contains("lock"),
        "the capture took the run lock: {lines:#?}"
    );
    let commands: Vec<&str> = lines
        .iter()
        .filter(|l| l.get("type").is_none())
        .filter_map(|l| l["command"].as_str())
        .collect();
    assert!(commands.len() > 50, "{commands:?}");
    let changing: Vec<&&str> = commands.iter().filter(|c| !is_query(c)).collect();
    assert!(changing.is_empty(), "not queries: {changing:#?}");
    for name in &all {
        let after = bed.state(name);
        let sent = &after.history[before[name].history.len()..];
        let changing: Vec<&String> = sent.iter().filter(|c| !is_query(c)).collect();
        assert!(changing.is_empty(), "{name} got {changing:#?}");
        assert_eq!(
            quiet(after.clone()),
            quiet(before[name].clone()),
            "{name} changed"
        );
        if name.starts_with("ovc_") {
            assert!(sent.is_empty(), "{name} was sent {sent:?}");
        } else {
            assert!(sent.len() > 10, "{name} was sent {sent:?}");
        }
    }

    // `sim list` shows it.
    let listed = r.list();
    let entry = listed
        .as_array()
        .and_then(|l| l.iter().find(|e| e["spec"] == "sim:bed"))
        .unwrap_or_else(|| panic!("sim:bed not listed: {listed}"));
    assert_eq!(
        entry["storage_nodes"],
        serde_json::json!(bed.storage_names())
    );
    assert_eq!(entry["captured"]["captured_at"], captured["captured_at"]);

    // plan and check: the same values (and exit codes) on the bed and on the replica.
    for args in [&["--json", "check"][..], &["--json", "plan"]] {
        let on_bed = json(r.on(&bed, args));
        let on_replica = json(r.on_replica("bed", args));
        assert_eq!(on_bed, on_replica, "`{}`", args.join(" "));
    }
    let (_, check) = json(r.on_replica("bed", &["--json", "check"]));
    assert_eq!(check["alba"]["pending"], true, "{check}");

    // The guide's procedure: the same exit code and value step by step, the same end state.
    for step in GUIDE {
        let args = [&["--yes", "--json"][..], step].concat();
        let (bed_code, bed_value) = json(r.on(&bed, &args));
        let (code, value) = json(r.on_replica("bed", &args));
        assert_eq!(
            (bed_code, code),
            (0, 0),
            "`{}`:\n{bed_value}\n{value}",
            step.join(" ")
        );
        // Nothing in a step's value is the bed's own (no path, no pid): all must agree.
        assert_eq!(bed_value, value, "`{}`", step.join(" "));
    }
    for node in bed.storage_names() {
        assert_eq!(
            look(&bed.state(&node)),
            look(&r.state("bed", &node)),
            "{node} after the procedure"
        );
    }
    let (_, last) = json(r.on_replica("bed", &["--json", "check"]));
    for comp in ["arakoon", "framework", "volumedriver", "alba"] {
        assert_eq!(last[comp]["pending"], false, "{comp}: {last}");
    }

    // `sim reset` restores the capture: every node file as captured, updates pending again.
    r.on_replica("bed", &["sim", "reset"])
        .run()
        .code(0)
        .stdout_has("reset to its capture");
    let dir = r.dir("bed");
    for name in &all {
        let file = |d: &Path| {
            std::fs::read_to_string(cluster::state_file(d, name)).expect("a node's state file")
        };
        assert_eq!(
            file(&dir.join("sim")),
            file(&dir.join("capture").join("sim")),
            "{name}"
        );
    }
    assert_eq!(json(r.on_replica("bed", &["--json", "check"])).1, check);
}

#[test]
fn a_capture_of_the_in_process_cluster_replicates_it_and_only_reads() {
    let c = Cluster::with_layout(Backend::Sim, Layout::five_nodes().expect("five nodes"));
    let r = Replicas::new();
    r.on(&c, &["update"]).run().code(0);
    let all: Vec<String> = c.layout().inventory().into_iter().map(|(n, _)| n).collect();
    let before: Vec<NodeState> = all.iter().map(|n| quiet(c.state(n))).collect();

    // A dry run reads and writes nothing; refusals come before any node is read.
    r.on(&c, &["--dry-run", "sim", "capture", "five"])
        .run()
        .code(0)
        .stdout_has("dry run: nothing written");
    assert!(!r.dir("five").exists());
    for (args, says) in [
        (&["sim", "capture", "7"][..], "not a number"),
        (&["--limit", "node-01", "sim", "capture", "five"], "--limit"),
    ] {
        r.on(&c, args).run().code(2).stderr_has(says);
    }
    r.on_replica("five", &["check"])
        .run()
        .code(2)
        .stderr_has("no captured cluster named \"five\"");

    r.on(&c, &["sim", "capture", "five"])
        .run()
        .code(0)
        .stdout_has("captured sim")
        .stdout_has("Arakoon mybackend-nsm_1: members on node-04");
    let after: Vec<NodeState> = all.iter().map(|n| quiet(c.state(n))).collect();
    assert_eq!(before, after, "the capture changed a node");
    for args in [&["--json", "check"][..], &["--json", "plan"]] {
        assert_eq!(
            json(r.on(&c, args)),
            json(r.on_replica("five", args)),
            "`{}`",
            args.join(" ")
        );
    }
    assert_eq!(
        r.state("five", "node-03").machine_id,
        c.state("node-03").machine_id
    );
    // A replica is reset to its capture, not to a layout.
    r.on_replica("five", &["sim", "reset", "--layout", "five.toml"])
        .run()
        .code(2)
        .stderr_has("captured cluster");
    // A second capture of that name must say --replace.
    r.on(&c, &["sim", "capture", "five"])
        .run()
        .code(2)
        .stderr_has("--replace");
    r.on(&c, &["sim", "capture", "five", "--replace"])
        .run()
        .code(0);
    let listed = r.list();
    assert_eq!(
        listed
            .as_array()
            .map(|l| l.iter().filter(|e| e["spec"] == "sim:five").count()),
        Some(1),
        "{listed}"
    );
}

#[test]
fn a_node_answering_what_the_parsers_do_not_know_fails_the_capture_and_nothing_is_written() {
    let c = Cluster::with_layout(Backend::Sim, Layout::default_for(3));
    let r = Replicas::new();
    c.update("node-02", |s| {
        s.files.insert(
            "/etc/openvstorage_id".into(),
            FsEntry::File("not an id\n".into()),
        );
    });
    r.on(&c, &["sim", "capture", "broken"])
        .run()
        .code(1)
        .stderr_has("node-02: `cat /etc/openvstorage_id`")
        .stderr_has("\"not an id\"");
    assert!(!r.dir("broken").exists());
    let leftovers: Vec<_> = std::fs::read_dir(r.xdg.path().join("ovsup"))
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
