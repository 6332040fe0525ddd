//! Messages, failure, waiting and run options: `info`, `warn`, `fail`, `refuse`, `sleep`,
//! `dry_run`.

use rhai::plugin::*;

/// The script API for controlling a run.
#[export_module]
pub mod control_api {
    use std::time::Duration;

    use rhai::Dynamic;

    use crate::engine::call::{arg, host};
    use crate::engine::error::{ScriptError, raise};
    use crate::error::Error;
    use crate::report::{Event, Level};

    /// Tell the operator something (shown unless `-q`).
    #[rhai_fn(return_raw)]
    pub fn info(ctx: NativeCallContext, message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        let host = host(&ctx)?;
        host.report(Event::Log {
            level: Level::Info,
            message: message.to_string(),
        });
        Ok(())
    }

    /// Tell the operator how a runbook ended ("alba: updated on every node"). In a dry run,
    /// where nothing changed, it says so instead of claiming the outcome.
    #[rhai_fn(return_raw)]
    pub fn done(ctx: NativeCallContext, message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        let host = host(&ctx)?;
        let message = if host.dry_run {
            format!("dry run, nothing was changed; a real run would end with: {message}")
        } else {
            message.to_string()
        };
        host.report(Event::Log {
            level: Level::Info,
            message,
        });
        Ok(())
    }

    /// Warn the operator (always shown).
    #[rhai_fn(return_raw)]
    pub fn warn(ctx: NativeCallContext, message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        let host = host(&ctx)?;
        host.report(Event::Log {
            level: Level::Warn,
            message: message.to_string(),
        });
        Ok(())
    }

    /// Stop the runbook with an error (exit code 1).
    #[rhai_fn(return_raw)]
    pub fn fail(message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        Err(raise(Error::Script {
            message: message.to_string(),
        }))
    }

    /// Stop the runbook because a safety check does not hold (exit code 3). Say what to do.
    #[rhai_fn(return_raw)]
    pub fn refuse(message: Dynamic) -> Result<(), Box<EvalAltResult>> {
        Err(raise(Error::Refused(message.to_string())))
    }

    /// `refuse(message)`, with `value` as the run's value all the same (`--json` gives it in
    /// the result event): what `plan` does when something blocks.
    #[rhai_fn(name = "refuse", return_raw)]
    pub fn refuse_with(
        ctx: NativeCallContext,
        message: Dynamic,
        value: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let host = host(&ctx)?;
        let json = arg(&ctx, crate::engine::to_json(&value))?;
        host.keep_value(json);
        Err(raise(Error::Refused(message.to_string())))
    }

    /// Wait `seconds` (an integer or a decimal). Ctrl-C ends the wait.
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_int(ctx: NativeCallContext, seconds: i64) -> Result<(), Box<EvalAltResult>> {
        sleep_float(ctx, seconds as f64)
    }

    /// Wait `seconds` (an integer or a decimal). Ctrl-C ends the wait.
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_float(ctx: NativeCallContext, seconds: f64) -> Result<(), Box<EvalAltResult>> {
        let host = host(&ctx)?;
        if !(0.0..=86_400.0).contains(&seconds) {
            return arg(
                &ctx,
                Err(Error::argument(format!(
                    "expected 0 to 86400 seconds, found {seconds}"
                ))),
            );
        }
        let cancel = host.cancel.clone();
        let interrupted = host.block_on(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => false,
                _ = cancel.cancelled() => true,
            }
        });
        if interrupted {
            Err(raise(Error::Interrupted))
        } else {
            Ok(())
        }
    }

    /// Ask the operator to confirm before going on (e.g. before stopping VMs). `--yes` answers
    /// yes; on a terminal the operator types `y`; without a terminal and without `--yes` the
    /// run is refused (exit 3). In a dry run nothing is asked (nothing will change).
    #[rhai_fn(return_raw)]
    pub fn confirm(ctx: NativeCallContext, question: &str) -> Result<(), Box<EvalAltResult>> {
        use std::io::{BufRead, IsTerminal, Write};
        let host = host(&ctx)?;
        if host.dry_run || host.assume_yes {
            host.report(Event::Log {
                level: Level::Info,
                message: format!(
                    "{question} yes ({})",
                    if host.dry_run { "dry run" } else { "--yes" }
                ),
            });
            return Ok(());
        }
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Err(raise(Error::Refused(format!(
                "{question} — this needs a confirmation and there is no terminal to ask on: run again with --yes"
            ))));
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        let asked = std::time::Instant::now();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        host.waited(asked.elapsed());
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            Ok(())
        } else {
            Err(raise(Error::Refused(format!("{question} — not confirmed"))))
        }
    }

    /// True when the run was started with `--force` (guards warn instead of refusing).
    #[rhai_fn(return_raw)]
    pub fn forced(ctx: NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        Ok(host(&ctx)?.force)
    }

    /// True when the run was started with `--dry-run` (changes are printed, not made).
    #[rhai_fn(return_raw)]
    pub fn dry_run(ctx: NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        Ok(host(&ctx)?.dry_run)
    }

    /// The items of an array as text, joined by `separator` (`join(["a", "b"], ", ")` is
    /// `"a, b"`).
    #[rhai_fn(global)]
    pub fn join(items: rhai::Array, separator: &str) -> String {
        items
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// The text of a caught error.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn error_to_string(e: &mut ScriptError) -> String {
        e.message()
    }

    /// The text of a caught error.
    #[rhai_fn(global, get = "message", pure)]
    pub fn error_message(e: &mut ScriptError) -> String {
        e.message()
    }

    /// The node a caught error concerns (for a fan-out, the one node that failed), or `()`.
    #[rhai_fn(global, get = "node", pure)]
    pub fn error_node(e: &mut ScriptError) -> Dynamic {
        e.node()
    }

    /// Every node a caught error concerns (the failed nodes of a fan-out), as an array.
    #[rhai_fn(global, get = "nodes", pure)]
    pub fn error_nodes(e: &mut ScriptError) -> rhai::Array {
        e.nodes()
    }

    /// The kind of a caught error: `"remote"`, `"unreachable"`, `"timeout"`,
    /// `"unexpected_output"`, `"node_state"`, `"refused"`, `"argument"`, `"nodes"`, … (the list
    /// is in docs/errors.md).
    #[rhai_fn(global, get = "kind", pure)]
    pub fn error_kind(e: &mut ScriptError) -> String {
        e.kind()
    }

    /// The remote command of a caught error, or `()`.
    #[rhai_fn(global, get = "command", pure)]
    pub fn error_command(e: &mut ScriptError) -> Dynamic {
        e.command()
    }

    /// The remote exit code of a caught error, or `()`.
    #[rhai_fn(global, get = "code", pure)]
    pub fn error_code(e: &mut ScriptError) -> Dynamic {
        e.code()
    }

    /// The results of the nodes that succeeded before the error (node name → value).
    #[rhai_fn(global, get = "kept", pure)]
    pub fn error_kept(e: &mut ScriptError) -> rhai::Map {
        e.kept()
    }
}
