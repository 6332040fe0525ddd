//! A value marked `secret()` reaches the node it is sent to and nothing else: not the journal,
//! not the `--json` events, not the error of a failing command, not the dry-run printout.
//! The secret comes from a file on a node, as it would in a runbook (a literal in a script
//! would be shown with the source line of an error; `--set` values are journaled).

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};

const SECRET: &str = "hunter2-s3cr3t";

on_both_backends!(a_secret_reaches_the_node_and_nothing_else);

fn a_secret_reaches_the_node_and_nothing_else(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let put = format!(r#"write_file(nodes()[0], "/root/ovsup-secret", "{SECRET}")"#);
    c.ovsup().args(["eval", &put]).run().code(0);
    let pw = r#"let pw = secret(read_file(nodes()[0], "/root/ovsup-secret"));"#;
    // `virsh start` of a domain that does not exist fails, and virsh names it on stderr.
    let script = format!(r#"{pw} cmd(nodes()[0], ["virsh", "start", "vm-" + pw])"#);
    let ran = c.ovsup().args(["--json", "eval", &script]).run().code(1);
    let error = &ran.json_result()["error"];
    assert_eq!(error["kind"], "remote", "{error}");
    assert_eq!(error["command"], "virsh start 'vm-<secret>'", "{error}");
    assert!(
        error["stderr_tail"]
            .as_str()
            .unwrap_or_default()
            .contains("vm-<secret>"),
        "{error}"
    );
    let events = ran.json_events();
    assert!(
        events.iter().any(|e| e["event"] == "exec"),
        "{}",
        ran.stdout
    );
    assert!(
        !ran.stdout.contains(SECRET),
        "--json output: {}",
        ran.stdout
    );
    assert!(!ran.stderr.contains(SECRET), "stderr: {}", ran.stderr);
    // The node got the real text.
    let history = c.state("node-01").history;
    assert!(
        history.iter().any(|l| l.contains(&format!("vm-{SECRET}"))),
        "{history:?}"
    );
    // For people: the error, with the command and the stderr tail, shows the mark.
    let ran = c.ovsup().args(["eval", &script]).run().code(1);
    assert!(
        ran.stderr.contains("virsh start 'vm-<secret>'"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains(SECRET) && !ran.stdout.contains(SECRET),
        "{}",
        ran.stderr
    );
    // Shell text joined with a secret, the output a script gets back, a dry run.
    let shell = format!(
        r#"{pw} let r = try_sh(nodes(), "virsh start " + pw); r.values().map(|v| v.stderr)"#
    );
    let ran = c.ovsup().args(["--json", "eval", &shell]).run().code(0);
    assert!(ran.stdout.contains("<secret>"), "{}", ran.stdout);
    assert!(!ran.stdout.contains(SECRET), "{}", ran.stdout);
    let dry = format!(r#"{pw} cmd(nodes(), ["passwd", pw])"#);
    let ran = c.ovsup().args(["--dry-run", "eval", &dry]).run().code(0);
    assert!(ran.stderr.contains("passwd <secret>"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains(SECRET) && !ran.stdout.contains(SECRET),
        "{}",
        ran.stderr
    );
    // Every journal file, first and last lines included.
    let runs = c.state_dir().join("runs");
    let mut files = 0;
    for entry in std::fs::read_dir(&runs).expect("runs") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("journal");
        assert!(!text.contains(SECRET), "journal: {text}");
        files += 1;
    }
    assert_eq!(files, 5);
    assert!(
        c.journal()
            .iter()
            .any(|l| l["command"] == "passwd <secret>")
    );
}

#[test]
fn a_secret_cannot_become_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ovsup = |code: &str| {
        crate::support::ovsup::Ovsup::with_inventory(std::path::Path::new("sim:1"))
            .state_dir(&dir.path().join("state"))
            .args(["eval", code])
            .run()
    };
    // Interpolation would send the word `<secret>`: refused before anything runs.
    ovsup(r#"sh(nodes()[0], `echo ${secret("x")}`)"#)
        .code(1)
        .stderr_has("a secret() became text");
    ovsup(r#"let s = "a"; s += secret("x");"#)
        .code(1)
        .stderr_has("text = text + secret");
    ovsup(r#"shell_quote(["echo", secret("x")])"#)
        .code(1)
        .stderr_has("cannot become text");
    let ran = ovsup(r#"print(secret("x")); info("" + secret("x")); secret("x") + "y""#).code(0);
    assert!(
        !ran.stderr.contains("\"x\"") && ran.stderr.contains("<secret>"),
        "{}",
        ran.stderr
    );
}
