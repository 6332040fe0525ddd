//! `ovsup import-legacy`: the VM list left by `update-ovs.py` merged into the VM record, by the
//! library function of the `import_legacy_vm_record()` primitive, once.

use std::path::PathBuf;

use serde_json::json;

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::Ovsup;

fn legacy(c: &Cluster) -> PathBuf {
    c.state_dir().with_file_name("ovs-machine-state.json")
}

fn ovsup(c: &Cluster) -> Ovsup {
    c.ovsup()
        .env("OVSUP_LEGACY_VM_RECORD", &legacy(c).display().to_string())
}

on_both_backends!(import_legacy_merges_the_legacy_record_once);

fn import_legacy_merges_the_legacy_record_once(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let legacy = legacy(&c);
    std::fs::write(
        &legacy,
        r#"{"node-01": ["vm-0-web"], "node-02": ["vm-1-db"]}"#,
    )
    .expect("write the legacy record");
    // The VM primitives refuse, and say what to run.
    let refused = ovsup(&c).args(["start-vm"]).run().code(3);
    assert!(
        refused.stderr.contains("ovsup import-legacy"),
        "{}",
        refused.stderr
    );

    // A dry run only reads it.
    let dry = ovsup(&c).args(["--dry-run", "import-legacy"]).run().code(0);
    assert!(
        dry.stdout.contains("would import 2 VMs of 2 nodes"),
        "{}",
        dry.stdout
    );
    assert!(legacy.exists());

    let ran = ovsup(&c).args(["--json", "import-legacy"]).run().code(0);
    assert_eq!(
        ran.json_result()["value"],
        json!({"node-01": ["vm-0-web"], "node-02": ["vm-1-db"]})
    );
    assert!(!legacy.exists(), "the legacy file is renamed");
    let mut renamed = legacy.clone().into_os_string();
    renamed.push(".imported");
    assert!(PathBuf::from(renamed).exists());
    let record = c.eval_value(&[], "vm_record()");
    assert_eq!(
        record,
        json!({"node-01": ["vm-0-web"], "node-02": ["vm-1-db"]})
    );

    // Never twice; and the import is in the history, like a run.
    ovsup(&c)
        .args(["import-legacy"])
        .run()
        .code(0)
        .stdout_has("nothing to import");
    let runs = ovsup(&c)
        .args(["--json", "history"])
        .run()
        .code(0)
        .json_result()["value"]
        .clone();
    let imports: Vec<&serde_json::Value> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["runbook"] == "import-legacy")
        .collect();
    assert_eq!(imports.len(), 3, "{runs}");
    assert!(imports.iter().all(|r| r["status"] == "ok"), "{runs}");
}
