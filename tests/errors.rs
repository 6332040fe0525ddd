//! Errors keep their facts end to end: from a primitive to `catch (e)` in a script, and to the
//! error object of `--json`'s result event; the exit code follows from the kind.

use serde_json::json;

use crate::support::ovsup::{Ovsup, Ran};

/// `ovsup -i sim:3` with its own state directory (the dir lives as long as the guard).
fn sim() -> (tempfile::TempDir, impl Fn(&[&str]) -> Ran) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let legacy = dir.path().join("ovs-machine-state.json");
    let run = move |args: &[&str]| {
        Ovsup::with_inventory(std::path::Path::new("sim:3"))
            .state_dir(&state)
            .env("OVSUP_LEGACY_VM_RECORD", &legacy.display().to_string())
            .args(args.iter().copied())
            .run()
    };
    (dir, run)
}

#[test]
fn a_caught_error_names_the_node_of_a_stuck_vm() {
    let (_dir, ovsup) = sim();
    ovsup(&["sim", "fault", "node-02", "stuck_vms", "vm-1-db"]).code(0);
    let ran = ovsup(&[
        "--json",
        "eval",
        r#"try { stop_vms(nodes(), #{timeout: 5}); } catch (e) { return #{node: e.node, nodes: e.nodes, kind: e.kind, kept: e.kept.keys()}; }"#,
    ])
    .code(0);
    let v = ran.json_result()["value"].clone();
    assert_eq!(v["node"], "node-02", "{v}");
    assert_eq!(v["nodes"], json!(["node-02"]), "{v}");
    assert_eq!(v["kind"], "node_state", "{v}");
    let mut kept: Vec<String> = serde_json::from_value(v["kept"].clone()).expect("names");
    kept.sort();
    assert_eq!(kept, ["node-01", "node-03"], "{v}");
}

#[test]
fn the_json_result_of_a_failed_run_has_the_error_object() {
    let (_dir, ovsup) = sim();
    ovsup(&["sim", "fault", "node-03", "failing_installs", "alba"]).code(0);
    ovsup(&["update"]).code(0);
    let ran = ovsup(&[
        "--json",
        "eval",
        "let n = nodes();\napt_install(n, \"alba\")",
    ])
    .code(1);
    let r = ran.json_result();
    assert_eq!(
        (r["ok"].clone(), r["code"].clone()),
        (json!(false), json!(1)),
        "{r}"
    );
    let e = &r["error"];
    assert_eq!(e["kind"], "remote", "{e}");
    assert_eq!(e["node"], "node-03", "{e}");
    assert_eq!(e["code"], 100, "{e}");
    assert!(
        e["command"]
            .as_str()
            .is_some_and(|c| c.contains("apt-get install")),
        "{e}"
    );
    assert!(
        e["stderr_tail"]
            .as_str()
            .is_some_and(|t| t.contains("returned an error code (1)")),
        "{e}"
    );
    assert_eq!(
        e["location"],
        json!({"file": "<eval>", "line": 2, "column": 1}),
        "{e}"
    );
    assert!(e.get("nodes").is_none(), "absent facts are left out: {e}");
}

#[test]
fn a_wrong_argument_in_a_running_runbook_exits_1_naming_the_function() {
    let (_dir, ovsup) = sim();
    ovsup(&["eval", "apt_install(nodes(), 42)"])
        .code(1)
        .stderr_has("apt_install: expected package names")
        .stderr_has("found i64");
    let ran = ovsup(&["--json", "eval", r#"stop_vms(nodes(), #{timeout: "x"})"#]).code(1);
    let e = ran.json_result()["error"].clone();
    assert_eq!(e["kind"], "argument", "{e}");
    assert_eq!(e["function"], "stop_vms", "{e}");
    // A Rhai type error while running is a failure too, not bad usage.
    ovsup(&["eval", "let x = 1 + \"a\" * 2; x"]).code(1);
    // What is wrong before anything runs stays bad usage.
    ovsup(&["eval", "let x = (1 + ;"]).code(2);
    ovsup(&["eval", "import \"nosuch\" as x;"])
        .code(2)
        .stderr_has("<eval>:1:8:");
}

#[test]
fn a_broken_simulated_node_is_the_simulator_s_failure_not_a_bug() {
    let (dir, ovsup) = sim();
    ovsup(&["sim", "reset"]).code(0);
    std::fs::write(dir.path().join("state/sim/node-02.json"), "{oops").expect("break it");
    let ran = ovsup(&["--json", "eval", r#"query("node-02", "true")"#]).code(1);
    let e = ran.json_result()["error"].clone();
    assert_eq!(e["kind"], "simulator", "{e}");
    assert_eq!(e["node"], "node-02", "{e}");
    assert!(
        !e["message"].as_str().unwrap_or_default().contains("bug"),
        "{e}"
    );
}
