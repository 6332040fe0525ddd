//! The command line, parsed by clap into a merely validated form; `run.rs` turns it into a run.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    ok
  1    a step failed (remote command, unreachable node, runbook error)
  2    bad usage or input (command line, inventory, runbook syntax)
  3    refused by a safety check
  130  interrupted (Ctrl-C)";

/// Upgrade a live Open vStorage cluster with Rhai runbooks over SSH.
#[derive(Debug, Parser)]
#[command(name = "ovsup", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that apply to every subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Inventory file (TOML)
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

    /// State directory [default: $XDG_STATE_HOME/ovsup/<inventory file stem>]
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

    /// Say more: every command and its exit code
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Reseed, inspect or break the built-in simulated cluster (-i sim)
    Sim {
        /// What to do
        #[command(subcommand)]
        action: SimAction,
    },
}

/// `ovsup sim …`.
#[derive(Debug, Subcommand)]
pub enum SimAction {
    /// Throw the simulated cluster away and seed it anew
    Reset,
    /// Show the simulated nodes (agent, jobs, VMs, newer packages)
    Show {
        /// Only this node
        node: Option<String>,
    },
    /// Set a fault knob on a node (apt_lock, failing_installs, stuck_vms, failing_services, hang, slow_ms)
    Fault {
        /// The node
        node: String,
        /// The knob
        key: String,
        /// Its value (lists are comma-separated; "" for none)
        value: String,
    },
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
