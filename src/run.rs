//! From parsed arguments to a finished run: open the inventory, the state directory, the
//! transport and the host, run the subcommand, and render the outcome exactly once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, Command, Global};
use crate::engine::Script;
use crate::error::{EXIT_OK, EXIT_USAGE, Error, Result};
use crate::host::{Host, HostParts};
use crate::inventory::{Backend, Inventory, Limit};
use crate::report::human::{HumanReporter, Verbosity};
use crate::report::json::JsonReporter;
use crate::report::{Event, Level, Reporter};
use crate::state::journal::Journal;
use crate::state::lock::RunLock;
use crate::transport::Transport;
use crate::transport::sim::SimTransport;
use crate::transport::ssh::SshTransport;

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
    let g = &cli.global;
    let reporter: Arc<dyn Reporter> = if g.json {
        Arc::new(JsonReporter::stdout())
    } else {
        Arc::new(HumanReporter::new(if g.quiet {
            Verbosity::Quiet
        } else if g.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }))
    };
    let outcome = execute(&cli, reporter.clone());
    let code = outcome.as_ref().map_or_else(Error::code, |_| EXIT_OK);
    if g.json {
        let (ok, value, error) = match outcome {
            Ok(v) => (true, v, None),
            Err(e) => (false, serde_json::Value::Null, Some(render(&e))),
        };
        reporter.report(Event::Result {
            ok,
            value,
            code,
            error,
        });
    } else {
        // The operator's runbooks (check, alba, …) tell people what they did with info();
        // their value is data, for --json. eval and run print the value.
        let value_is_data = cli.command.as_ref().is_none_or(|c| c.runbook().is_some());
        match outcome {
            Ok(_) if value_is_data => {}
            Ok(serde_json::Value::Null) => {}
            Ok(serde_json::Value::String(s)) => print_stdout(&s),
            Ok(v) => print_stdout(&serde_json::to_string_pretty(&v).unwrap_or_default()),
            Err(e) => eprintln!("error: {}", render(&e)),
        }
    }
    code
}

/// Print the run's value; a closed pipe (`| head`) is not an error worth a panic.
fn print_stdout(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn execute(cli: &Cli, reporter: Arc<dyn Reporter>) -> Result<serde_json::Value> {
    let g = &cli.global;
    let legacy = cli.legacy.runbooks();
    let Some(command) = &cli.command else {
        if legacy.is_empty() {
            return Err(Error::Usage(
                "nothing to do: give a subcommand (ovsup --help) or legacy flags such as --check"
                    .into(),
            ));
        }
        let inventory = load_inventory(g)?;
        let books = legacy
            .iter()
            .map(|name| find_runbook(g, &inventory, name))
            .collect::<Result<Vec<_>>>()?;
        return run_scripts(g, inventory, reporter, books, &[]);
    };
    if !legacy.is_empty() {
        return Err(Error::Usage(format!(
            "give either a subcommand or legacy flags, not both (legacy flags given: {})",
            legacy.join(", ")
        )));
    }
    if let Some((name, args)) = command.runbook() {
        let inventory = load_inventory(g)?;
        let book = find_runbook(g, &inventory, name)?;
        return run_scripts(g, inventory, reporter, vec![book], &args.set);
    }
    match command {
        Command::Run { runbook, set } => {
            let inventory = load_inventory(g)?;
            let book = find_runbook(g, &inventory, runbook)?;
            run_scripts(g, inventory, reporter, vec![book], set)
        }
        Command::Eval { code, set } => {
            let inventory = load_inventory(g)?;
            let script = Script {
                name: "<eval>".into(),
                text: code.clone(),
            };
            run_scripts(g, inventory, reporter, vec![("eval".into(), script)], set)
        }
        Command::Nodes { ping } => {
            let inventory = load_inventory(g)?;
            let opened = open(g, inventory, reporter, ping.then_some("ping"))?;
            let result = crate::commands::nodes::list(g, &opened.host, *ping);
            opened.close();
            result
        }
        Command::Sim { action } => {
            let inventory = load_inventory(g)?;
            crate::commands::sim::run(g, &inventory, action)
        }
        Command::Reference => Ok(serde_json::Value::String(
            crate::engine::reference::markdown().trim_end().to_string(),
        )),
        Command::List => {
            let site = site_dir_optional_inventory(g, "runbooks");
            crate::commands::runbooks::list(g, site.as_deref())
        }
        Command::Show { name } => {
            let site = site_dir_optional_inventory(g, "runbooks");
            crate::commands::runbooks::show(name, site.as_deref())
        }
        Command::Edit { name } => {
            let site = site_dir_optional_inventory(g, "runbooks").or_else(|| {
                g.inventory
                    .as_ref()
                    .and_then(|p| p.parent())
                    .map(|d| d.join("runbooks"))
            });
            crate::commands::runbooks::edit(name, site.as_deref())
        }
        _ => Err(Error::Internal(format!("unhandled subcommand {command:?}"))),
    }
}

/// A runbook and the short name its journal and lock use.
fn find_runbook(g: &Global, inventory: &Inventory, spec: &str) -> Result<(String, Script)> {
    let site = site_dir(g.runbook_dir.as_deref(), inventory, "runbooks");
    let (script, _) = crate::runbooks::find(spec, site.as_deref())?;
    let name = Path::new(spec)
        .file_stem()
        .map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned());
    Ok((name, script))
}

/// The site directory when no inventory need be loaded (list, show, edit): the option, or
/// `<name>/` beside the inventory file when one is named.
fn site_dir_optional_inventory(g: &Global, name: &str) -> Option<PathBuf> {
    let option = if name == "runbooks" {
        &g.runbook_dir
    } else {
        &g.stdlib_dir
    };
    if let Some(dir) = option {
        return Some(dir.clone());
    }
    let beside = g.inventory.as_ref()?.parent()?.join(name);
    beside.is_dir().then_some(beside)
}

fn load_inventory(g: &Global) -> Result<Inventory> {
    let Some(path) = &g.inventory else {
        return Err(Error::Usage(
            "no inventory: give -i FILE, or -i sim for the built-in simulated cluster (or set OVSUP_INVENTORY)".into(),
        ));
    };
    if let Some(n) = path.to_str().and_then(Inventory::simulated_spec) {
        return Ok(Inventory::simulated(n?));
    }
    Inventory::load(path)
}

/// The state directory of a run: `--state-dir`, else the inventory's default.
pub fn state_dir(g: &Global, inventory: &Inventory) -> Result<PathBuf> {
    match &g.state_dir {
        Some(d) => Ok(d.clone()),
        None => crate::state::default_dir(&inventory.stem()),
    }
}

/// Where the built-in simulated cluster keeps its nodes.
pub fn sim_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sim")
}

/// A site directory: the option, else `<name>/` beside the inventory file if it exists.
fn site_dir(option: Option<&Path>, inventory: &Inventory, name: &str) -> Option<PathBuf> {
    if let Some(dir) = option {
        return Some(dir.to_path_buf());
    }
    let beside = inventory.path.as_ref()?.parent()?.join(name);
    beside.is_dir().then_some(beside)
}

/// Everything a run holds open; closed in order by [`Opened::close`].
pub struct Opened {
    runtime: tokio::runtime::Runtime,
    /// The run's host.
    pub host: Arc<Host>,
}

impl Opened {
    /// Close the connections, then the runtime.
    pub fn close(self) {
        let Opened { runtime, host } = self;
        runtime.block_on(host.close());
        drop(host);
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

fn open(
    g: &Global,
    inventory: Inventory,
    reporter: Arc<dyn Reporter>,
    run_name: Option<&str>,
) -> Result<Opened> {
    let limit = g.limit.as_deref().map(Limit::parse).transpose()?;
    if let Some(l) = &limit
        && inventory.targets(Some(l), None).next().is_none()
    {
        return Err(Error::Usage(format!(
            "--limit {:?} matches no target node of the inventory",
            l.as_str()
        )));
    }
    let state_dir = state_dir(g, &inventory)?;
    crate::state::ensure_dir(&state_dir)?;
    let journal = run_name
        .map(|n| Journal::create(&state_dir, n))
        .transpose()?;
    let transport = match inventory.backend {
        Backend::Ssh => Transport::Ssh(SshTransport::new(inventory.ssh_config.clone())?),
        Backend::Sim => {
            let dir = sim_dir(&state_dir);
            let storage = inventory.nodes.len() - crate::sim::cluster::CONTROLLERS.len();
            crate::sim::cluster::ensure(&dir, storage)
                .map_err(|e| Error::Usage(format!("simulated cluster: {e}")))?;
            Transport::Sim(SimTransport::new(dir))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ovsup")
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    let host = Arc::new(Host::new(HostParts {
        inventory,
        limit,
        state_dir,
        dry_run: g.dry_run,
        force: g.force,
        assume_yes: g.yes,
        forks: usize::from(g.forks),
        transport,
        reporter: reporter.clone(),
        journal,
        runtime: runtime.handle().clone(),
    }));
    let cancel = host.cancel.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        cancel.cancel();
        reporter.report(Event::Log {
            level: Level::Warn,
            message: "interrupted: no new command starts; waiting for the commands in flight (Ctrl-C again to quit now)".into(),
        });
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(crate::error::EXIT_INTERRUPTED);
        }
    });
    Ok(Opened { runtime, host })
}

/// Run runbooks one after the other on one set of connections, under the environment's lock
/// (not taken by a dry run, which changes nothing). The first failure stops the sequence.
fn run_scripts(
    g: &Global,
    inventory: Inventory,
    reporter: Arc<dyn Reporter>,
    books: Vec<(String, Script)>,
    set: &[(String, String)],
) -> Result<serde_json::Value> {
    let stdlib = site_dir(g.stdlib_dir.as_deref(), &inventory, "stdlib");
    let names: Vec<&str> = books.iter().map(|(n, _)| n.as_str()).collect();
    let label = names.join("+");
    let state_dir = state_dir(g, &inventory)?;
    crate::state::ensure_dir(&state_dir)?;
    let _lock = if g.dry_run {
        None
    } else {
        Some(RunLock::acquire(&state_dir, &label)?)
    };
    let opened = open(g, inventory, reporter.clone(), Some(&label))?;
    let mut opts = crate::engine::opts_map(set);
    opts.insert("skip_vm".into(), g.skip_vm.into());
    let mut values = serde_json::Map::new();
    let mut failure = None;
    for (name, script) in &books {
        if books.len() > 1 {
            reporter.report(Event::Log {
                level: Level::Info,
                message: format!("== {name}"),
            });
        }
        match crate::engine::run(opened.host.clone(), script, opts.clone(), stdlib.clone()) {
            Ok(value) => {
                let json = if value.is_unit() {
                    serde_json::Value::Null
                } else {
                    serde_json::to_value(&value)
                        .map_err(|e| Error::Internal(format!("runbook value to JSON: {e}")))?
                };
                values.insert(name.clone(), json);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let cancelled = opened.host.cancel.is_cancelled();
    opened.close();
    match failure {
        Some(_) if cancelled => Err(Error::Interrupted),
        Some(e) => Err(e),
        None if values.len() == 1 => Ok(values
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or_default()),
        None => Ok(serde_json::Value::Object(values)),
    }
}

/// An error as the operator reads it: the message, and for a located error the source line
/// with a caret under the column.
pub fn render(e: &Error) -> String {
    let location = match e {
        Error::Inventory { location, .. } | Error::ScriptSyntax { location, .. } => Some(location),
        Error::Script { location, .. } => location.as_ref(),
        _ => None,
    };
    let mut text = e.to_string();
    if let Some(loc) = location
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
