//! The first line of a run's journal ([`crate::state::journal::Begin`]): who runs what, with
//! which flags, from where, on which nodes — taken from the resolved [`Config`] when a command
//! that journals opens its session. `run.rs` writes the last line ([`RunJournals::close`]).

use std::collections::BTreeMap;

use crate::config::Config;
use crate::error::Result;
use crate::host::Host;
use crate::inventory::Backend;
use crate::state::journal::{self, Begin, FORMAT, Flags, RunJournals, now_rfc3339};

/// What a run runs: its runbooks' names and where each came from.
pub struct Ran<'a> {
    /// `alba`, `eval`, `ping`, `import-legacy`.
    pub runbooks: Vec<&'a str>,
    /// As errors name them (`runbooks/alba.rhai`, a site path, `<eval>`).
    pub scripts: Vec<&'a str>,
    /// `--set` pairs.
    pub set: &'a [(String, String)],
}

/// Write the first line of the host's journal, if it has one, and hand the journal to
/// `journals` for `run.rs` to close with the exit code.
pub fn begin(config: &Config, host: &Host, ran: &Ran<'_>, journals: &RunJournals) -> Result<()> {
    let Some(journal) = host.journal() else {
        return Ok(());
    };
    let env = config.env()?;
    let inventory = match (&config.inventory_file, &env.inventory.backend) {
        (Some(file), _) => file.display().to_string(),
        (None, Backend::Sim) => match &env.sim {
            Some((crate::inventory::SimSpec::Named(name), _)) => format!("sim:{name}"),
            Some((_, layout)) => format!("sim:{}", layout.nodes.len()),
            None => "sim".to_string(),
        },
        (None, Backend::Ssh) => "?".to_string(),
    };
    let begin = Begin {
        format: FORMAT,
        start: now_rfc3339(),
        user: journal::user(),
        sudo_user: std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()),
        controller: journal::controller(),
        pid: std::process::id(),
        ovsup: env!("CARGO_PKG_VERSION").to_string(),
        runbooks: ran.runbooks.iter().map(|s| s.to_string()).collect(),
        scripts: ran.scripts.iter().map(|s| s.to_string()).collect(),
        inventory,
        backend: match env.inventory.backend {
            Backend::Ssh => "ssh",
            Backend::Sim => "sim",
        }
        .to_string(),
        nodes: host.targets(None).into_iter().map(|n| n.name).collect(),
        flags: Flags {
            dry_run: config.dry_run,
            skip_vm: config.skip_vm,
            force: config.force,
            yes: config.assume_yes,
            limit: config.limit.as_ref().map(|l| l.as_str().to_string()),
            forks: config.forks,
            set: ran.set.iter().cloned().collect::<BTreeMap<_, _>>(),
        },
    };
    journal.begin(&begin)?;
    journals.add(journal.clone());
    Ok(())
}
