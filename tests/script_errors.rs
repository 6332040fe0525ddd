//! Bad input gets a clear error: runbook syntax and runtime errors with file:line:col, a
//! malformed inventory with file:line:col, and the documented exit codes.

use crate::support::ovsup::{Ovsup, Ran};

fn inventory(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("inventory.toml");
    std::fs::write(&path, text).expect("write inventory");
    path
}

fn ovsup(dir: &std::path::Path, inv: &std::path::Path, args: &[&str]) -> Ran {
    Ovsup::with_inventory(inv)
        .state_dir(&dir.join("state"))
        .args(args)
        .run()
}

const ONE_NODE: &str = "[nodes.n1]\nhost = \"127.0.0.1\"\n";

#[test]
fn a_runbook_syntax_error_names_file_line_and_column_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(dir.path(), ONE_NODE);
    let book = dir.path().join("broken.rhai");
    std::fs::write(&book, "let a = 1;\nlet b = (a + ;\n").expect("write runbook");
    let ran = ovsup(dir.path(), &inv, &["run", book.to_str().expect("utf8")]).code(2);
    let expected = format!("{}:2:14:", book.display());
    // The source line is shown.
    ran.stderr_has(&expected).stderr_has("let b = (a + ;");
}

#[test]
fn a_runtime_error_in_a_module_points_into_the_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(dir.path(), ONE_NODE);
    let lib = dir.path().join("stdlib");
    std::fs::create_dir(&lib).expect("mkdir");
    std::fs::write(
        lib.join("site.rhai"),
        "fn boom() {\n    fail(\"from the module\");\n}\n",
    )
    .expect("write module");
    let ran = ovsup(
        dir.path(),
        &inv,
        &["eval", "import \"site\" as s;\ns::boom()"],
    )
    .code(1);
    let expected = format!("{}:2:5: from the module", lib.join("site.rhai").display());
    ran.stderr_has(&expected);
}

#[test]
fn imports_are_confined_and_eval_is_disabled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(dir.path(), ONE_NODE);
    ovsup(
        dir.path(),
        &inv,
        &["eval", "import \"../../etc/passwd\" as p;"],
    )
    .code(2)
    .stderr_has("<eval>:1:8:");
    ovsup(dir.path(), &inv, &["eval", "eval(\"1\")"])
        .code(2)
        .stderr_has("eval");
    // The shipped stdlib is importable.
    ovsup(
        dir.path(),
        &inv,
        &["eval", "import \"components\" as c; c::packages(\"alba\")"],
    )
    .code(0)
    .stdout_has("alba");
}

#[test]
fn runaway_scripts_are_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(dir.path(), ONE_NODE);
    ovsup(dir.path(), &inv, &["eval", "loop {}"])
        .code(1)
        .stderr_has("operations");
    ovsup(dir.path(), &inv, &["eval", "fn f(x) { f(x) } f(1)"])
        .code(1)
        .stderr_has("<eval>:1:");
}

#[test]
fn a_malformed_inventory_names_file_line_and_column_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(
        dir.path(),
        "[defaults]\nport = 22\n[nodes.n1]\nhost = 10.0.0.1\n",
    );
    let ran = ovsup(dir.path(), &inv, &["nodes"]).code(2);
    ran.stderr_has(&format!("{}:4:", inv.display()));
    let inv = inventory(
        dir.path(),
        "[nodes.n1]\nhost = \"-oProxyCommand=touch /tmp/x\"\n",
    );
    let ran = ovsup(dir.path(), &inv, &["nodes"]).code(2);
    ran.stderr_has(&format!("{}:2:8:", inv.display()));
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(dir.path(), ONE_NODE);
    ovsup(dir.path(), &inv, &["frobnicate"]).code(2);
    ovsup(dir.path(), &inv, &["run", "no-such-runbook"])
        .code(2)
        .stderr_has("no runbook named");
    ovsup(dir.path(), &inv, &["eval", "1", "--set", "novalue"]).code(2);
    ovsup(dir.path(), &inv, &["--help"])
        .code(0)
        .stdout_has("130  interrupted");
    Ovsup::with_inventory(&dir.path().join("missing.toml"))
        .args(["nodes"])
        .run()
        .code(1)
        .stderr_has("missing.toml");
}

#[test]
fn opts_and_the_json_result_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory(dir.path(), ONE_NODE);
    let ran = ovsup(
        dir.path(),
        &inv,
        &[
            "--json",
            "eval",
            "#{n: opts.count + 1, s: opts.name, b: opts.flag}",
            "--set",
            "count=41",
            "--set",
            "name=x y",
            "--set",
            "flag=true",
        ],
    )
    .code(0);
    let r = ran.json_result();
    assert_eq!(r["event"], "result");
    assert_eq!(r["ok"], true);
    assert_eq!(
        r["value"],
        serde_json::json!({"n": 42, "s": "x y", "b": true})
    );
    let ran = ovsup(
        dir.path(),
        &inv,
        &["--json", "eval", "refuse(\"node is online\")"],
    )
    .code(3);
    let r = ran.json_result();
    assert_eq!(r["ok"], false);
    assert_eq!(r["code"], 3);
}
