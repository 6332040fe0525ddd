//! From the command line to an exit code: parse it, resolve it into a [`Config`], run the
//! subcommand, and render its outcome — or its error — exactly once: as text for people, or
//! as the result event of `--json`.

use std::ffi::OsString;
use std::sync::Arc;

use clap::Parser;

use crate::cli::{Cli, Command, HistoryAction, SimAction};
use crate::commands::scripts::{self, Runbook};
use crate::config::{Config, OutputMode};
use crate::error::{EXIT_OK, EXIT_USAGE, Error};
use crate::outcome::{CommandResult, Failure, Outcome};
use crate::report::human::HumanReporter;
use crate::report::json::JsonReporter;
use crate::report::{Event, Reporter};
use crate::state::journal::RunJournals;

/// Run ovsup with these arguments (the first is the program name); returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let json = cli.global.json;
    let reporter: Arc<dyn Reporter> = if json {
        Arc::new(JsonReporter::stdout())
    } else {
        Arc::new(HumanReporter::new(match Config::output_of(&cli.global) {
            OutputMode::Human(v) => v,
            OutputMode::Json => crate::report::human::Verbosity::Normal,
        }))
    };
    let journals = RunJournals::default();
    let result = Config::resolve(&cli)
        .map_err(Failure::from)
        .and_then(|config| execute(&cli, &config, reporter.clone(), &journals));
    let (shown, error) = match result {
        Ok(outcome) => (Some(outcome), None),
        Err(Failure { error, shown }) => (shown.map(|b| *b), Some(error)),
    };
    let code = error.as_ref().map_or(EXIT_OK, Error::code);
    // The journals of the runs this command made end with its exit code and error.
    for e in journals.close(code, error.as_ref()) {
        eprintln!("warning: journal: {e}");
    }
    if json {
        reporter.report(Event::Result {
            ok: error.is_none(),
            value: shown
                .as_ref()
                .map_or(serde_json::Value::Null, Outcome::to_json),
            code,
            error: error.as_ref().map(Error::to_json),
        });
    } else {
        if let Some(text) = shown.as_ref().and_then(Outcome::to_text) {
            print_stdout(&text);
        }
        if let Some(e) = &error {
            eprintln!("error: {}", render(e));
        }
    }
    code
}

/// Print to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_stdout(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Dispatch the subcommand (or the legacy flags). The journals of the runs it makes go to
/// `journals`, to be closed with the exit code.
fn execute(
    cli: &Cli,
    config: &Config,
    reporter: Arc<dyn Reporter>,
    journals: &RunJournals,
) -> CommandResult {
    let legacy = cli.legacy.runbooks();
    let Some(command) = &cli.command else {
        return execute_legacy(&legacy, config, reporter, journals);
    };
    if !legacy.is_empty() {
        return Err(Error::Usage(format!(
            "give either a subcommand or legacy flags, not both (legacy flags given: {})",
            legacy.join(", ")
        ))
        .into());
    }
    if let Some((name, set)) = command.runbook() {
        let book = Runbook::find(config, name)?;
        return scripts::run(config, reporter, vec![book], &set, false, journals);
    }
    let outcome = match command {
        Command::Run { runbook, set } => {
            let book = Runbook::find(config, runbook)?;
            return scripts::run(config, reporter, vec![book], set, true, journals);
        }
        Command::Eval { code, set } => {
            return scripts::run(
                config,
                reporter,
                vec![Runbook::eval(code)],
                set,
                true,
                journals,
            );
        }
        Command::Nodes { ping } => {
            return crate::commands::nodes::list(config, reporter, *ping, journals);
        }
        Command::Sim { action } => execute_sim(cli, config, reporter, journals, action)?,
        Command::History { action, last } => match action {
            None => crate::commands::history::list(config, *last)?,
            Some(HistoryAction::Show { run, timeline }) => {
                crate::commands::history::show(config, run, timeline.as_deref())?
            }
        },
        Command::Disconnect => crate::commands::disconnect::run(config)?,
        Command::ImportLegacy => crate::commands::legacy::import(config, reporter, journals)?,
        Command::Definitions { dir } => crate::commands::manual::definitions(dir)?,
        Command::Completions { shell } => crate::commands::manual::completions(*shell)?,
        Command::Man => crate::commands::manual::man()?,
        Command::Reference => {
            Outcome::Text(crate::engine::reference::markdown().trim_end().to_string())
        }
        Command::List => crate::commands::runbooks::list(config)?,
        Command::Show { name } => crate::commands::runbooks::show(config, name)?,
        Command::Edit { name } => crate::commands::runbooks::edit(config, name)?,
        _ => return Err(Error::Internal(format!("unhandled subcommand {command:?}")).into()),
    };
    Ok(outcome)
}

/// The legacy flags of `update-ovs.py` (no subcommand): their runbooks, in the legacy order.
fn execute_legacy(
    legacy: &[&str],
    config: &Config,
    reporter: Arc<dyn Reporter>,
    journals: &RunJournals,
) -> CommandResult {
    if legacy.is_empty() {
        return Err(Error::Usage(
            "nothing to do: give a subcommand (ovsup --help) or legacy flags such as --check"
                .into(),
        )
        .into());
    }
    let books = legacy
        .iter()
        .map(|name| Runbook::find(config, name))
        .collect::<Result<Vec<_>, _>>()?;
    scripts::run(config, reporter, books, &[], false, journals)
}

/// `ovsup sim …`: a capture, the list of simulated clusters, or the simulator's own actions.
fn execute_sim(
    cli: &Cli,
    config: &Config,
    reporter: Arc<dyn Reporter>,
    journals: &RunJournals,
    action: &SimAction,
) -> Result<Outcome, Error> {
    match action {
        SimAction::Capture {
            name,
            replace,
            into,
        } => crate::commands::capture::run(
            config,
            reporter,
            journals,
            &crate::commands::capture::Request {
                name,
                replace: *replace,
                into: into.as_deref(),
            },
        ),
        SimAction::List => crate::commands::capture::list(cli.global.state_dir.as_deref()),
        _ => crate::commands::sim::run(config, action),
    }
}

/// An error as the operator reads it: the message, and for a located error the source line
/// with a caret under the column.
pub fn render(e: &Error) -> String {
    let mut text = e.to_string();
    if let Some(loc) = e.location()
        && let Some(src) = &loc.source_line
    {
        let num = loc.line.to_string();
        let pad = " ".repeat(num.len());
        let caret_at: String = src
            .chars()
            .take(loc.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        text.push_str(&format!("\n{pad} |\n{num} | {src}\n{pad} | {caret_at}^"));
    }
    text
}
