//! What a command produced, typed: `run.rs` is the only place that renders it, as text for
//! people or as the value of `--json`'s result event. A command that fails may still have
//! something to show ([`Failure::shown`]: the node table of a ping where some nodes are
//! unreachable).

mod history;
mod sim;

pub use sim::Captured;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;
use crate::runbooks::{Entry, Origin};
use crate::sim::state::NodeState;

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    /// A runbook's or an `eval`'s value; `show` says whether people see it (the shipped
    /// runbooks tell what they did with `info()`: their value is data, for `--json`).
    Value {
        /// The value.
        value: Value,
        /// Print it for people too.
        show: bool,
    },
    /// A sentence for the operator ("copied the shipped runbook to …").
    Message(String),
    /// A text to print as it is (a runbook's source, the primitive reference).
    Text(String),
    /// The runbooks there are (`ovsup list`).
    Runbooks(Vec<Entry>),
    /// The target nodes (`ovsup nodes [--ping]`).
    Nodes(Vec<NodeRow>),
    /// The simulated nodes (`ovsup sim show`).
    SimNodes(Vec<NodeState>),
    /// The runs of the environment, oldest first (`ovsup history`), and where their journals
    /// are.
    History {
        /// The runs.
        runs: Vec<crate::history::Run>,
        /// `<state-dir>/runs`.
        dir: PathBuf,
    },
    /// What `ovsup import-legacy` merged into the VM record (or, in a dry run, would).
    LegacyImport {
        /// The VMs by node.
        record: crate::state::vm_record::VmRecord,
        /// The legacy file.
        from: PathBuf,
        /// The VM record file.
        into: PathBuf,
        /// Whether it was a dry run (nothing changed).
        dry_run: bool,
    },
    /// What `ovsup sim capture NAME` read and wrote (or, in a dry run, would write).
    Captured(Box<Captured>),
    /// The simulated clusters there are (`ovsup sim list`), and the base directory searched.
    SimClusters {
        /// `$XDG_STATE_HOME/ovsup`.
        base: PathBuf,
        /// The clusters, by name.
        found: Vec<crate::sim::capture::ClusterEntry>,
    },
    /// One run told in full (`ovsup history show RUN`), and where its timeline was drawn.
    Run {
        /// The run.
        run: Box<crate::history::Run>,
        /// The SVG file of `--timeline`.
        timeline: Option<PathBuf>,
    },
}

/// A command that failed, and what it had to show all the same.
#[derive(Debug)]
pub struct Failure {
    /// Why it failed.
    pub error: Error,
    /// What it produced before failing, if anything.
    pub shown: Option<Box<Outcome>>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, shown: None }
    }
}

/// A command's result.
pub type CommandResult = std::result::Result<Outcome, Failure>;

/// One target node, and how it answered a ping.
#[derive(Debug, Clone)]
pub struct NodeRow {
    /// The node's name.
    pub name: String,
    /// Its address or ssh alias.
    pub host: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// With `--ping`: the connect time and the round trip of a command, or why it failed.
    pub ping: Option<Result<(Duration, Duration), String>>,
}

impl Outcome {
    /// The value of `--json`'s result event.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Value { value, .. } => value.clone(),
            Outcome::Message(s) | Outcome::Text(s) => Value::String(s.clone()),
            Outcome::Runbooks(entries) => entries
                .iter()
                .map(|e| json!({"name": e.name, "description": e.description, "origin": origin(&e.origin)}))
                .collect(),
            Outcome::Nodes(rows) => rows.iter().map(NodeRow::to_json).collect(),
            Outcome::SimNodes(states) => states
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    s.files.clear();
                    let value = serde_json::to_value(&s).unwrap_or(Value::Null);
                    (s.name, value)
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
            Outcome::History { runs, .. } => history::list_json(runs),
            Outcome::LegacyImport { record, .. } => {
                serde_json::to_value(record.nodes()).unwrap_or(Value::Null)
            }
            Outcome::Run { run, timeline } => history::show_json(run, timeline.as_deref()),
            Outcome::Captured(c) => c.to_json(),
            Outcome::SimClusters { found, .. } => sim::list_json(found),
        }
    }

    /// The text people see on stdout, if any.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Outcome::Value { show: false, .. }
            | Outcome::Value {
                value: Value::Null, ..
            } => None,
            Outcome::Value {
                value: Value::String(s),
                ..
            } => Some(s.clone()),
            Outcome::Value { value, .. } => serde_json::to_string_pretty(value).ok(),
            Outcome::Message(s) | Outcome::Text(s) => Some(s.clone()),
            Outcome::Runbooks(entries) => {
                let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
                Some(
                    entries
                        .iter()
                        .map(|e| {
                            format!(
                                "{:<width$}  {}  [{}]",
                                e.name,
                                e.description,
                                origin(&e.origin)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
            Outcome::Nodes(rows) => Some(
                rows.iter()
                    .map(NodeRow::to_text)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Outcome::SimNodes(states) => Some(
                states
                    .iter()
                    .map(crate::sim::summary::summary)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Outcome::History { runs, dir } => Some(history::list_text(runs, dir)),
            Outcome::LegacyImport {
                record,
                from,
                into,
                dry_run,
            } => Some(legacy_import_text(record, from, into, *dry_run)),
            Outcome::Run { run, timeline } => Some(history::show_text(run, timeline.as_deref())),
            Outcome::Captured(c) => Some(c.to_text()),
            Outcome::SimClusters { base, found } => Some(sim::list_text(base, found)),
        }
    }
}

fn legacy_import_text(
    record: &crate::state::vm_record::VmRecord,
    from: &std::path::Path,
    into: &std::path::Path,
    dry_run: bool,
) -> String {
    if record.is_empty() {
        return format!(
            "nothing to import: {} does not exist or lists no VM",
            from.display()
        );
    }
    let count: usize = record.nodes().values().map(Vec::len).sum();
    let listing = record
        .nodes()
        .iter()
        .map(|(node, vms)| format!("  {node}: {}", vms.join(", ")))
        .collect::<Vec<_>>()
        .join("\n");
    if dry_run {
        return format!(
            "dry run: would import {count} VMs of {} nodes from {} into {}:\n{listing}",
            record.nodes().len(),
            from.display(),
            into.display()
        );
    }
    format!(
        "imported {count} VMs of {} nodes from {} into {} (the legacy file is renamed \
         {}.imported); `ovsup start-vm` starts them:\n{listing}",
        record.nodes().len(),
        from.display(),
        into.display(),
        from.display()
    )
}

fn origin(o: &Origin) -> String {
    match o {
        Origin::Shipped => "shipped".to_string(),
        Origin::Site(p) | Origin::File(p) => p.display().to_string(),
    }
}

/// Milliseconds with one decimal.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

impl NodeRow {
    fn to_json(&self) -> Value {
        let mut row = json!({"name": self.name, "host": self.host, "groups": self.groups});
        match &self.ping {
            Some(Ok((connect, rtt))) => {
                row["reachable"] = true.into();
                row["connect_ms"] = ms(*connect).into();
                row["rtt_ms"] = ms(*rtt).into();
            }
            Some(Err(e)) => {
                row["reachable"] = false.into();
                row["error"] = e.clone().into();
            }
            None => {}
        }
        row
    }

    fn to_text(&self) -> String {
        let mut line = format!(
            "{:<20} {:<24} {}",
            self.name,
            self.host,
            self.groups.join(",")
        );
        match &self.ping {
            Some(Ok((connect, rtt))) => line.push_str(&format!(
                "  ok  connect {:.1} ms  rtt {:.1} ms",
                ms(*connect),
                ms(*rtt)
            )),
            Some(Err(_)) => line.push_str("  UNREACHABLE"),
            None => {}
        }
        line
    }
}
