//! State directories of an older ovsup. Before environments had names, the default state
//! directory was keyed by the inventory file's stem — and every environment's inventory is
//! naturally called `inventory.toml`, so two environments could share one VM record. Such a
//! directory is never used for a named environment, and never silently left behind while it
//! holds something an operator needs: VMs stopped and not started again, or steps in
//! progress. Then the run is refused, saying how to move it (nothing is moved automatically:
//! only the operator knows which environment it belonged to).

use std::path::Path;

use super::steps::Steps;
use super::vm_record::VmRecord;
use crate::error::{Error, Result};

/// Refuse (exit 3) while the old-style state directory `<base>/<stem>` holds a VM record or
/// steps in progress and the environment's own directory `env_dir` has not been used yet.
pub fn check(base: &Path, stem: &str, env_dir: &Path, inventory: &Path) -> Result<()> {
    let legacy = base.join(stem);
    let marked = |d: &Path| d.join(super::environment::FILE_NAME).exists();
    if legacy == env_dir || marked(env_dir) || !legacy.is_dir() || marked(&legacy) {
        return Ok(());
    }
    let record = VmRecord::load(&VmRecord::path(&legacy))?;
    let steps = Steps::new(&legacy).read()?;
    if record.is_empty() && steps.is_empty() {
        return Ok(());
    }
    let mut holds = Vec::new();
    if !record.is_empty() {
        let count: usize = record.nodes().values().map(Vec::len).sum();
        let nodes: Vec<&str> = record.nodes().keys().map(String::as_str).collect();
        holds.push(format!(
            "a VM record of {count} VMs stopped and not started again (on {})",
            nodes.join(", ")
        ));
    }
    if !steps.is_empty() {
        let names: Vec<&str> = steps.keys().map(String::as_str).collect();
        holds.push(format!("steps in progress ({})", names.join(", ")));
    }
    Err(Error::Refused(format!(
        "an earlier ovsup kept state in {legacy}, keyed by the inventory's file name (which \
         other environments' inventories may share), and it holds {holds}. State directories \
         are now per environment. If it belongs to this environment (inventory {inv}), move \
         it: `mv {legacy} {new}`; if it belongs to another one, run that environment with \
         `--state-dir {legacy}` (start-vm, finish its steps) first",
        legacy = legacy.display(),
        holds = holds.join(" and "),
        inv = inventory.display(),
        new = env_dir.display(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_state_dir_with_vms_is_refused_until_moved() {
        let base = tempfile::tempdir().expect("tempdir");
        let legacy = base.path().join("inventory");
        let env_dir = base.path().join("be-conv-1");
        let inv = base.path().join("inventory.toml");
        // Nothing there, or nothing in it that matters: fine.
        check(base.path(), "inventory", &env_dir, &inv).expect("no old dir");
        std::fs::create_dir(&legacy).expect("mkdir");
        std::fs::create_dir(legacy.join("runs")).expect("mkdir runs");
        check(base.path(), "inventory", &env_dir, &inv).expect("only journals");
        let mut record = VmRecord::default();
        record.merge("cpu-01", &["vm-a", "vm-b"]);
        record.save(&VmRecord::path(&legacy)).expect("save");
        let e = check(base.path(), "inventory", &env_dir, &inv).expect_err("refused");
        assert_eq!(e.code(), crate::error::EXIT_REFUSED);
        let text = e.to_string();
        assert!(text.contains("2 VMs") && text.contains("cpu-01"), "{text}");
        assert!(
            text.contains(&format!("mv {} {}", legacy.display(), env_dir.display())),
            "{text}"
        );
        // Once moved, the new directory is the environment's.
        std::fs::rename(&legacy, &env_dir).expect("mv");
        super::super::environment::claim(&env_dir, "be-conv-1", None).expect("claim");
        check(base.path(), "inventory", &env_dir, &inv).expect("migrated");
    }
}
