//! Tests of the apt primitives, on both backends.

use serde_json::json;

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};

/// The `apt-get install` lines a node received after the first `since` commands.
fn installs(c: &Cluster, node: &str, since: usize) -> Vec<String> {
    c.state(node).history[since..]
        .iter()
        .filter(|l| l.contains("apt-get install"))
        .cloned()
        .collect()
}

on_both_backends!(
    versions_install_and_idempotence,
    dry_run_changes_nothing,
    held_lock_names_the_node,
    failing_install_and_unknown_package,
    download_then_install_fetches_once,
);

fn versions_install_and_idempotence(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let v = c.eval_value(&[], "apt_update(nodes())");
    assert_eq!(v, json!({"node-01": [], "node-02": [], "node-03": []}));
    let v = c.eval_value(
        &[],
        r#"apt_versions(nodes(), ["alba", "openvstorage*", "nosuch"])"#,
    );
    for node in c.storage_names() {
        let n = &v[&node];
        assert_eq!(
            n["alba"],
            json!({"installed": "0.9.17-1", "candidate": "0.9.18-1", "status": "installed", "pending": true}),
            "{v}"
        );
        assert_eq!(
            n["nosuch"],
            json!({"installed": null, "candidate": null, "status": "not-installed", "pending": false}),
            "{v}"
        );
        assert_eq!(
            n["openvstorage-core"]["candidate"], "2.7.3-rev.3802.9a4bd21-1",
            "{v}"
        );
        assert_eq!(n.as_object().map(|m| m.len()), Some(6), "{v}");
    }
    // One node: the value itself, not a map by node.
    let v = c.eval_value(&[], r#"apt_versions("node-02", "alba")"#);
    assert_eq!(
        v,
        json!({"alba": {"installed": "0.9.17-1", "candidate": "0.9.18-1", "status": "installed", "pending": true}})
    );

    let v = c.eval_value(&[], r#"apt_install(nodes(), ["alba", "openvstorag*"])"#);
    for node in c.storage_names() {
        assert_eq!(v[&node]["changed"], true, "{v}");
        assert_eq!(v[&node]["installed"]["alba"], "0.9.18-1", "{v}");
        assert_eq!(
            v[&node]["installed"]["openvstorage-webapps"], "2.7.3-rev.3802.9a4bd21-1",
            "{v}"
        );
        let s = c.state(&node);
        assert_eq!(s.packages["alba"].installed.as_deref(), Some("0.9.18-1"));
        assert_eq!(
            s.packages["openvstorage-core"].installed.as_deref(),
            Some("2.7.3-rev.3802.9a4bd21-1")
        );
        // Untouched: not asked for.
        assert_eq!(s.packages["arakoon"].installed.as_deref(), Some("1.9.17-1"));
        // --force-yes only where apt is older than 1.1 (node-01 runs apt 1.0).
        let lines = installs(&c, &node, 0);
        assert_eq!(lines.len(), 1, "{node}: {lines:?}");
        assert_eq!(
            lines[0].contains("--force-yes"),
            node == "node-01",
            "{node}: {lines:?}"
        );
    }

    // A second run changes nothing and runs no install.
    let before: Vec<usize> = c
        .storage_names()
        .iter()
        .map(|n| c.state(n).history.len())
        .collect();
    let v = c.eval_value(&[], r#"apt_install(nodes(), ["alba", "openvstorag*"])"#);
    for (node, since) in c.storage_names().iter().zip(before) {
        assert_eq!(v[node], json!({"changed": false, "installed": {}}), "{v}");
        assert!(installs(&c, node, since).is_empty());
    }
}

fn dry_run_changes_nothing(backend: Backend) {
    let c = Cluster::new(backend, 2);
    // The update is only printed, so the lists still know no newer version.
    let v = c.eval_value(
        &["--dry-run"],
        r#"apt_update(nodes()); apt_versions(nodes(), "alba")"#,
    );
    assert_eq!(v["node-01"]["alba"]["candidate"], "0.9.17-1", "{v}");
    c.eval_value(&[], "apt_update(nodes())");
    let v = c.eval_value(&["--dry-run"], r#"apt_install(nodes(), "alba")"#);
    assert_eq!(
        v["node-02"],
        json!({"changed": true, "installed": {"alba": "0.9.18-1"}}),
        "{v}"
    );
    for node in c.storage_names() {
        assert_eq!(
            c.state(&node).packages["alba"].installed.as_deref(),
            Some("0.9.17-1")
        );
        assert!(installs(&c, &node, 0).is_empty());
    }
}

fn held_lock_names_the_node(backend: Backend) {
    let c = Cluster::new(backend, 2);
    c.eval_value(&[], "apt_update(nodes())");
    c.update("node-01", |s| s.faults.apt_lock = true);
    // A lock held past the wait: the node is named with the lock and what apt said.
    let ran = c
        .ovsup()
        .args(["--apt-lock-wait", "1", "eval", "apt_update(nodes())"])
        .run()
        .code(1);
    ran.stderr_has("node-01: /var/lib/apt/lists/lock is still held after 1 s")
        .stderr_has("`apt-get update` did not run")
        .stderr_has("E: Could not get lock /var/lib/apt/lists/lock")
        .stderr_lacks("node-02: `");
    let ran = c
        .ovsup()
        .args([
            "--apt-lock-wait",
            "1",
            "eval",
            r#"apt_install(["node-01"], "alba")"#,
        ])
        .run()
        .code(1);
    ran.stderr_has("node-01: /var/lib/dpkg/lock is still held after 1 s")
        .stderr_has("`DEBIAN_FRONTEND=noninteractive apt-get install")
        .stderr_has("E: Could not get lock /var/lib/dpkg/lock");
    assert_eq!(
        c.state("node-01").packages["alba"].installed.as_deref(),
        Some("0.9.17-1")
    );
}

fn failing_install_and_unknown_package(backend: Backend) {
    let c = Cluster::new(backend, 2);
    c.eval_value(&[], "apt_update(nodes())");
    c.update("node-02", |s| {
        s.faults.failing_installs = vec!["alba".into()]
    });
    let ran = c
        .ovsup()
        .args(["eval", r#"apt_install("node-02", "alba")"#])
        .run()
        .code(1);
    ran.stderr_has("node-02: `DEBIAN_FRONTEND=noninteractive apt-get install")
        .stderr_has("E: Sub-process /usr/bin/dpkg returned an error code (1)");
    let ran = c
        .ovsup()
        .args(["eval", r#"apt_install("node-01", ["alba", "nosuch"])"#])
        .run()
        .code(1);
    ran.stderr_has(r#"node-01: apt knows no package "nosuch""#);
    assert!(installs(&c, "node-01", 0).is_empty());
}

fn download_then_install_fetches_once(backend: Backend) {
    let c = Cluster::new(backend, 2);
    c.eval_value(&[], "apt_update(nodes())");
    let v = c.eval_value(&[], r#"apt_download(nodes(), "alba")"#);
    assert_eq!(
        v["node-01"],
        json!({"changed": true, "downloaded": {"alba": "0.9.18-1"}}),
        "{v}"
    );
    for node in c.storage_names() {
        let alba = &c.state(&node).packages["alba"];
        assert_eq!(
            (alba.installed.as_deref(), alba.downloads),
            (Some("0.9.17-1"), 1)
        );
    }
    c.eval_value(&[], r#"apt_install(nodes(), "alba")"#);
    for node in c.storage_names() {
        let alba = &c.state(&node).packages["alba"];
        assert_eq!(
            (alba.installed.as_deref(), alba.downloads),
            (Some("0.9.18-1"), 1)
        );
    }
    // Nothing pending: nothing downloaded.
    let v = c.eval_value(&[], r#"apt_download("node-01", "alba")"#);
    assert_eq!(v, json!({"changed": false, "downloaded": {}}));
}
