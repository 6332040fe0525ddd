//! The command line, parsed by clap into a merely validated form; `run.rs` turns it into a run.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    ok
  1    a step failed (remote command, unreachable node, runbook error)
  2    bad usage or input, found before the first command (command line, inventory, syntax)
  3    refused by a safety check
  130  interrupted (Ctrl-C)";

/// Upgrade a live Open vStorage cluster with Rhai runbooks over SSH.
#[derive(Debug, Parser)]
#[command(name = "ovsup", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The flags of the legacy update-ovs.py, accepted as they were.
    #[command(flatten)]
    pub legacy: Legacy,
    /// What to do (or legacy flags instead).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The legacy `update-ovs.py` flags. Several in one call run in the legacy order: check,
/// update, sync, arakoon, framework, volumedriver, alba, stop-vm, start-vm, preprocess,
/// postprocess.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Legacy update-ovs.py flags (several run in the legacy order)")]
pub struct Legacy {
    /// check for update (= ovsup check)
    #[arg(short = 'c', long)]
    pub check: bool,
    /// just run apt-get update on each node (= ovsup update)
    #[arg(short = 'u', long)]
    pub update: bool,
    /// runs the pre-upgrade commands: go offline (= ovsup preprocess)
    #[arg(short = 'P', long)]
    pub preprocess: bool,
    /// runs the post-upgrade commands: go online (= ovsup postprocess)
    #[arg(short = 'S', long)]
    pub postprocess: bool,
    /// update arakoon (= ovsup arakoon)
    #[arg(short = 'r', long)]
    pub arakoon: bool,
    /// update the Open vStorage framework (= ovsup framework)
    #[arg(short = 'o', long)]
    pub framework: bool,
    /// update the volume driver (= ovsup volumedriver)
    #[arg(short = 'v', long)]
    pub volumedriver: bool,
    /// update the ALBA backend (= ovsup alba)
    #[arg(short = 'a', long)]
    pub alba: bool,
    /// download the packages once and share them with every node (= ovsup sync)
    #[arg(short = 's', long)]
    pub sync: bool,
    /// stop all running VMs, recording them (= ovsup stop-vm)
    #[arg(short = 'O', long = "stop-vm")]
    pub stop_vm: bool,
    /// start the recorded VMs (= ovsup start-vm)
    #[arg(short = 'A', long = "start-vm")]
    pub start_vm: bool,
}

impl Legacy {
    /// The runbooks the flags ask for, in the legacy order.
    pub fn runbooks(&self) -> Vec<&'static str> {
        [
            (self.check, "check"),
            (self.update, "update"),
            (self.sync, "sync"),
            (self.arakoon, "arakoon"),
            (self.framework, "framework"),
            (self.volumedriver, "volumedriver"),
            (self.alba, "alba"),
            (self.stop_vm, "stop-vm"),
            (self.start_vm, "start-vm"),
            (self.preprocess, "preprocess"),
            (self.postprocess, "postprocess"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Options that apply to every subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Inventory file (TOML), `sim` / `sim:N` for the built-in simulated cluster, `sim:NAME` for a captured one
    #[arg(
        short = 'i',
        long,
        env = "OVSUP_INVENTORY",
        global = true,
        value_name = "FILE"
    )]
    pub inventory: Option<PathBuf>,

    /// Target only these nodes: comma-separated globs on node names, or @group
    #[arg(long, global = true, value_name = "PATTERN")]
    pub limit: Option<String>,

    /// At most this many commands in flight at once (never more than 8 per node)
    #[arg(long, global = true, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,

    /// State directory [default: $XDG_STATE_HOME/ovsup/<environment name>]
    #[arg(long, env = "OVSUP_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Site runbook directory [default: runbooks/ beside the inventory]
    #[arg(long, env = "OVSUP_RUNBOOK_DIR", global = true, value_name = "DIR")]
    pub runbook_dir: Option<PathBuf>,

    /// Site stdlib directory for `import` [default: stdlib/ beside the inventory]
    #[arg(long, env = "OVSUP_STDLIB_DIR", global = true, value_name = "DIR")]
    pub stdlib_dir: Option<PathBuf>,

    /// Print the changes a runbook would make; make none (read-only queries still run)
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// One JSON event per line on stdout; the last is {"event":"result","ok":…,"value":…}
    #[arg(long, global = true)]
    pub json: bool,

    /// Say less: warnings and errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more: every command and its exit code (-v is the legacy --volumedriver)
    #[arg(long, global = true)]
    pub verbose: bool,

    /// Do not stop/start VMs around volumedriver and alba (you ran stop-vm yourself)
    #[arg(short = 'k', long = "skip-vm", visible_alias = "skip", global = true)]
    pub skip_vm: bool,

    /// Answer yes to confirmations (stopping VMs); needed when not on a terminal
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Override the offline guard and the prerequisites of framework/arakoon/volumedriver/alba (dangerous)
    #[arg(long, global = true)]
    pub force: bool,

    /// Bound on each remote command, killed on the node past it [default: the inventory's command_timeout, else 600]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=604800))]
    pub command_timeout: Option<u64>,

    /// How long SSH masters stay open after the last run that used them, for the next run to reuse (0: close them at the end of each run)
    #[arg(long, env = "OVSUP_CONTROL_PERSIST", global = true, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86400))]
    pub control_persist: u64,

    /// How long apt and dpkg wait for a lock another process holds [default: the inventory's apt_lock_wait, else 120]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86400))]
    pub apt_lock_wait: Option<u64>,
}

/// Options of the runbook subcommands.
#[derive(Debug, Args, Default, Clone)]
pub struct RunbookArgs {
    /// A value for the runbook's `opts` map (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
}

/// Options of `ovsup plan`.
#[derive(Debug, Args, Default, Clone)]
pub struct PlanArgs {
    /// The components to plan (arakoon, framework, volumedriver, alba) [default: all]
    #[arg(value_name = "COMPONENT")]
    pub components: Vec<String>,
    /// The runbook options.
    #[command(flatten)]
    pub runbook: RunbookArgs,
}

/// Options of `ovsup update`.
#[derive(Debug, Args, Default, Clone)]
pub struct UpdateArgs {
    /// Accept nodes whose sources did not all refresh (`W: Failed to fetch …`): warn, do not fail
    #[arg(long)]
    pub allow_failed_sources: bool,
    /// The runbook options.
    #[command(flatten)]
    pub runbook: RunbookArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show per component (arakoon, framework, volumedriver, alba) whether an update is pending, and where
    Check(RunbookArgs),
    /// Before a step: what is pending where, its impact, and everything that blocks it (exit 3 when something does)
    Plan(PlanArgs),
    /// apt-get update on every node; a node whose sources did not all refresh fails
    Update(UpdateArgs),
    /// Go offline: stop the cloud agent on every node, and verify
    Preprocess(RunbookArgs),
    /// Go online: start the cloud agent on every node, and verify
    Postprocess(RunbookArgs),
    /// Update the Open vStorage framework on every node (needs offline)
    Framework(RunbookArgs),
    /// Update Arakoon on every node and restart each cluster (needs offline)
    Arakoon(RunbookArgs),
    /// Update the volume driver, stopping and restarting VMs unless --skip-vm (needs offline)
    Volumedriver(RunbookArgs),
    /// Update ALBA, stopping and restarting VMs unless --skip-vm (needs offline)
    Alba(RunbookArgs),
    /// Download the pending packages once and copy them to every other node's apt cache
    Sync(RunbookArgs),
    /// Record and stop every running VM on every node
    StopVm(RunbookArgs),
    /// Start the VMs the record holds; the record is empty afterwards
    StartVm(RunbookArgs),
    /// Run a runbook: a name (site directory, then shipped) or a .rhai file
    Run {
        /// Runbook name or file
        #[arg(value_name = "NAME|FILE.rhai")]
        runbook: String,
        /// A value for the runbook's `opts` map (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
    },
    /// Evaluate Rhai code against the nodes (one-off scripted maintenance)
    Eval {
        /// The code
        code: String,
        /// A value for the code's `opts` map (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
    },
    /// List the target nodes
    Nodes {
        /// Also connect to each node and measure a command's round trip
        #[arg(long)]
        ping: bool,
    },
    /// Close the SSH masters this environment's runs left open (ssh -O exit); the next run connects anew
    Disconnect,
    /// List the runbooks, with their description and where each comes from
    List,
    /// Print a runbook's source
    Show {
        /// Runbook name
        name: String,
    },
    /// Copy a shipped runbook into the site runbook directory, to edit it there
    Edit {
        /// Runbook name
        name: String,
    },
    /// The runs of this environment: when, who, runbook, flags, exit code, duration, nodes
    History {
        /// One run in full
        #[command(subcommand)]
        action: Option<HistoryAction>,
        /// Only the N latest runs
        #[arg(short = 'n', long, value_name = "N")]
        last: Option<usize>,
    },
    /// Merge the VM list left by update-ovs.py (/tmp/ovs-machine-state.json) into the VM record
    ImportLegacy,
    /// Write Rhai definition files (.d.rhai) of the primitives and the stdlib, for editors
    Definitions {
        /// The directory to write them into (created); the site runbook directory lets the
        /// language server resolve `import "vms"` too
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a shell completion script
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
    /// Print the primitive reference (Markdown, from the code's doc comments)
    #[command(hide = true)]
    Reference,
    /// Reseed, inspect or break a simulated cluster (-i sim, sim:N, sim:NAME); capture a real one; list them
    Sim {
        /// What to do
        #[command(subcommand)]
        action: SimAction,
    },
}

impl Command {
    /// Whether the subcommand works on an environment (loads the inventory); `list`, `show`,
    /// `edit`, `definitions`, `completions`, `man` and `reference` do not.
    pub fn needs_environment(&self) -> bool {
        !matches!(
            self,
            Command::List
                | Command::Show { .. }
                | Command::Edit { .. }
                | Command::Definitions { .. }
                | Command::Completions { .. }
                | Command::Man
                | Command::Reference
                | Command::Sim {
                    action: SimAction::List
                }
        )
    }

    /// The shipped runbook a runbook subcommand runs, with its `opts` (`--set` pairs and the
    /// subcommand's own flags).
    pub fn runbook(&self) -> Option<(&'static str, Vec<(String, String)>)> {
        if let Command::Plan(p) = self {
            let mut set = p.runbook.set.clone();
            set.push(("components".into(), p.components.join(",")));
            return Some(("plan", set));
        }
        if let Command::Update(u) = self {
            let mut set = u.runbook.set.clone();
            if u.allow_failed_sources {
                set.push(("allow_failed_sources".into(), "true".into()));
            }
            return Some(("update", set));
        }
        let (name, args) = match self {
            Command::Check(a) => ("check", a),
            Command::Preprocess(a) => ("preprocess", a),
            Command::Postprocess(a) => ("postprocess", a),
            Command::Framework(a) => ("framework", a),
            Command::Arakoon(a) => ("arakoon", a),
            Command::Volumedriver(a) => ("volumedriver", a),
            Command::Alba(a) => ("alba", a),
            Command::Sync(a) => ("sync", a),
            Command::StopVm(a) => ("stop-vm", a),
            Command::StartVm(a) => ("start-vm", a),
            _ => return None,
        };
        Some((name, args.set.clone()))
    }
}

/// `ovsup history …`.
#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// One run: who ran it and how, how it ended, its commands per node (failures first)
    Show {
        /// The run: `last`, or its id as `ovsup history` lists it (or the start of the id)
        #[arg(value_name = "RUN")]
        run: String,
        /// Also draw the run as a timeline, a row per node, into this SVG file
        #[arg(long, value_name = "FILE.svg")]
        timeline: Option<PathBuf>,
    },
}

/// `ovsup sim …`.
#[derive(Debug, Subcommand)]
pub enum SimAction {
    /// Throw the simulated cluster away and seed it anew: the same layout (sim:N: the built-in one of N nodes), or another one; a captured cluster (sim:NAME) gets back what was captured
    Reset {
        /// Seed this layout (TOML: nodes with their init, apt, vpools, backends, ASDs; Arakoon clusters and their members)
        #[arg(long, value_name = "FILE")]
        layout: Option<PathBuf>,
    },
    /// Show the simulated nodes (agent, jobs, VMs, newer packages)
    Show {
        /// Only this node
        node: Option<String>,
    },
    /// Set a fault knob on a node (unreachable, apt_lock, apt_lock_secs, failing_installs, failing_sources, pkg_status, stuck_vms, failing_services, down, stalled_elections, election_ms, stamp_hours_ago, free_bytes, download_ms, hang, slow_ms, shutdown_secs, clear)
    Fault {
        /// The node
        node: String,
        /// The knob
        key: String,
        /// Its value (lists are comma-separated; "" for none)
        value: String,
    },
    /// Read the nodes of -i (read-only: queries only, journaled) and write a simulated cluster replicating them, used as -i sim:NAME
    Capture {
        /// The replica's name: -i sim:NAME rehearses on it
        #[arg(value_name = "NAME")]
        name: String,
        /// Replace an existing replica of that name (its rehearsals' journals and VM record go with it)
        #[arg(long)]
        replace: bool,
        /// The replica's state directory [default: $XDG_STATE_HOME/ovsup/sim-NAME]; use it with -i sim:NAME --state-dir DIR
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// List the simulated clusters: the built-in one and the captured ones, with their nodes and when they were captured
    List,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found {s:?}"))?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "expected a key of letters, digits and '_', found {k:?}"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}
