//! Tests of the vms primitives (`running_vms`, `stop_vms`, `start_vms`, `vm_record`,
//! `import_legacy_vm_record`), on both backends, through `ovsup --json eval`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ovsup::sim::state::{DomState, now_ms};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::{Ovsup, Ran};

/// A legacy record path private to the test (absent unless the test writes it), so that a
/// `/tmp/ovs-machine-state.json` on the machine running the tests changes nothing.
fn legacy(c: &Cluster) -> PathBuf {
    c.state_dir()
        .parent()
        .expect("state dir has a parent")
        .join("ovs-machine-state.json")
}

fn ovsup(c: &Cluster) -> Ovsup {
    c.ovsup()
        .env("OVSUP_LEGACY_VM_RECORD", &legacy(c).display().to_string())
}

fn eval(c: &Cluster, script: &str) -> Ran {
    ovsup(c).args(["--json", "eval", script]).run()
}

fn value(ran: &Ran) -> Value {
    ran.json_result()["value"].clone()
}

fn record_path(c: &Cluster) -> PathBuf {
    c.state_dir().join("vm-record.json")
}

fn record_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the VM record"))
        .expect("the VM record is JSON")
}

/// The domains of a node, by name, in their current state.
fn domains(c: &Cluster, node: &str) -> BTreeMap<String, DomState> {
    let s = c.state(node);
    let now = now_ms();
    s.domains
        .keys()
        .map(|name| (name.clone(), s.domain_state(name, now).expect("state")))
        .collect()
}

fn running_on(c: &Cluster, node: &str) -> Vec<String> {
    domains(c, node)
        .into_iter()
        .filter(|(_, s)| *s == DomState::Running)
        .map(|(n, _)| n)
        .collect()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), sorted(v))).collect()),
        Value::Array(a) => {
            let mut items: Vec<String> = a
                .iter()
                .map(|x| x.as_str().expect("a name").to_string())
                .collect();
            items.sort();
            json!(items)
        }
        other => other.clone(),
    }
}

on_both_backends!(
    stop_then_start_brings_back_exactly_what_ran,
    a_stuck_vm_fails_by_the_deadline_and_force_powers_it_off,
    a_second_stop_merges_into_the_record,
    dry_run_changes_nothing,
    a_legacy_record_is_refused_until_imported,
    a_malformed_record_is_an_error_and_is_kept,
    ctrl_c_ends_the_wait,
);

fn stop_then_start_brings_back_exactly_what_ran(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let before = value(&eval(&c, "running_vms(nodes())").code(0));
    assert_eq!(
        sorted(&before["node-01"]),
        json!(["vm-0 o'brien test", "vm-0-db", "vm-0-web"]),
        "{before}"
    );
    assert_eq!(
        value(&eval(&c, "running_vms(nodes()[1])").code(0)),
        before["node-02"]
    );

    let stopped = value(&eval(&c, "stop_vms(nodes())").code(0));
    assert_eq!(sorted(&stopped), sorted(&before));
    for node in c.storage_names() {
        assert!(
            running_on(&c, &node).is_empty(),
            "{node}: {:?}",
            domains(&c, &node)
        );
    }
    // The record holds them between the two, in the legacy format.
    assert_eq!(sorted(&record_file(&record_path(&c))), sorted(&before));
    assert_eq!(
        sorted(&value(&eval(&c, "vm_record()").code(0))),
        sorted(&before)
    );

    let started = value(&eval(&c, "start_vms()").code(0));
    assert_eq!(sorted(&started), sorted(&before));
    assert!(
        !record_path(&c).exists(),
        "the record is removed once empty"
    );
    assert_eq!(value(&eval(&c, "vm_record()").code(0)), json!({}));
    for node in c.storage_names() {
        let expected: Vec<String> = before[node.as_str()]
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_str().expect("name").to_string())
            .collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(running_on(&c, &node), expected, "{node}");
    }
    // The VM that was off before stays off.
    assert_eq!(domains(&c, "node-01")["vm-0-old"], DomState::ShutOff);
    // A start with nothing recorded does nothing.
    assert_eq!(value(&eval(&c, "start_vms()").code(0)), json!({}));
}

fn a_stuck_vm_fails_by_the_deadline_and_force_powers_it_off(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let before = value(&eval(&c, "running_vms(nodes())").code(0));
    c.update("node-02", |s| s.faults.stuck_vms = vec!["vm-1-db".into()]);
    let began = Instant::now();
    let ran = eval(&c, "stop_vms(nodes(), #{timeout: 3})").code(1);
    let took = began.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    ran.json_error_has("node-02")
        .json_error_has("vm-1-db")
        .json_error_lacks("node-01:");
    // No power-off without force; every VM stays recorded.
    assert_eq!(domains(&c, "node-02")["vm-1-db"], DomState::Running);
    assert_eq!(domains(&c, "node-02")["vm-1-web"], DomState::ShutOff);
    assert_eq!(sorted(&record_file(&record_path(&c))), sorted(&before));

    let forced = value(&eval(&c, "stop_vms(nodes(), #{timeout: 2, force: true})").code(0));
    assert_eq!(
        forced,
        json!({"node-01": [], "node-02": ["vm-1-db"], "node-03": []})
    );
    assert_eq!(domains(&c, "node-02")["vm-1-db"], DomState::ShutOff);
    assert!(
        c.state("node-02")
            .history
            .iter()
            .any(|l| l == "virsh destroy vm-1-db")
    );
    assert_eq!(sorted(&record_file(&record_path(&c))), sorted(&before));

    let started = value(&eval(&c, "start_vms()").code(0));
    assert_eq!(sorted(&started), sorted(&before));
    assert!(!record_path(&c).exists());
}

fn a_second_stop_merges_into_the_record(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let first = value(&eval(&c, "stop_vms(nodes()[0])").code(0));
    assert_eq!(
        sorted(&first),
        json!(["vm-0 o'brien test", "vm-0-db", "vm-0-web"])
    );
    // Someone starts a VM that was off; the next stop records it too, keeping the rest.
    eval(&c, r#"cmd(nodes()[0], ["virsh", "start", "vm-0-old"])"#).code(0);
    let second = value(&eval(&c, "stop_vms(nodes())").code(0));
    assert_eq!(sorted(&second["node-01"]), json!(["vm-0-old"]));
    assert_eq!(sorted(&second["node-02"]), json!(["vm-1-db", "vm-1-web"]));
    let record = record_file(&record_path(&c));
    assert_eq!(
        sorted(&record),
        json!({
            "node-01": ["vm-0 o'brien test", "vm-0-db", "vm-0-old", "vm-0-web"],
            "node-02": ["vm-1-db", "vm-1-web"],
        })
    );
    // start_vms(t) restricts to some nodes; the others stay recorded.
    let one = value(&eval(&c, "start_vms(nodes()[1])").code(0));
    assert_eq!(sorted(&one), json!(["vm-1-db", "vm-1-web"]));
    assert_eq!(
        sorted(&record_file(&record_path(&c))),
        json!({"node-01": ["vm-0 o'brien test", "vm-0-db", "vm-0-old", "vm-0-web"]})
    );
    let rest = value(&eval(&c, "start_vms()").code(0));
    assert_eq!(
        sorted(&rest),
        json!({"node-01": ["vm-0 o'brien test", "vm-0-db", "vm-0-old", "vm-0-web"]})
    );
    assert!(!record_path(&c).exists());
    assert_eq!(running_on(&c, "node-01").len(), 4);
}

fn dry_run_changes_nothing(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let before: Vec<_> = c.storage_names().iter().map(|n| domains(&c, n)).collect();
    let ran = ovsup(&c)
        .args(["--dry-run", "--json", "eval", "stop_vms(nodes())"])
        .run()
        .code(0);
    assert_eq!(
        sorted(&value(&ran)),
        json!({
            "node-01": ["vm-0 o'brien test", "vm-0-db", "vm-0-web"],
            "node-02": ["vm-1-db", "vm-1-web"],
        })
    );
    let printed: Vec<Value> = ran
        .json_events()
        .into_iter()
        .filter(|e| e["event"] == "done" && e["dry_run"] == true)
        .collect();
    assert_eq!(printed.len(), 5, "{printed:?}");
    assert!(
        printed
            .iter()
            .any(|e| shlex::split(e["command"].as_str().unwrap_or_default())
                == Some(vec![
                    "virsh".into(),
                    "shutdown".into(),
                    "vm-0 o'brien test".into()
                ])),
        "{printed:?}"
    );
    assert!(!record_path(&c).exists());
    let after: Vec<_> = c.storage_names().iter().map(|n| domains(&c, n)).collect();
    assert_eq!(before, after);
    for node in c.storage_names() {
        let history = c.state(&node).history;
        assert!(
            !history.iter().any(|l| l.contains("shutdown")),
            "{history:?}"
        );
    }

    // A dry-run start leaves the record as it is.
    eval(&c, "stop_vms(nodes())").code(0);
    let recorded = record_file(&record_path(&c));
    ovsup(&c)
        .args(["--dry-run", "eval", "start_vms()"])
        .run()
        .code(0);
    assert_eq!(record_file(&record_path(&c)), recorded);
    assert!(running_on(&c, "node-01").is_empty());
}

fn a_legacy_record_is_refused_until_imported(backend: Backend) {
    let c = Cluster::new(backend, 2);
    // As update-ovs.py left it: vm-0-web stopped and listed in /tmp.
    eval(&c, r#"cmd(nodes()[0], ["virsh", "destroy", "vm-0-web"])"#).code(0);
    let legacy = legacy(&c);
    std::fs::write(&legacy, r#"{"node-01": ["vm-0-web"]}"#).expect("write legacy record");
    for script in ["vm_record()", "start_vms()", "stop_vms(nodes())"] {
        eval(&c, script)
            .code(3)
            .json_error_has("import_legacy_vm_record()")
            .json_error_has(&legacy.display().to_string());
    }
    // Nothing was stopped by the refused stop_vms.
    assert_eq!(running_on(&c, "node-02").len(), 2);

    let imported = value(&eval(&c, "import_legacy_vm_record()").code(0));
    assert_eq!(imported, json!({"node-01": ["vm-0-web"]}));
    assert!(!legacy.exists());
    let mut renamed = legacy.clone().into_os_string();
    renamed.push(".imported");
    assert!(PathBuf::from(renamed).exists());
    assert_eq!(
        value(&eval(&c, "vm_record()").code(0)),
        json!({"node-01": ["vm-0-web"]})
    );
    // Never imported twice.
    assert_eq!(
        value(&eval(&c, "import_legacy_vm_record()").code(0)),
        json!({})
    );

    let started = value(&eval(&c, "start_vms()").code(0));
    assert_eq!(started, json!({"node-01": ["vm-0-web"]}));
    assert_eq!(domains(&c, "node-01")["vm-0-web"], DomState::Running);
    assert!(!record_path(&c).exists());
}

fn a_malformed_record_is_an_error_and_is_kept(backend: Backend) {
    let c = Cluster::new(backend, 1);
    ovsup::state::ensure_dir(&c.state_dir()).expect("state dir");
    std::fs::write(record_path(&c), "{\"node-01\": \"vm-0-web\"}").expect("write");
    eval(&c, "stop_vms(nodes())")
        .code(1)
        .json_error_has("vm-record.json");
    assert_eq!(running_on(&c, "node-01").len(), 3);
    assert_eq!(
        std::fs::read_to_string(record_path(&c)).expect("read"),
        "{\"node-01\": \"vm-0-web\"}"
    );
}

fn ctrl_c_ends_the_wait(backend: Backend) {
    let c = Cluster::new(backend, 1);
    c.update("node-01", |s| s.faults.stuck_vms = vec!["vm-0-db".into()]);
    let running = ovsup(&c)
        .args(["eval", "stop_vms(nodes(), #{timeout: 600})"])
        .spawn();
    std::thread::sleep(Duration::from_millis(2500));
    let sent = Instant::now();
    running.interrupt();
    running.wait().code(130);
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?}",
        sent.elapsed()
    );
    // The stuck VM is still recorded (and running).
    let record = record_file(&record_path(&c));
    assert!(
        record["node-01"]
            .as_array()
            .expect("array")
            .contains(&json!("vm-0-db"))
    );
    assert_eq!(domains(&c, "node-01")["vm-0-db"], DomState::Running);
}
