//! `ovsup import-legacy`: the VM list left by the legacy `update-ovs.py`
//! (`/tmp/ovs-machine-state.json`, or `$OVSUP_LEGACY_VM_RECORD`) merged into the VM record by
//! the same library function as the `import_legacy_vm_record()` primitive, under the run lock
//! and journaled like a run.

use std::sync::Arc;

use super::record::{self, Ran};
use crate::config::Config;
use crate::error::Result;
use crate::outcome::Outcome;
use crate::report::Reporter;
use crate::session::Session;
use crate::state::journal::RunJournals;
use crate::state::lock::RunLock;
use crate::state::vm_record::{self, VmRecord};

/// `ovsup import-legacy`: what was imported (only read in a dry run).
pub fn import(
    config: &Config,
    reporter: Arc<dyn Reporter>,
    journals: &RunJournals,
) -> Result<Outcome> {
    const NAME: &str = "import-legacy";
    let env = config.env()?;
    let state_dir = env.ensure_state_dir()?;
    let _lock = if config.dry_run {
        None
    } else {
        Some(RunLock::acquire(state_dir, NAME)?)
    };
    let session = Session::open(config, reporter, Some(NAME))?;
    let ran = Ran {
        runbooks: vec![NAME],
        scripts: Vec::new(),
        set: &[],
    };
    let imported = record::begin(config, &session.host, &ran, journals)
        .and_then(|()| crate::primitives::vms::import_legacy(&session.host));
    session.close();
    Ok(Outcome::LegacyImport {
        record: imported?,
        from: vm_record::legacy_path(),
        into: VmRecord::path(state_dir),
        dry_run: config.dry_run,
    })
}
