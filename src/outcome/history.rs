//! How `ovsup history` and `ovsup history show RUN` render: a table of runs, one run in full
//! (failures first, then every command per node), and both as `--json` values.

use std::path::Path;

use serde_json::{Value, json};

use crate::history::{self, Outcome, Run, Status, human_duration, human_time};
use crate::state::journal::Command;

/// `history --json`: one object per run, oldest first.
pub fn list_json(runs: &[Run]) -> Value {
    runs.iter().map(summary_json).collect()
}

/// `history show RUN --json`: the summary, the failures (the run's own first) and every
/// command by node (`by_node`).
pub fn show_json(run: &Run, timeline: Option<&Path>) -> Value {
    let mut v = summary_json(run);
    v["failures"] = run
        .failures()
        .into_iter()
        .map(|(fatal, c)| {
            let mut c = command_json(run, c);
            c["failed_the_run"] = fatal.into();
            c
        })
        .collect();
    v["by_node"] = run
        .nodes()
        .iter()
        .map(|node| {
            let commands: Vec<Value> = run
                .commands
                .iter()
                .filter(|c| &c.node == node)
                .map(|c| command_json(run, c))
                .collect();
            (node.clone(), Value::Array(commands))
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    if let Some(path) = timeline {
        v["timeline"] = path.display().to_string().into();
    }
    v
}

fn summary_json(run: &Run) -> Value {
    let status = run.status();
    let mut v = json!({
        "id": run.id,
        "journal": run.path.display().to_string(),
        "status": status.name(),
        "runbook": run.runbook(),
        "start": run.start().map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "nodes": run.nodes(),
        "commands": run.commands.len(),
        "failed_commands": run.commands.iter().filter(|c| history::outcome(c).failed()).count(),
    });
    if let Some(d) = run.duration() {
        v["ms"] = (d.as_millis() as u64).into();
    }
    if let Status::Running(pid) = status {
        v["pid"] = pid.into();
    }
    if let Some(b) = &run.begin {
        v["user"] = b.user.clone().into();
        if let Some(s) = &b.sudo_user {
            v["sudo_user"] = s.clone().into();
        }
        v["controller"] = b.controller.clone().into();
        v["pid"] = b.pid.into();
        v["ovsup"] = b.ovsup.clone().into();
        v["runbooks"] = json!(b.runbooks);
        v["scripts"] = json!(b.scripts);
        v["inventory"] = b.inventory.clone().into();
        v["backend"] = b.backend.clone().into();
        v["flags"] = serde_json::to_value(&b.flags).unwrap_or(Value::Null);
        v["args"] = json!(b.flags.to_args());
    }
    if let Some(e) = &run.end {
        v["code"] = e.code.into();
        v["end"] = e.end.clone().into();
        if let Some(error) = &e.error {
            v["error"] = error.clone();
        }
    }
    v
}

fn command_json(run: &Run, c: &Command) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    v["outcome"] = history::outcome(c).name().into();
    if let Some(o) = run.offset(c) {
        v["offset_ms"] = (o.as_millis() as u64).into();
    }
    v
}

/// The status as a table cell.
fn status_text(run: &Run) -> String {
    match run.status() {
        Status::Ok => "ok".into(),
        Status::Failed(code) => format!("exit {code}"),
        Status::Running(pid) => format!("running (pid {pid})"),
        Status::Unfinished => "unfinished (killed?)".into(),
        Status::Unknown => "unknown (older journal)".into(),
    }
}

fn took_text(run: &Run) -> String {
    match (&run.end, run.duration()) {
        (Some(_), Some(d)) => human_duration(d),
        (None, Some(d)) => format!("≥ {}", human_duration(d)),
        (_, None) => "?".into(),
    }
}

fn by_text(run: &Run) -> String {
    match &run.begin {
        Some(b) => match &b.sudo_user {
            Some(sudo) => format!("{sudo}@{} (as {})", b.controller, b.user),
            None => format!("{}@{}", b.user, b.controller),
        },
        None => "?".into(),
    }
}

/// `ovsup history`: a table, oldest run first.
pub fn list_text(runs: &[Run], state_dir_runs: &Path) -> String {
    if runs.is_empty() {
        return format!("no run recorded yet (in {})", state_dir_runs.display());
    }
    let header = [
        "RUN", "STARTED", "BY", "RUNBOOK", "STATUS", "TOOK", "NODES", "FLAGS",
    ];
    let rows: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.start().map_or_else(|| "?".into(), human_time),
                by_text(r),
                r.runbook(),
                status_text(r),
                took_text(r),
                r.nodes().len().to_string(),
                r.begin
                    .as_ref()
                    .map(|b| b.flags.to_args().join(" "))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// An error object of a last line in one line: its kind, the message of the one failure that
/// matters (for a fan-out where one node failed), and where in the runbook.
fn error_summary(error: &Value) -> String {
    let sole = error["failures"]
        .as_array()
        .and_then(|f| {
            let mut real = f.iter().filter(|f| f["kind"] != "not_started");
            match (real.next(), real.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        })
        .unwrap_or(error);
    let message = sole["message"].as_str().unwrap_or_default();
    let mut text = format!(
        "{}: {}",
        error["kind"].as_str().unwrap_or("?"),
        message
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches(':')
    );
    let at = &error["location"];
    if let (Some(file), Some(line)) = (at["file"].as_str(), at["line"].as_u64()) {
        text.push_str(&format!(
            " (at {file}:{line}:{})",
            at["column"].as_u64().unwrap_or(0)
        ));
    }
    text
}

fn outcome_text(c: &Command) -> String {
    match history::outcome(c) {
        Outcome::Ok => "ok".into(),
        Outcome::NonZero(code) => format!("exit {code}"),
        Outcome::Error => format!("error: {}", c.error.as_deref().unwrap_or("no exit code")),
        Outcome::DryRun => "dry run".into(),
    }
}

fn command_line(run: &Run, c: &Command, with_node: bool) -> String {
    let at = run
        .offset(c)
        .map_or_else(|| "?".into(), |o| format!("+{:.3}s", o.as_secs_f64()));
    let node = if with_node {
        format!("{}  ", c.node)
    } else {
        String::new()
    };
    format!(
        "  {node}{at:>10}  {:>8}  {:<8}  {}",
        human_duration(std::time::Duration::from_millis(c.ms)),
        outcome_text(c),
        c.command
    )
}

/// `ovsup history show RUN`: who ran what, how it ended, the failures (the command the run
/// failed on first), then every command per node.
pub fn show_text(run: &Run, timeline: Option<&Path>) -> String {
    let mut out = vec![format!("run {}", run.id)];
    out.extend(header_lines(run, timeline));
    out.extend(failure_lines(run));
    for node in run.nodes() {
        out.extend(node_lines(run, &node));
    }
    out.join("\n")
}

/// `  name       value`.
fn field(name: &str, value: String) -> String {
    format!("  {name:<10} {value}")
}

/// Who ran what, where, when, and how it ended.
fn header_lines(run: &Run, timeline: Option<&Path>) -> Vec<String> {
    let mut out = vec![field("runbook", run.runbook())];
    if let Some(b) = &run.begin {
        if !b.scripts.is_empty() {
            out.push(field("scripts", b.scripts.join(", ")));
        }
        out.push(field(
            "by",
            format!("{} (pid {}), ovsup {}", by_text(run), b.pid, b.ovsup),
        ));
        out.push(field(
            "inventory",
            format!("{} ({})", b.inventory, b.backend),
        ));
        let args = b.flags.to_args();
        if !args.is_empty() {
            out.push(field("flags", args.join(" ")));
        }
    } else {
        out.push(field(
            "by",
            "? (a journal of an older ovsup: who ran it and how it ended are not recorded)".into(),
        ));
    }
    out.push(field("nodes", run.nodes().join(" ")));
    out.push(field(
        "started",
        run.start().map_or_else(|| "?".into(), human_time),
    ));
    out.push(field("ended", ended_text(run)));
    out.push(field(
        "commands",
        format!(
            "{} ({} non-zero or no end)",
            run.commands.len(),
            run.failures().len()
        ),
    ));
    if let Some(path) = timeline {
        out.push(field("timeline", path.display().to_string()));
    }
    out
}

/// How the run ended: its status and duration with its error, or what is known of a run
/// without a last line.
fn ended_text(run: &Run) -> String {
    match &run.end {
        Some(e) => {
            let mut text = format!(
                "{} after {}",
                status_text(run),
                human_duration(std::time::Duration::from_millis(e.ms),)
            );
            if let Some(error) = &e.error {
                text.push_str(&format!(": {}", error_summary(error)));
            }
            text
        }
        None => match run.last_activity() {
            Some(d) => format!(
                "{}: the last command ended at +{}",
                status_text(run),
                human_duration(d)
            ),
            None => format!("{}: no command ran", status_text(run)),
        },
    }
}

/// The non-zero exits and errors, the run's failure first.
fn failure_lines(run: &Run) -> Vec<String> {
    let failures = run.failures();
    if failures.is_empty() {
        return Vec::new();
    }
    let mut out = vec![String::new()];
    out.push(if failures.first().is_some_and(|(fatal, _)| *fatal) {
        "non-zero exits and errors, the run's failure first:".into()
    } else {
        "non-zero exits and errors (a non-zero exit may be an answer, e.g. fuser's 1):".into()
    });
    for (fatal, c) in &failures {
        let mut line = command_line(run, c, true);
        if *fatal {
            line.push_str("   ← the run failed here");
        }
        out.push(line);
    }
    out
}

/// One node's commands, in order.
fn node_lines(run: &Run, node: &str) -> Vec<String> {
    let mut commands: Vec<&Command> = run.commands.iter().filter(|c| c.node == node).collect();
    commands.sort_by_key(|c| run.offset(c));
    let failed = commands
        .iter()
        .filter(|c| history::outcome(c).failed())
        .count();
    let mut out = vec![String::new()];
    out.push(format!(
        "{node}: {} command{}{}",
        commands.len(),
        if commands.len() == 1 { "" } else { "s" },
        if failed > 0 {
            format!(", {failed} non-zero or no end")
        } else {
            String::new()
        }
    ));
    for c in commands {
        out.push(command_line(run, c, false));
    }
    out
}
