//! The VM record: which VMs `stop_vms` shut down on which node, so that `start_vms` brings
//! back exactly those, even after a crash or a reboot of the machine running ovsup.
//!
//! It replaces the legacy `/tmp/ovs-machine-state.json` and keeps its format,
//! `{"<node>": ["<vm>", …]}`, in `<state-dir>/vm-record.json`. It is written atomically (temp
//! file, fsync, rename, fsync of the directory, by `atomic-write-file`), so a crash leaves the
//! old or the new record, never a torn one. A missing file is an empty record; a malformed one
//! is an error naming the file, never silently replaced. The file is removed when the record
//! becomes empty (the legacy script never cleared its list).
//!
//! A legacy file left by `update-ovs.py` is never ignored: while it holds VMs, the VM
//! primitives refuse until the operator imports it ([`import_legacy`]), which merges it into
//! the record and renames it to `….imported` so that it is never imported twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The record's file name inside the state directory.
pub const FILE_NAME: &str = "vm-record.json";

/// Where the legacy `update-ovs.py` kept its VM list.
pub const LEGACY_PATH: &str = "/tmp/ovs-machine-state.json";

/// Environment variable overriding [`LEGACY_PATH`] (for tests and unusual setups).
pub const LEGACY_ENV: &str = "OVSUP_LEGACY_VM_RECORD";

/// The VMs stopped by ovsup and not yet started again, by node, in the order recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct VmRecord {
    nodes: BTreeMap<String, Vec<String>>,
}

impl VmRecord {
    /// The record file of a state directory.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// Read a record file; a missing file is an empty record, anything unreadable or not in
    /// the `{"node": ["vm", …]}` format is an error naming the file.
    pub fn load(path: &Path) -> Result<VmRecord> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VmRecord::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut record: VmRecord = serde_json::from_str(&text).map_err(|e| {
            Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "not a VM record ({e}); expected {{\"<node>\": [\"<vm>\", …]}}: \
                         fix or move the file away by hand, it is never overwritten"
                    ),
                ),
            )
        })?;
        record.nodes.retain(|_, vms| !vms.is_empty());
        Ok(record)
    }

    /// Write the record to `path` atomically (temp file, fsync, rename, fsync the directory);
    /// an empty record removes the file instead.
    pub fn save(&self, path: &Path) -> Result<()> {
        if self.is_empty() {
            match std::fs::remove_file(path) {
                Ok(()) => return sync_dir(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let mut text = serde_json::to_string_pretty(&self.nodes)
            .map_err(|e| Error::Internal(format!("serializing the VM record: {e}")))?;
        text.push('\n');
        super::write_private(path, text.as_bytes())
    }

    /// True when no VM is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.values().all(Vec::is_empty)
    }

    /// The recorded VMs of every node.
    pub fn nodes(&self) -> &BTreeMap<String, Vec<String>> {
        &self.nodes
    }

    /// The recorded VMs of one node (empty when none).
    pub fn vms(&self, node: &str) -> &[String] {
        self.nodes.get(node).map_or(&[], Vec::as_slice)
    }

    /// Add VMs to a node's entry, keeping what is there (never overwriting) and skipping
    /// names already recorded. Returns how many were new.
    pub fn merge<S: AsRef<str>>(&mut self, node: &str, vms: &[S]) -> usize {
        if vms.is_empty() {
            return 0;
        }
        let entry = self.nodes.entry(node.to_string()).or_default();
        let mut added = 0;
        for vm in vms {
            let vm = vm.as_ref();
            if !entry.iter().any(|v| v == vm) {
                entry.push(vm.to_string());
                added += 1;
            }
        }
        added
    }

    /// Add every VM of `other`.
    pub fn merge_record(&mut self, other: &VmRecord) -> usize {
        other
            .nodes
            .iter()
            .map(|(node, vms)| self.merge(node, vms))
            .sum()
    }

    /// Remove one VM; a node left without VMs disappears. Returns whether it was recorded.
    pub fn remove(&mut self, node: &str, vm: &str) -> bool {
        let Some(vms) = self.nodes.get_mut(node) else {
            return false;
        };
        let before = vms.len();
        vms.retain(|v| v != vm);
        let removed = vms.len() != before;
        if vms.is_empty() {
            self.nodes.remove(node);
        }
        removed
    }
}

/// fsync the directory holding `path`, so that a removal survives a crash.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The legacy record's path: `$OVSUP_LEGACY_VM_RECORD`, else `/tmp/ovs-machine-state.json`.
pub fn legacy_path() -> PathBuf {
    std::env::var_os(LEGACY_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(LEGACY_PATH), PathBuf::from)
}

/// Refuse ([`Error::Refused`], exit 3) while a legacy record at `legacy` holds VMs: they were
/// stopped by `update-ovs.py` and would be forgotten. A malformed legacy file is refused too.
pub fn refuse_unimported_legacy(legacy: &Path) -> Result<()> {
    if !legacy.exists() {
        return Ok(());
    }
    let record = VmRecord::load(legacy).map_err(|e| {
        Error::Refused(format!(
            "the legacy VM record of update-ovs.py cannot be read ({e}); \
             inspect it, then remove or fix it before ovsup stops or starts VMs"
        ))
    })?;
    if record.is_empty() {
        return Ok(());
    }
    let listing = record
        .nodes
        .iter()
        .map(|(n, vms)| format!("{n}: {}", vms.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::Refused(format!(
        "{} holds VMs stopped by update-ovs.py and not started again ({listing}); import it \
         into ovsup's VM record first: `ovsup import-legacy` (import_legacy_vm_record() in a \
         runbook; the file is then renamed to {}.imported), then start them with \
         `ovsup start-vm`",
        legacy.display(),
        legacy.display()
    )))
}

/// Merge the legacy record at `legacy` into the record at `record_path`, then rename the
/// legacy file to `<legacy>.imported` (`.imported.1`, … when taken). Returns what was
/// imported (empty when there is no legacy file).
pub fn import_legacy(record_path: &Path, legacy: &Path) -> Result<VmRecord> {
    if !legacy.exists() {
        return Ok(VmRecord::default());
    }
    let imported = VmRecord::load(legacy)?;
    let mut record = VmRecord::load(record_path)?;
    if record.merge_record(&imported) > 0 {
        record.save(record_path)?;
    }
    // The record holds the VMs durably before the legacy file goes: a crash in between
    // imports again, and merging is idempotent.
    let mut target = imported_name(legacy, 0);
    let mut n = 0;
    while target.exists() {
        n += 1;
        target = imported_name(legacy, n);
    }
    std::fs::rename(legacy, &target).map_err(|e| Error::io(legacy, e))?;
    sync_dir(legacy)?;
    Ok(imported)
}

fn imported_name(legacy: &Path, n: usize) -> PathBuf {
    let mut name = legacy.as_os_str().to_owned();
    name.push(".imported");
    if n > 0 {
        name.push(format!(".{n}"));
    }
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_empty_and_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = VmRecord::path(dir.path());
        let mut r = VmRecord::load(&path).unwrap();
        assert!(r.is_empty());
        r.merge("node-01", &["vm-0 o'brien test", "vm-0-db"]);
        r.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let raw: BTreeMap<String, Vec<String>> = serde_json::from_str(&text).unwrap();
        assert_eq!(raw["node-01"], ["vm-0 o'brien test", "vm-0-db"]);
        assert_eq!(VmRecord::load(&path).unwrap(), r);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn merge_adds_never_overwrites() {
        let mut r = VmRecord::default();
        assert_eq!(r.merge("a", &["x", "y"]), 2);
        assert_eq!(r.merge("a", &["y", "z"]), 1);
        assert_eq!(r.merge("b", &["x"]), 1);
        assert_eq!(r.merge::<&str>("c", &[]), 0);
        assert_eq!(r.vms("a"), ["x", "y", "z"]);
        assert_eq!(r.vms("c"), [] as [String; 0]);
        assert!(!r.nodes().contains_key("c"));
    }

    #[test]
    fn removal_drops_nodes_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = VmRecord::path(dir.path());
        let mut r = VmRecord::default();
        r.merge("a", &["x"]);
        r.merge("b", &["y"]);
        r.save(&path).unwrap();
        assert!(r.remove("a", "x"));
        assert!(!r.remove("a", "x"));
        assert!(!r.nodes().contains_key("a"));
        r.save(&path).unwrap();
        assert!(path.exists());
        assert!(r.remove("b", "y"));
        assert!(r.is_empty());
        r.save(&path).unwrap();
        assert!(!path.exists());
        // Saving an empty record again is fine.
        r.save(&path).unwrap();
    }

    #[test]
    fn malformed_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = VmRecord::path(dir.path());
        for bad in ["{\"a\": \"x\"}", "[\"x\"]", "{\"a\": [", "not json"] {
            std::fs::write(&path, bad).unwrap();
            let e = VmRecord::load(&path).unwrap_err();
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        // Left untouched.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not json");
    }

    #[test]
    fn legacy_is_refused_until_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("ovs-machine-state.json");
        let path = VmRecord::path(dir.path());
        // No legacy file, or an empty one: nothing to refuse.
        refuse_unimported_legacy(&legacy).unwrap();
        std::fs::write(&legacy, "{}").unwrap();
        refuse_unimported_legacy(&legacy).unwrap();
        std::fs::write(&legacy, r#"{"node-01": ["vm-0-web", "vm-0-db"]}"#).unwrap();
        let e = refuse_unimported_legacy(&legacy).unwrap_err();
        assert_eq!(e.code(), crate::error::EXIT_REFUSED);
        assert!(e.to_string().contains("import_legacy_vm_record"), "{e}");
        assert!(e.to_string().contains("vm-0-web"), "{e}");

        let mut existing = VmRecord::default();
        existing.merge("node-01", &["vm-0-db"]);
        existing.merge("node-02", &["vm-1-db"]);
        existing.save(&path).unwrap();
        let imported = import_legacy(&path, &legacy).unwrap();
        assert_eq!(imported.vms("node-01"), ["vm-0-web", "vm-0-db"]);
        let r = VmRecord::load(&path).unwrap();
        assert_eq!(r.vms("node-01"), ["vm-0-db", "vm-0-web"]);
        assert_eq!(r.vms("node-02"), ["vm-1-db"]);
        assert!(!legacy.exists());
        let renamed = dir.path().join("ovs-machine-state.json.imported");
        assert!(renamed.exists());
        refuse_unimported_legacy(&legacy).unwrap();
        // A second import has nothing to do.
        assert!(import_legacy(&path, &legacy).unwrap().is_empty());
        // A new legacy file does not overwrite the first imported one.
        std::fs::write(&legacy, r#"{"node-03": ["vm-2-db"]}"#).unwrap();
        import_legacy(&path, &legacy).unwrap();
        assert!(renamed.exists());
        assert!(
            dir.path()
                .join("ovs-machine-state.json.imported.1")
                .exists()
        );
        assert_eq!(VmRecord::load(&path).unwrap().vms("node-03"), ["vm-2-db"]);
    }

    #[test]
    fn malformed_legacy_is_refused_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("legacy.json");
        std::fs::write(&legacy, "{oops").unwrap();
        let e = refuse_unimported_legacy(&legacy).unwrap_err();
        assert_eq!(e.code(), crate::error::EXIT_REFUSED);
        assert!(e.to_string().contains("legacy.json"), "{e}");
        assert!(import_legacy(&VmRecord::path(dir.path()), &legacy).is_err());
        assert!(legacy.exists());
    }
}
