//! The command line around the runbooks: list, show, edit, site overrides, legacy flags that
//! conflict with subcommands, and the built-in simulated cluster's own subcommands.

use crate::support::ovsup::Ovsup;

fn sim(dir: &std::path::Path) -> Ovsup {
    Ovsup::with_inventory(std::path::Path::new("sim")).state_dir(&dir.join("state"))
}

#[test]
fn list_show_and_edit_with_a_site_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site-runbooks");
    let listed = sim(dir.path())
        .args(["--runbook-dir", site.to_str().expect("utf8"), "list"])
        .run()
        .code(0);
    for name in [
        "alba",
        "arakoon",
        "check",
        "framework",
        "postprocess",
        "preprocess",
        "start-vm",
        "stop-vm",
        "sync",
        "update",
        "volumedriver",
    ] {
        listed.stdout_has_line(
            &format!("starting with {name:?}, ending with \"[shipped]\""),
            |l| l.starts_with(name) && l.ends_with("[shipped]"),
        );
    }
    sim(dir.path())
        .args(["show", "check"])
        .run()
        .code(0)
        .stdout_starts_with("//! Versions on every node");

    // edit copies the shipped runbook into the site directory; it then overrides the shipped one.
    let site_arg = site.to_str().expect("utf8");
    sim(dir.path())
        .args(["--runbook-dir", site_arg, "edit", "update"])
        .run()
        .code(0)
        .stdout_has("update.rhai");
    let copy = site.join("update.rhai");
    assert!(copy.is_file());
    std::fs::write(&copy, "//! The site's own update.\n\"site update ran\"\n")
        .expect("edit the copy");
    let listed = sim(dir.path())
        .args(["--runbook-dir", site_arg, "list"])
        .run()
        .code(0);
    let line = listed.stdout_line("update");
    assert!(
        line.contains("The site's own update.") && line.contains(&copy.display().to_string()),
        "{line}"
    );
    let ran = sim(dir.path())
        .args(["--runbook-dir", site_arg, "--json", "update"])
        .run()
        .code(0);
    assert_eq!(ran.json_result()["value"], "site update ran");
    // A second edit never overwrites the operator's copy.
    sim(dir.path())
        .args(["--runbook-dir", site_arg, "edit", "update"])
        .run()
        .code(2)
        .stderr_has("exists already");
    assert!(
        std::fs::read_to_string(&copy)
            .expect("copy")
            .contains("site's own")
    );
    sim(dir.path())
        .args(["show", "nope"])
        .run()
        .code(2)
        .stderr_has("no runbook named");
}

#[test]
fn legacy_flags_and_subcommands_do_not_mix_and_nothing_to_do_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    sim(dir.path())
        .args(["-c", "update"])
        .run()
        .code(2)
        .stderr_has("either a subcommand or legacy flags");
    sim(dir.path()).run().code(2).stderr_has("nothing to do");
    // `-v` is the legacy --volumedriver, as in update-ovs.py; verbose is --verbose.
    sim(dir.path())
        .args(["--help"])
        .run()
        .code(0)
        .stdout_has("-v, --volumedriver")
        .stdout_has("-k, --skip-vm")
        .stdout_has("--skip");
}

#[test]
fn the_simulated_cluster_can_be_reset_shown_and_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    sim(dir.path())
        .args(["sim", "show", "node-02"])
        .run()
        .code(0)
        .stdout_has("node-02 (Systemd, apt 1.2)");
    sim(dir.path())
        .args(["sim", "fault", "node-02", "apt_lock", "true"])
        .run()
        .code(0);
    sim(dir.path())
        .args(["update"])
        .run()
        .code(1)
        .stderr_has("node-02")
        .stderr_has("Could not get lock");
    sim(dir.path())
        .args(["sim", "fault", "node-02", "no_such_knob", "1"])
        .run()
        .code(2);
    sim(dir.path()).args(["sim", "reset"]).run().code(0);
    sim(dir.path()).args(["update"]).run().code(0);
    // sim:N sizes the cluster; `sim` subcommands refuse a real inventory.
    let ran = Ovsup::with_inventory(std::path::Path::new("sim:5"))
        .state_dir(&dir.path().join("five"))
        .args(["--json", "eval", "nodes().len()"])
        .run()
        .code(0);
    assert_eq!(ran.json_result()["value"], 5);
    Ovsup::with_inventory(std::path::Path::new("sim:0"))
        .args(["nodes"])
        .run()
        .code(2)
        .stderr_has("sim:N");
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, "[nodes.a]\nhost = \"127.0.0.1\"\n").expect("inventory");
    Ovsup::with_inventory(&inv)
        .args(["sim", "show"])
        .run()
        .code(2)
        .stderr_has("-i sim");
}
