//! Running runbooks: a shipped runbook's subcommand (`ovsup alba`), the legacy flags (several
//! runbooks in the legacy order), `ovsup run NAME|FILE` and `ovsup eval CODE`. Runbooks run
//! one after the other on one set of connections; the first change takes the environment's
//! run lock (`host::env_lock`: a read-only runbook or a dry run takes none); the first failure
//! stops the sequence.

use std::path::Path;
use std::sync::Arc;

use super::record::{self, Ran};
use crate::config::Config;
use crate::engine::Script;
use crate::error::{Error, Result};
use crate::outcome::{CommandResult, Failure, Outcome};
use crate::report::{Event, Level, Reporter};
use crate::session::Session;
use crate::state::journal::RunJournals;

/// A runbook to run, and the short name its journal and lock use.
pub struct Runbook {
    /// `alba`, `fix` (of `./fix.rhai`), `eval`.
    pub name: String,
    /// Its text and the name errors show for it.
    pub script: Script,
}

impl Runbook {
    /// A runbook by name (site directory, then shipped) or path (`./fix.rhai`).
    pub fn find(config: &Config, spec: &str) -> Result<Runbook> {
        let (script, _) = crate::runbooks::find(spec, config.runbook_dir.as_deref())?;
        let name = Path::new(spec)
            .file_stem()
            .map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned());
        Ok(Runbook { name, script })
    }

    /// The code of `ovsup eval`.
    pub fn eval(code: &str) -> Runbook {
        Runbook {
            name: "eval".into(),
            script: Script {
                name: "<eval>".into(),
                text: code.to_string(),
            },
        }
    }
}

/// Run `books` in order with the `--set` pairs as `opts`; the value of the last one (of each,
/// keyed by name, when there are several). `show` says whether people see the value. The
/// run's journal begins with who runs what, and goes to `journals` to be closed with the exit
/// code.
pub fn run(
    config: &Config,
    reporter: Arc<dyn Reporter>,
    books: Vec<Runbook>,
    set: &[(String, String)],
    show: bool,
    journals: &RunJournals,
) -> CommandResult {
    let env = config.env()?;
    let label = books
        .iter()
        .map(|b| b.name.as_str())
        .collect::<Vec<_>>()
        .join("+");
    env.ensure_state_dir()?;
    let session = Session::open(config, reporter.clone(), Some(&label))?;
    let ran = Ran {
        runbooks: books.iter().map(|b| b.name.as_str()).collect(),
        scripts: books.iter().map(|b| b.script.name.as_str()).collect(),
        set,
    };
    if let Err(e) = record::begin(config, &session.host, &ran, journals) {
        session.close();
        return Err(e.into());
    }
    let mut opts = crate::engine::opts_map(set);
    opts.insert("skip_vm".into(), config.skip_vm.into());
    let mut values = serde_json::Map::new();
    let mut failure = None;
    for book in &books {
        if books.len() > 1 {
            reporter.report(Event::Log {
                level: Level::Info,
                message: format!("== {}", book.name),
            });
        }
        let ran = crate::engine::run(
            session.host.clone(),
            &book.script,
            opts.clone(),
            config.stdlib_dir.clone(),
        )
        .and_then(|value| crate::engine::to_json(&value));
        match ran {
            Ok(json) => {
                values.insert(book.name.clone(), json);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let cancelled = session.host.cancel.is_cancelled();
    let kept = session.host.take_value();
    session.close();
    let value = match failure {
        Some(_) if cancelled => return Err(Error::Interrupted.into()),
        Some(error) => {
            return Err(Failure {
                error,
                shown: kept.map(|value| Box::new(Outcome::Value { value, show })),
            });
        }
        None if values.len() == 1 => values
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or_default(),
        None => serde_json::Value::Object(values),
    };
    Ok(Outcome::Value { value, show })
}
