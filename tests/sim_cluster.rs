//! The simulated cluster answers the same on both backends: in-process and over real sshd.

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};

on_both_backends!(
    answers_the_real_tools_commands,
    unknown_commands_fail_clearly,
);

fn answers_the_real_tools_commands(backend: Backend) {
    let c = Cluster::new(backend, 3);
    c.ovsup()
        .args(["eval", r#"sh(nodes(), "apt-get update")"#])
        .run()
        .code(0);
    let ran = c
        .ovsup()
        .args([
            "--json",
            "eval",
            r#"#{
            apt: query(nodes(), "apt-cache policy alba"),
            init: try_query(nodes(), "test -d /run/systemd/system"),
            vms: query(nodes(), "virsh list --name"),
            agent: try_query(nodes(), "fuser 4446/tcp"),
            clusters: query(nodes()[0], "ls /opt/OpenvStorage/config/arakoon/"),
        }"#,
        ])
        .run()
        .code(0);
    let v = &ran.json_result()["value"];
    // node-01: upstart + apt 1.0; node-02: systemd + apt 1.2.
    assert!(
        v["apt"]["node-01"]
            .as_str()
            .unwrap_or("")
            .contains("     0.9.18-1 0\n"),
        "{v}"
    );
    assert!(
        v["apt"]["node-02"]
            .as_str()
            .unwrap_or("")
            .contains(" *** 0.9.17-1 100\n"),
        "{v}"
    );
    assert_eq!(v["init"]["node-01"]["code"], 1, "{v}");
    assert_eq!(v["init"]["node-02"]["code"], 0, "{v}");
    assert!(
        v["vms"]["node-01"]
            .as_str()
            .unwrap_or("")
            .contains("vm-0-web\n"),
        "{v}"
    );
    assert_eq!(v["agent"]["node-03"]["code"], 0, "{v}");
    assert_eq!(
        v["clusters"], "mybackend-abm\nmybackend-nsm_0\novsdb\nvoldrv\n",
        "{v}"
    );
    // Controllers are excluded from nodes(), and were never sent a command.
    assert!(v["vms"].get("ovc_master").is_none(), "{v}");
    assert!(c.state("ovc_master").history.is_empty());
    // What a command changed, the next one (and the test) sees.
    for name in c.storage_names() {
        let alba = &c.state(&name).packages["alba"];
        assert_eq!(alba.candidate.as_deref(), Some("0.9.18-1"), "{name}");
    }
}

fn unknown_commands_fail_clearly(backend: Backend) {
    let c = Cluster::new(backend, 1);
    let ran = c
        .ovsup()
        .args(["eval", r#"sh(nodes(), "apt-get frobnicate")"#])
        .run()
        .code(1);
    ran.stderr_has("node-01")
        .stderr_has("exited with code 127")
        .stderr_has("not simulated");
}
