//! `sh`, `cmd`, `query`, `try_sh`, `try_cmd`: running commands from a script.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use super::call::{Raised, arg, fan_out, raise_in};
use crate::error::{Error, Result};
use crate::host::{Effect, interrupted};
use crate::primitives::exec::{Check, run};
use crate::secret::{CommandLine, Secret, Word, refuse_shown_secret};
use crate::transport::Output;

fn output_map(out: &Output) -> Dynamic {
    let mut m = Map::new();
    m.insert("code".into(), Dynamic::from_int(i64::from(out.code)));
    m.insert("stdout".into(), out.stdout.clone().into());
    m.insert("stderr".into(), out.stderr.clone().into());
    m.into()
}

/// The words of an argument vector: strings, numbers and booleans as text, `secret()`s as
/// secrets.
fn argv_words(argv: Array) -> Result<Vec<Word>> {
    argv.into_iter()
        .map(|v| {
            if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
                let word = v.to_string();
                refuse_shown_secret(&word)?;
                Ok(Word::Plain(word))
            } else if let Some(secret) = v.clone().try_cast::<Secret>() {
                Ok(Word::Secret(secret))
            } else {
                Err(Error::argument(format!(
                    "a command argument must be a string, a number or a secret(), found {}",
                    v.type_name()
                )))
            }
        })
        .collect()
}

/// Shell text a script wrote, refused when a secret became text in it.
fn shell_line(line: &str) -> Result<CommandLine> {
    refuse_shown_secret(line)?;
    Ok(CommandLine::plain(line))
}

/// Run and raise on failure: the value is stdout (per node for an array).
fn checked(
    ctx: &NativeCallContext,
    target: Dynamic,
    line: &CommandLine,
    effect: Effect,
) -> Result<Dynamic, Raised> {
    fan_out(
        ctx,
        target,
        async |host, nodes| Ok(run(host, nodes, line, effect, Check::ExitZero, None).await),
        |o| Dynamic::from(o.stdout),
    )
}

/// Run and return every outcome: `#{code, stdout, stderr}` per node; an unreachable or
/// timed-out node gives `#{code: -1, stdout: "", stderr: "", error: "…"}`. Only Ctrl-C raises.
fn tolerant(
    ctx: &NativeCallContext,
    target: Dynamic,
    line: &CommandLine,
    effect: Effect,
) -> Result<Dynamic, Raised> {
    fan_out(
        ctx,
        target,
        async |host, nodes| {
            let results = run(host, nodes, line, effect, Check::Nothing, None).await;
            interrupted(&results)?;
            Ok(results
                .into_iter()
                .map(|(node, r)| {
                    let value = match r {
                        Ok(out) => output_map(&out),
                        Err(e) => {
                            let mut m = Map::new();
                            m.insert("code".into(), Dynamic::from_int(-1));
                            m.insert("stdout".into(), "".into());
                            m.insert("stderr".into(), "".into());
                            m.insert("error".into(), e.to_string().into());
                            m.into()
                        }
                    };
                    (node, Ok(value))
                })
                .collect())
        },
        |v| v,
    )
}

/// The command line of an argument vector, raised from the primitive being called.
fn line_of(ctx: &NativeCallContext, argv: Array) -> Result<CommandLine, Raised> {
    arg(ctx, argv_words(argv).and_then(|w| CommandLine::argv(&w)))
}

/// The command line of shell text, raised from the primitive being called.
fn text_of(ctx: &NativeCallContext, line: &str) -> Result<CommandLine, Raised> {
    arg(ctx, shell_line(line))
}

/// The script API for running commands.
#[export_module]
pub mod exec_api {
    use super::*;

    /// Run shell text on a node (or on every node of an array, in parallel) and return its
    /// standard output (a map node name → stdout for an array). A non-zero exit raises an
    /// error naming the node, the command, the exit code and the tail of stderr; an unreachable
    /// node or a command past its timeout raises too. With `--dry-run` the command is only
    /// printed. Use for shell text you write yourself; pass names with `cmd`.
    #[rhai_fn(return_raw)]
    pub fn sh(
        ctx: NativeCallContext,
        target: Dynamic,
        line: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = text_of(&ctx, line)?;
        checked(&ctx, target, &line, Effect::Change)
    }

    /// Run a program with arguments (`["virsh", "start", name]`), each argument quoted for the
    /// remote shell, so names with spaces, quotes, `$` or `;` arrive as one word. A word may
    /// be a `secret()`: sent as it is, shown as `<secret>`. Otherwise as `sh`.
    #[rhai_fn(return_raw)]
    pub fn cmd(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = line_of(&ctx, argv)?;
        checked(&ctx, target, &line, Effect::Change)
    }

    /// Like `sh`, for a command that only reads the node: it runs in `--dry-run` too.
    #[rhai_fn(return_raw)]
    pub fn query(
        ctx: NativeCallContext,
        target: Dynamic,
        line: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = text_of(&ctx, line)?;
        checked(&ctx, target, &line, Effect::Read)
    }

    /// Like `cmd`, for a command that only reads the node: it runs in `--dry-run` too.
    #[rhai_fn(name = "query", return_raw)]
    pub fn query_argv(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = line_of(&ctx, argv)?;
        checked(&ctx, target, &line, Effect::Read)
    }

    /// Run shell text and return `#{code, stdout, stderr}` (per node for an array) whatever the
    /// exit code; never raises for a remote failure. An unreachable node gives `code: -1` and
    /// an `error` text. Every node runs, even when others fail.
    #[rhai_fn(return_raw)]
    pub fn try_sh(
        ctx: NativeCallContext,
        target: Dynamic,
        line: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = text_of(&ctx, line)?;
        tolerant(&ctx, target, &line, Effect::Change)
    }

    /// `try_sh` for an argument vector (each argument quoted).
    #[rhai_fn(return_raw)]
    pub fn try_cmd(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = line_of(&ctx, argv)?;
        tolerant(&ctx, target, &line, Effect::Change)
    }

    /// `try_sh` for a read-only command: runs in `--dry-run` too.
    #[rhai_fn(return_raw)]
    pub fn try_query(
        ctx: NativeCallContext,
        target: Dynamic,
        line: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = text_of(&ctx, line)?;
        tolerant(&ctx, target, &line, Effect::Read)
    }

    /// `try_query` for an argument vector.
    #[rhai_fn(name = "try_query", return_raw)]
    pub fn try_query_argv(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = line_of(&ctx, argv)?;
        tolerant(&ctx, target, &line, Effect::Read)
    }

    /// Quote an argument vector as shell text, as `cmd` would send it. A `secret()` cannot
    /// become text: an argument vector holding one is refused (pass it to `cmd`).
    #[rhai_fn(return_raw)]
    pub fn shell_quote(ctx: NativeCallContext, argv: Array) -> Result<String, Box<EvalAltResult>> {
        let line = line_of(&ctx, argv)?;
        if line.has_secret() {
            return Err(raise_in(
                &ctx,
                Error::argument("a secret() cannot become text: pass the words to cmd"),
            ));
        }
        Ok(line.sent().to_string())
    }

    /// `sh` for shell text holding a `secret()` (`"echo " + s + " | chpasswd"`): the node gets
    /// the text, everything else sees `<secret>` in its place.
    #[rhai_fn(name = "sh", return_raw)]
    pub fn sh_secret(
        ctx: NativeCallContext,
        target: Dynamic,
        secret: Secret,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        checked(&ctx, target, &CommandLine::shell(&secret), Effect::Change)
    }

    /// `query` for shell text holding a `secret()`.
    #[rhai_fn(name = "query", return_raw)]
    pub fn query_secret(
        ctx: NativeCallContext,
        target: Dynamic,
        secret: Secret,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        checked(&ctx, target, &CommandLine::shell(&secret), Effect::Read)
    }

    /// `try_sh` for shell text holding a `secret()`.
    #[rhai_fn(name = "try_sh", return_raw)]
    pub fn try_sh_secret(
        ctx: NativeCallContext,
        target: Dynamic,
        secret: Secret,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        tolerant(&ctx, target, &CommandLine::shell(&secret), Effect::Change)
    }

    /// `try_query` for shell text holding a `secret()`.
    #[rhai_fn(name = "try_query", return_raw)]
    pub fn try_query_secret(
        ctx: NativeCallContext,
        target: Dynamic,
        secret: Secret,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        tolerant(&ctx, target, &CommandLine::shell(&secret), Effect::Read)
    }
}
