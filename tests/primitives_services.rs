//! Tests of the services primitives, on both backends.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};

/// Whether a command line a node received changes a job or a SysV service.
fn is_change(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["start" | "stop" | "restart", ..] => true,
        ["initctl", "start" | "stop" | "restart", ..] => true,
        ["systemctl", "start" | "stop" | "restart", ..] => true,
        [script, action] => script.starts_with("/etc/init.d/") && *action != "status",
        _ => false,
    }
}

/// The changing commands a node received after its first `since` commands.
fn changes(c: &Cluster, node: &str, since: usize) -> Vec<String> {
    c.state(node).history[since..]
        .iter()
        .filter(|l| is_change(l))
        .cloned()
        .collect()
}

fn history_lens(c: &Cluster) -> Vec<usize> {
    c.storage_names()
        .iter()
        .map(|n| c.state(n).history.len())
        .collect()
}

on_both_backends!(
    lists_services_by_prefix,
    restart_gives_new_pids,
    stop_and_start_are_idempotent,
    globs_matching_nothing_and_unknown_jobs,
    failing_start_names_the_node,
    dry_run_changes_nothing,
    sysv_memcached,
);

fn lists_services_by_prefix(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let v = c.eval_value(&[], "init_system(nodes())");
    assert_eq!(
        v,
        json!({"node-01": "upstart", "node-02": "systemd", "node-03": "upstart"})
    );
    let v = c.eval_value(&[], r#"services(nodes(), "ovs-arakoon-")"#);
    let arakoon = json!([
        "ovs-arakoon-mybackend-abm",
        "ovs-arakoon-mybackend-nsm_0",
        "ovs-arakoon-ovsdb",
        "ovs-arakoon-voldrv"
    ]);
    for node in c.storage_names() {
        assert_eq!(v[&node], arakoon, "{v}");
    }
    let v = c.eval_value(&[], r#"services("node-02", "alba-asd-")"#);
    let asds: Vec<String> = c
        .state("node-02")
        .jobs
        .keys()
        .filter(|j| j.starts_with("alba-asd-"))
        .cloned()
        .collect();
    assert_eq!(v, json!(asds));
    let v = c.eval_value(&[], r#"services("node-01", "ovs-nothing")"#);
    assert_eq!(v, json!([]));
}

fn restart_gives_new_pids(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let before: Vec<_> = c.storage_names().iter().map(|n| c.state(n).jobs).collect();
    let v = c.eval_value(
        &[],
        r#"service_restart(nodes(), ["ovs-arakoon-ovsdb", "alba-asd-*"])"#,
    );
    for (node, jobs_before) in c.storage_names().iter().zip(&before) {
        let changed = v[node].as_array().expect("array");
        assert_eq!(changed.len(), 3, "{v}");
        assert_eq!(changed[0], "ovs-arakoon-ovsdb", "{v}");
        let after = c.state(node).jobs;
        for job in changed {
            let job = job.as_str().expect("name");
            assert!(
                job == "ovs-arakoon-ovsdb" || job.starts_with("alba-asd-"),
                "{v}"
            );
            assert!(after[job].running);
            assert_ne!(after[job].pid, jobs_before[job].pid, "{node} {job}");
        }
        // Untouched.
        assert_eq!(
            after["ovs-arakoon-voldrv"].pid,
            jobs_before["ovs-arakoon-voldrv"].pid
        );
    }
    let v = c.eval_value(&[], r#"service_pid(nodes(), "ovs-arakoon-ovsdb")"#);
    for node in c.storage_names() {
        assert_eq!(
            v[&node],
            json!(c.state(&node).jobs["ovs-arakoon-ovsdb"].pid),
            "{v}"
        );
    }
}

fn stop_and_start_are_idempotent(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let v = c.eval_value(&[], r#"service_stop(nodes(), "ovs-webapp-api")"#);
    for node in c.storage_names() {
        assert_eq!(v[&node], json!(["ovs-webapp-api"]), "{v}");
        let job = &c.state(&node).jobs["ovs-webapp-api"];
        assert!(!job.running && job.pid == 0, "{node}");
    }
    let since = history_lens(&c);
    let v = c.eval_value(&[], r#"service_stop(nodes(), ["ovs-webapp-api.service"])"#);
    assert_eq!(v, json!({"node-01": [], "node-02": [], "node-03": []}));
    for (node, since) in c.storage_names().iter().zip(since) {
        assert_eq!(changes(&c, node, since), Vec::<String>::new(), "{node}");
    }
    let v = c.eval_value(&[], r#"service_pid("node-02", "ovs-webapp-api")"#);
    assert_eq!(v, Value::Null);

    // Restart of a stopped job starts it.
    let v = c.eval_value(&[], r#"service_restart("node-02", "ovs-webapp-api")"#);
    assert_eq!(v, json!(["ovs-webapp-api"]));
    assert!(c.state("node-02").jobs["ovs-webapp-api"].running);
    let v = c.eval_value(&[], r#"service_start(nodes(), "ovs-webapp-api")"#);
    assert_eq!(
        v,
        json!({"node-01": ["ovs-webapp-api"], "node-02": [], "node-03": ["ovs-webapp-api"]})
    );
    let since = history_lens(&c);
    let v = c.eval_value(&[], r#"service_start(nodes(), "ovs-webapp-api")"#);
    assert_eq!(v, json!({"node-01": [], "node-02": [], "node-03": []}));
    for (node, since) in c.storage_names().iter().zip(since) {
        assert!(c.state(node).jobs["ovs-webapp-api"].running);
        assert_eq!(changes(&c, node, since), Vec::<String>::new(), "{node}");
    }
}

fn globs_matching_nothing_and_unknown_jobs(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let v = c.eval_value(&[], r#"service_stop(nodes(), "ovs-nothing-*")"#);
    assert_eq!(v, json!({"node-01": [], "node-02": []}));
    let ran = c
        .ovsup()
        .args(["eval", r#"service_start(nodes(), "ovs-nope")"#])
        .run()
        .code(1);
    ran.stderr_has(r#"node-01: no service named "ovs-nope""#)
        .stderr_has(r#"node-02: no service named "ovs-nope""#);
    let ran = c
        .ovsup()
        .args(["eval", r#"service_pid("node-02", "ovs-nope")"#])
        .run()
        .code(1);
    ran.stderr_has(r#"node-02: no service named "ovs-nope""#);
}

fn failing_start_names_the_node(backend: Backend) {
    let c = Cluster::new(backend, 2);
    c.update("node-02", |s| {
        s.faults.failing_services = vec!["ovs-webapp-api".into()]
    });
    let ran = c
        .ovsup()
        .args(["eval", r#"service_restart("node-02", "ovs-webapp-api")"#])
        .run()
        .code(1);
    ran.stderr_has("node-02: `systemctl restart ovs-webapp-api.service` exited with code 1");
}

fn dry_run_changes_nothing(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let before: Vec<u32> = c
        .storage_names()
        .iter()
        .map(|n| c.state(n).jobs["ovs-webapp-api"].pid)
        .collect();
    let v = c.eval_value(&["--dry-run"], r#"service_stop(nodes(), "ovs-webapp-api")"#);
    assert_eq!(
        v,
        json!({"node-01": ["ovs-webapp-api"], "node-02": ["ovs-webapp-api"]})
    );
    let v = c.eval_value(
        &["--dry-run"],
        r#"service_restart(nodes(), "ovs-arakoon-*"); sysv(nodes(), "memcached", "stop")"#,
    );
    assert_eq!(v, json!({"node-01": true, "node-02": true}));
    for (node, pid) in c.storage_names().iter().zip(before) {
        let s = c.state(node);
        assert_eq!(s.jobs["ovs-webapp-api"].pid, pid);
        assert!(s.jobs["ovs-webapp-api"].running && s.memcached_running);
        assert_eq!(changes(&c, node, 0), Vec::<String>::new(), "{node}");
    }
}

fn sysv_memcached(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let v = c.eval_value(&[], r#"sysv(nodes(), "memcached", "stop")"#);
    assert_eq!(v, json!({"node-01": true, "node-02": true}));
    assert!(!c.state("node-01").memcached_running);
    let since = history_lens(&c);
    let v = c.eval_value(&[], r#"sysv(nodes(), "memcached", "stop")"#);
    assert_eq!(v, json!({"node-01": false, "node-02": false}));
    for (node, since) in c.storage_names().iter().zip(since) {
        assert_eq!(changes(&c, node, since), Vec::<String>::new(), "{node}");
    }
    let v = c.eval_value(&[], r#"[sysv("node-01", "memcached", "start"), sysv("node-01", "memcached", "start"), sysv("node-01", "memcached", "restart")]"#);
    assert_eq!(v, json!([true, false, true]));
    assert!(c.state("node-01").memcached_running);
    let ran = c
        .ovsup()
        .args(["eval", r#"sysv("node-01", "memcached", "reload")"#])
        .run()
        .code(1);
    ran.stderr_has("sysv: the action must be");
}
