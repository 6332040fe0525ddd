//! The command line resolved once into what a run works with, in the manner of ripgrep's
//! low-level and high-level arguments: clap parses [`crate::cli::Cli`] (merely validated), and
//! [`Config::resolve`] turns it into a [`Config`] — the inventory loaded (or the built-in
//! simulated cluster), the state directory and the site directories found, the output mode,
//! `--limit` parsed, `--forks` — before anything connects. Commands take `&Config` and never
//! look at the raw command line.

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Global};
use crate::error::{Error, Result};
use crate::inventory::{Backend, Inventory, Limit, SimSpec};
use crate::report::human::Verbosity;
use crate::sim::layout::Layout;

/// How the run talks to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Progress and messages for people, at this verbosity.
    Human(Verbosity),
    /// One JSON event per line (`--json`).
    Json,
}

/// The environment a run works on: its nodes and where its state is kept.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The inventory (or the built-in simulated cluster's).
    pub inventory: Inventory,
    /// The state directory: journal, VM record, steps in progress, run lock.
    pub state_dir: PathBuf,
    /// For a simulated cluster: what `-i` named, and the layout its nodes have (or get when
    /// first seeded).
    pub sim: Option<(SimSpec, Layout)>,
}

impl Environment {
    /// Where the built-in simulated cluster keeps its nodes (for `-i sim`).
    pub fn sim_dir(&self) -> PathBuf {
        self.state_dir.join("sim")
    }

    /// Where the SSH masters of the environment keep their control sockets.
    pub fn control_dir(&self) -> Result<crate::state::control::ControlDir> {
        crate::state::control::ControlDir::of(&self.state_dir)
    }
}

/// Everything a command needs from the command line, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The environment, when the command works on one (not for `list`, `show`, `edit`).
    env: Option<Environment>,
    /// The inventory file named with `-i`, when one is (not for the simulated cluster).
    pub inventory_file: Option<PathBuf>,
    /// The site runbook directory that exists: `--runbook-dir`, else `runbooks/` beside the
    /// inventory file.
    pub runbook_dir: Option<PathBuf>,
    /// Where `edit` copies a shipped runbook: `--runbook-dir`, else `runbooks/` beside the
    /// inventory file, existing or not.
    pub edit_dir: Option<PathBuf>,
    /// The site stdlib directory that exists: `--stdlib-dir`, else `stdlib/` beside the
    /// inventory file.
    pub stdlib_dir: Option<PathBuf>,
    /// How to talk to the operator.
    pub output: OutputMode,
    /// `--limit`.
    pub limit: Option<Limit>,
    /// `--forks`.
    pub forks: usize,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--force`.
    pub force: bool,
    /// `--yes`.
    pub assume_yes: bool,
    /// `--skip-vm`.
    pub skip_vm: bool,
    /// `--control-persist`: how long SSH masters outlive the last run that used them.
    pub control_persist: std::time::Duration,
}

impl Config {
    /// Resolve the parsed command line. The inventory is loaded (and checked) only when the
    /// command works on an environment; a malformed one is an error with file:line:col.
    pub fn resolve(cli: &Cli) -> Result<Config> {
        let g = &cli.global;
        let needs_env = match &cli.command {
            Some(c) => c.needs_environment(),
            None => true,
        };
        let inventory_file = g
            .inventory
            .as_ref()
            .filter(|p| p.to_str().and_then(Inventory::simulated_spec).is_none())
            .cloned();
        let beside = |name: &str| {
            inventory_file
                .as_ref()
                .and_then(|p| p.parent())
                .map(|d| d.join(name))
        };
        let existing = |option: &Option<PathBuf>, name: &str| {
            option
                .clone()
                .or_else(|| beside(name).filter(|d| d.is_dir()))
        };
        let limit = g.limit.as_deref().map(Limit::parse).transpose()?;
        let env = if needs_env {
            let resetting = matches!(
                &cli.command,
                Some(crate::cli::Command::Sim {
                    action: crate::cli::SimAction::Reset { .. }
                })
            );
            Some(environment(g, limit.as_ref(), resetting)?)
        } else {
            None
        };
        Ok(Config {
            env,
            runbook_dir: existing(&g.runbook_dir, "runbooks"),
            edit_dir: g.runbook_dir.clone().or_else(|| beside("runbooks")),
            stdlib_dir: existing(&g.stdlib_dir, "stdlib"),
            inventory_file,
            output: Config::output_of(g),
            limit,
            forks: usize::from(g.forks),
            dry_run: g.dry_run,
            force: g.force,
            assume_yes: g.yes,
            skip_vm: g.skip_vm,
            control_persist: std::time::Duration::from_secs(g.control_persist),
        })
    }

    /// The environment of the run; a command that needs one always has it (see
    /// [`crate::cli::Command::needs_environment`]).
    pub fn env(&self) -> Result<&Environment> {
        self.env.as_ref().ok_or_else(|| {
            Error::Internal("this command was resolved without an environment".into())
        })
    }

    /// The output mode the global options ask for (known before anything else is resolved,
    /// so that even a failed resolution is reported in that mode).
    pub fn output_of(g: &Global) -> OutputMode {
        if g.json {
            OutputMode::Json
        } else if g.quiet {
            OutputMode::Human(Verbosity::Quiet)
        } else if g.verbose {
            OutputMode::Human(Verbosity::Verbose)
        } else {
            OutputMode::Human(Verbosity::Normal)
        }
    }

    /// Whether output is `--json`.
    pub fn json(&self) -> bool {
        self.output == OutputMode::Json
    }
}

/// Load the inventory `-i` names (or the simulated cluster's) and find the state directory.
/// `resetting`: the command reseeds the simulated cluster (its stored layout does not bind).
fn environment(g: &Global, limit: Option<&Limit>, resetting: bool) -> Result<Environment> {
    let Some(path) = &g.inventory else {
        return Err(Error::Usage(
            "no inventory: give -i FILE, or -i sim for the built-in simulated cluster (or set OVSUP_INVENTORY)".into(),
        ));
    };
    let mut env = match path.to_str().and_then(Inventory::simulated_spec) {
        Some(spec) => simulated(g, spec?, resetting)?,
        None => {
            let inventory = Inventory::load(path)?;
            Environment {
                state_dir: state_dir_of(g, &inventory)?,
                inventory,
                sim: None,
            }
        }
    };
    for node in &mut env.inventory.nodes {
        if let Some(secs) = g.apt_lock_wait {
            node.apt_lock_wait = std::time::Duration::from_secs(secs);
        }
        if let Some(secs) = g.command_timeout {
            node.command_timeout = std::time::Duration::from_secs(secs);
        }
    }
    no_targets(&env.inventory, limit)?;
    Ok(env)
}

/// The state directory of an inventory file's environment: `--state-dir`, else its own under
/// the base directory (an old stem-keyed one holding VMs is refused until moved).
fn state_dir_of(g: &Global, inventory: &Inventory) -> Result<PathBuf> {
    if let Some(d) = &g.state_dir {
        return Ok(d.clone());
    }
    let dir = crate::state::default_dir(&inventory.name)?;
    if let Some(file) = &inventory.path {
        crate::state::migrate::check(&crate::state::base_dir()?, &inventory.stem(), &dir, file)?;
    }
    Ok(dir)
}

/// A simulated cluster's inventory, state directory and layout: the layout stored with its
/// nodes when there is one, else the built-in layout of its size. `sim:N` against a stored
/// layout of another size is an error (unless resetting), not a silent regrowth.
fn simulated(g: &Global, spec: SimSpec, resetting: bool) -> Result<Environment> {
    let name = spec.environment();
    let state_dir = match &g.state_dir {
        Some(d) => d.clone(),
        None => crate::state::default_dir(&name)?,
    };
    let sim_dir = state_dir.join("sim");
    let stored = crate::sim::cluster::stored_layout(&sim_dir).map_err(|e| Error::Simulator {
        node: String::new(),
        message: e.to_string(),
    })?;
    let layout = match (&spec, stored) {
        (SimSpec::Nodes(n), Some(l)) if resetting || l.nodes.len() != *n => {
            if !resetting {
                return Err(Error::Usage(format!(
                    "the simulated cluster in {} has {} storage nodes, not {n}: start over with \
                     `ovsup -i sim:{n} sim reset` (or use -i sim)",
                    sim_dir.display(),
                    l.nodes.len()
                )));
            }
            Layout::default_for(*n)
        }
        (_, Some(l)) => l,
        (SimSpec::Named(n), None) => {
            return Err(Error::Usage(format!(
                "no captured cluster named {n:?} in {}: capture one with `ovsup -i INVENTORY sim \
                 capture {n}` (see `ovsup sim list`)",
                sim_dir.display()
            )));
        }
        (SimSpec::Nodes(n), None) => Layout::default_for(*n),
        (SimSpec::Default, None) => Layout::default_for(crate::sim::cluster::DEFAULT_NODES),
    };
    Ok(Environment {
        inventory: Inventory::simulated(&layout, &name),
        state_dir,
        sim: Some((spec, layout)),
    })
}

/// A run with no target node would succeed doing nothing ("no VM runs"): refuse it, saying
/// why (exit 2).
fn no_targets(inventory: &Inventory, limit: Option<&Limit>) -> Result<()> {
    if inventory.targets(limit, None).next().is_some() {
        return Ok(());
    }
    let file = inventory
        .path
        .as_ref()
        .map_or_else(|| "the inventory".to_string(), |p| p.display().to_string());
    Err(Error::Usage(if inventory.nodes.is_empty() {
        format!("{file} has no node: add [nodes.NAME] tables with a host")
    } else if inventory.targets(None, None).next().is_none() {
        format!(
            "every node of {file} is excluded (exclude = {:?}): no node to run on",
            inventory.exclude
        )
    } else {
        format!(
            "--limit {:?} matches no target node of the inventory",
            limit.map_or("", |l| l.as_str())
        )
    }))
}

impl Environment {
    /// Whether the environment is the built-in simulated cluster.
    pub fn is_simulated(&self) -> bool {
        self.inventory.backend == Backend::Sim
    }

    /// The state directory, created (0700) if missing, and claimed for this environment (a
    /// state directory of another environment is refused).
    pub fn ensure_state_dir(&self) -> Result<&Path> {
        crate::state::ensure_private_dir(&self.state_dir)?;
        crate::state::environment::claim(
            &self.state_dir,
            &self.inventory.name,
            self.inventory.path.as_deref(),
        )?;
        Ok(&self.state_dir)
    }
}
