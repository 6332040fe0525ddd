//! `ovsup history`: the runs of an environment from their journals (who, when, what, flags,
//! exit code, duration, nodes), `history show RUN` (the command the run failed on first, then
//! every command per node), `--timeline FILE.svg`; journals of older versions and killed runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};

/// `ovsup` on the cluster, with a legacy VM record path private to the test (absent).
fn ovsup(c: &Cluster) -> Ovsup {
    let legacy = c.state_dir().with_file_name("ovs-machine-state.json");
    c.ovsup()
        .env("OVSUP_LEGACY_VM_RECORD", &legacy.display().to_string())
}

fn value(ran: &Ran) -> Value {
    ran.json_result()["value"].clone()
}

/// The host name the journal records for this machine.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

on_both_backends!(
    history_tells_who_ran_what_and_a_failed_run_its_failure_first,
    the_timeline_has_a_row_per_node_and_marks_the_vm_downtime
);

fn history_tells_who_ran_what_and_a_failed_run_its_failure_first(backend: Backend) {
    let c = Cluster::new(backend, 2);
    ovsup(&c).args(["update"]).run().code(0);
    // A run that fails on node-02, after commands that succeed.
    let failing = r#"cmd(nodes(), ["true"]); cmd(nodes()[1], ["false"]); cmd(nodes(), ["true"])"#;
    ovsup(&c)
        .args([
            "--skip-vm",
            "--limit",
            "node-0*",
            "eval",
            failing,
            "--set",
            "batch=2",
        ])
        .run()
        .code(1);

    let runs = value(&ovsup(&c).args(["--json", "history"]).run().code(0));
    let runs = runs.as_array().unwrap_or_else(|| panic!("{runs}"));
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (update, eval) = (&runs[0], &runs[1]);
    assert_eq!(update["runbook"], "update", "{update}");
    assert_eq!(update["status"], "ok", "{update}");
    assert_eq!(update["code"], 0, "{update}");
    assert_eq!(eval["runbook"], "eval", "{eval}");
    assert_eq!(eval["status"], "failed", "{eval}");
    assert_eq!(eval["code"], 1, "{eval}");
    assert_eq!(eval["error"]["kind"], "remote", "{eval}");
    assert_eq!(eval["user"], "root", "{eval}");
    assert_eq!(eval["controller"], hostname(), "{eval}");
    assert!(eval["pid"].as_u64().is_some_and(|p| p > 0), "{eval}");
    assert_eq!(eval["ovsup"], env!("CARGO_PKG_VERSION"), "{eval}");
    assert_eq!(
        eval["backend"],
        match backend {
            Backend::Sim => "sim",
            Backend::Ssh => "ssh",
        }
    );
    assert_eq!(
        eval["nodes"],
        serde_json::json!(["node-01", "node-02"]),
        "{eval}"
    );
    assert_eq!(eval["flags"]["skip_vm"], true, "{eval}");
    assert_eq!(eval["flags"]["limit"], "node-0*", "{eval}");
    assert_eq!(eval["flags"]["set"]["batch"], "2", "{eval}");
    assert!(eval["ms"].as_u64().is_some(), "{eval}");

    // For people: a row per run with its runbook, status and flags.
    let listed = ovsup(&c).args(["history"]).run().code(0);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains("-eval"))
        .unwrap_or_default();
    for needle in [
        "root@",
        "eval",
        "exit 1",
        "--skip-vm",
        "--limit 'node-0*'",
        "--set batch=2",
    ] {
        assert!(
            row.contains(needle),
            "{needle:?} missing: {}",
            listed.stdout
        );
    }

    // `show last`: the exit code and the failing command before anything else.
    let shown = value(
        &ovsup(&c)
            .args(["--json", "history", "show", "last"])
            .run()
            .code(0),
    );
    assert_eq!(shown["id"], eval["id"]);
    assert_eq!(shown["code"], 1);
    let first = &shown["failures"][0];
    assert_eq!(first["node"], "node-02", "{shown}");
    assert_eq!(first["command"], "false", "{shown}");
    assert_eq!(first["code"], 1, "{shown}");
    assert_eq!(first["failed_the_run"], true, "{shown}");
    // The run stopped at the failure: `true` ran once on each node, `false` on node-02.
    let node1 = shown["by_node"]["node-01"]
        .as_array()
        .expect("node-01's commands");
    assert_eq!(node1.len(), 1, "{shown}");
    assert!(
        node1[0]["outcome"] == "ok" && node1[0]["ms"].is_u64(),
        "{shown}"
    );
    let node2: Vec<&Value> = shown["by_node"]["node-02"]
        .as_array()
        .expect("node-02")
        .iter()
        .collect();
    assert_eq!(
        node2
            .iter()
            .map(|c| c["outcome"].as_str())
            .collect::<Vec<_>>(),
        [Some("ok"), Some("non_zero")],
        "{shown}"
    );
    let shown = ovsup(&c).args(["history", "show", "last"]).run().code(0);
    let text = &shown.stdout;
    assert!(text.contains("exit 1 after"), "{text}");
    let after_header = text
        .lines()
        .skip_while(|l| !l.starts_with("non-zero exits and errors"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        after_header.contains("node-02")
            && after_header.contains("exit 1")
            && after_header.contains("false")
            && after_header.contains("the run failed here"),
        "{text}"
    );
    // An id as listed, or its start, names the run too.
    let id = eval["id"].as_str().expect("id");
    ovsup(&c)
        .args(["history", "show", id])
        .run()
        .code(0)
        .stdout_has("the run failed here");
    ovsup(&c)
        .args(["history", "show", "no-such-run"])
        .run()
        .code(2)
        .stderr_has("ovsup history");
}

fn the_timeline_has_a_row_per_node_and_marks_the_vm_downtime(backend: Backend) {
    let c = Cluster::new(backend, 3);
    ovsup(&c)
        .args(["--yes", "eval", "stop_vms(nodes()); start_vms()"])
        .run()
        .code(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("run.svg");
    let shown = ovsup(&c)
        .args([
            "history",
            "show",
            "last",
            "--timeline",
            svg.to_str().expect("utf-8"),
        ])
        .run()
        .code(0);
    assert!(
        shown.stdout.contains(&svg.display().to_string()),
        "{}",
        shown.stdout
    );
    let text = std::fs::read_to_string(&svg).expect("the timeline was written");
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(200)]);
    for node in c.storage_names() {
        assert!(text.contains(&node), "{node} is not in the timeline");
    }
    assert!(text.contains("VM downtime"), "no downtime marked");
    // Bars: at least one per command.
    let runs = value(&ovsup(&c).args(["--json", "history"]).run().code(0));
    let commands = runs[0]["commands"].as_u64().expect("count");
    assert!(
        text.matches("<rect").count() as u64 >= commands,
        "{commands} commands"
    );
}

/// A journal line as an older ovsup wrote it (no first or last line).
const OLD_LINE: &str = r#"{"node":"node-01","command":"apt-get update","start":"2024-03-01T10:00:00.000Z","ms":1500,"code":0,"bytes":12}"#;

#[test]
fn older_journals_and_killed_runs_are_listed_for_what_they_are() {
    let c = Cluster::new(Backend::Sim, 2);
    let runs = c.state_dir().join("runs");
    ovsup::state::ensure_dir(&c.state_dir()).expect("state dir");
    std::fs::create_dir_all(&runs).expect("runs dir");
    std::fs::write(
        runs.join("2024-03-01T100000.000Z-update.jsonl"),
        format!("{OLD_LINE}\n"),
    )
    .expect("old journal");

    // A run killed while it waits: its journal has a first line and no last one.
    let mut child = ovsup(&c)
        .args(["eval", "sleep(60)"])
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ovsup");
    let journal = wait_for_journal(&runs, "-eval.jsonl");
    let listed = value(&ovsup(&c).args(["--json", "history"]).run().code(0));
    assert_eq!(listed[1]["status"], "running", "{listed}");
    assert_eq!(listed[1]["pid"], child.id(), "{listed}");
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(journal.exists());

    let listed = value(&ovsup(&c).args(["--json", "history"]).run().code(0));
    let listed = listed.as_array().expect("runs");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["status"], "unknown", "{listed:?}");
    assert_eq!(listed[0]["runbook"], "update", "{listed:?}");
    assert_eq!(
        listed[0]["nodes"],
        serde_json::json!(["node-01"]),
        "{listed:?}"
    );
    assert_eq!(listed[0]["commands"], 1, "{listed:?}");
    assert_eq!(listed[1]["status"], "unfinished", "{listed:?}");
    let text = ovsup(&c).args(["history"]).run().code(0).stdout;
    assert!(text.contains("unknown (older journal)"), "{text}");
    assert!(text.contains("unfinished (killed?)"), "{text}");
    assert!(text.contains("2024-03-01 10:00:00Z"), "{text}");
    let shown = ovsup(&c)
        .args(["history", "show", "2024-03"])
        .run()
        .code(0)
        .stdout;
    assert!(
        shown.contains("apt-get update") && shown.contains("older ovsup"),
        "{shown}"
    );
    let shown = ovsup(&c)
        .args(["history", "show", "last"])
        .run()
        .code(0)
        .stdout;
    assert!(shown.contains("unfinished (killed?)"), "{shown}");
    // The timeline of a journal without its first line still names its node.
    let svg = c.state_dir().join("old.svg");
    ovsup(&c)
        .args([
            "history",
            "show",
            "2024-03",
            "--timeline",
            svg.to_str().expect("utf-8"),
        ])
        .run()
        .code(0);
    assert!(
        std::fs::read_to_string(&svg)
            .expect("svg")
            .contains("node-01")
    );
}

/// The journal file whose name ends with `suffix`, once it has its first line.
fn wait_for_journal(runs: &Path, suffix: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = std::fs::read_dir(runs)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(suffix));
        if let Some(path) = found
            && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"type\":\"begin\""))
        {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "no journal {suffix} in {}",
            runs.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
