//! Output for people: on a terminal, one live line per node during a fan-out (indicatif); on
//! anything else, plain lines. Messages and progress go to stderr; the runbook's value, if
//! any, to stdout.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Level, Reporter};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors and warnings only.
    Quiet,
    /// Progress and messages.
    Normal,
    /// Also every command and its exit code.
    Verbose,
}

/// The reporter for a person at a terminal (or reading a log).
pub struct HumanReporter {
    verbosity: Verbosity,
    live: bool,
    state: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    failed: usize,
    total: usize,
    /// The last summary printed: a wait that polls every second repeats the same fan-out,
    /// and says so once, not once per round.
    last_summary: String,
}

impl HumanReporter {
    /// Live lines when stderr is a terminal and not quiet.
    pub fn new(verbosity: Verbosity) -> HumanReporter {
        HumanReporter {
            verbosity,
            live: std::io::stderr().is_terminal() && verbosity > Verbosity::Quiet,
            state: Mutex::default(),
        }
    }

    fn line(&self, text: &str) {
        let state = self.state.lock();
        match state.as_ref().ok().and_then(|s| s.multi.as_ref()) {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}

impl Reporter for HumanReporter {
    fn report(&self, event: Event) {
        match event {
            Event::Begin { label, nodes } => self.begin(label, &nodes),
            Event::Exec { node, command } => self.exec(&node, &command),
            Event::Done {
                node,
                command,
                code,
                ms,
                error,
                dry_run,
                ..
            } => self.done(&node, &command, code, ms, error.as_deref(), dry_run),
            Event::End { label } => self.end(&label),
            Event::Log { level, message } => self.log(level, &message),
            Event::Result { .. } => {}
        }
    }
}

impl HumanReporter {
    /// A fan-out begins: on a terminal, one live line per node.
    fn begin(&self, label: String, nodes: &[String]) {
        if !self.live || nodes.len() < 2 {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix:<16} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        for n in nodes {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(n.clone());
            bar.set_message(format!("waiting: {label}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            s.bars.insert(n.clone(), bar);
        }
        s.total = nodes.len();
        s.failed = 0;
        s.multi = Some(multi);
    }

    /// A command starts: its node's live line says so.
    fn exec(&self, node: &str, command: &str) {
        if let Ok(s) = self.state.lock()
            && let Some(bar) = s.bars.get(node)
        {
            bar.set_message(format!("running: {command}"));
        }
    }

    /// A command ended: its node's live line, or a plain line for a failure (and for every
    /// command with `--verbose`, every would-be command of a dry run).
    fn done(
        &self,
        node: &str,
        command: &str,
        code: Option<i32>,
        ms: u64,
        error: Option<&str>,
        dry_run: bool,
    ) {
        let outcome = match (error, code, dry_run) {
            (_, _, true) => "would run".to_string(),
            (Some(e), _, _) => format!("FAILED: {e}"),
            (None, Some(0), _) => format!("ok ({ms} ms)"),
            (None, Some(c), _) => format!("exit {c} ({ms} ms)"),
            (None, None, _) => "ended".to_string(),
        };
        let Ok(mut s) = self.state.lock() else { return };
        // A non-zero exit is an answer (a probe's "no"), not a failure to reach the node;
        // when it is a failure, the runbook's error says so.
        if error.is_some() {
            s.failed += 1;
        }
        if let Some(bar) = s.bars.get(node) {
            bar.set_message(format!("{outcome}: {command}"));
            return;
        }
        drop(s);
        if error.is_some() && self.verbosity >= Verbosity::Normal {
            // The error already names the node and the command.
            self.line(&outcome);
        } else if dry_run || self.verbosity >= Verbosity::Verbose {
            // A non-zero exit is often expected (a probe, a try_*); when it is a failure, the
            // raised error says so once, at the end.
            self.line(&format!("{node}: {outcome}: {command}"));
        }
    }

    /// A fan-out ended: the live lines give way to one summary (said once, not once per round
    /// of a polling wait).
    fn end(&self, label: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        let Some(m) = s.multi.take() else { return };
        for (_, bar) in s.bars.drain() {
            bar.finish_and_clear();
        }
        let _ = m.clear();
        let summary = if s.failed == 0 {
            format!("{label}: {} nodes done", s.total)
        } else {
            format!(
                "{label}: {} of {} nodes unreachable or timed out",
                s.failed, s.total
            )
        };
        if summary != s.last_summary {
            let _ = writeln!(std::io::stderr(), "{summary}");
            s.last_summary = summary;
        }
    }

    /// A runbook's message, by level: warnings always, information unless `-q`, debug with
    /// `--verbose`.
    fn log(&self, level: Level, message: &str) {
        let show = match level {
            Level::Warn => true,
            Level::Info => self.verbosity >= Verbosity::Normal,
            Level::Debug => self.verbosity >= Verbosity::Verbose,
        };
        if !show {
            return;
        }
        let prefix = if level == Level::Warn {
            "warning: "
        } else {
            ""
        };
        self.line(&format!("{prefix}{message}"));
        if let Ok(mut s) = self.state.lock() {
            s.last_summary.clear();
        }
    }
}
