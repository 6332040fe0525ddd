//! `sh`, `cmd`, `query`, `try_sh`, `try_cmd`: running commands from a script.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use super::error::{raise, raise_keeping};
use super::target::Target;
use crate::error::{Error, Result};
use crate::host::{Effect, all_ok};
use crate::primitives::exec::{Check, run};
use crate::transport::Output;

fn output_map(out: &Output) -> Dynamic {
    let mut m = Map::new();
    m.insert("code".into(), Dynamic::from_int(i64::from(out.code)));
    m.insert("stdout".into(), out.stdout.clone().into());
    m.insert("stderr".into(), out.stderr.clone().into());
    m.into()
}

fn argv_line(argv: Array) -> Result<String, Box<EvalAltResult>> {
    let words: Vec<String> = argv
        .into_iter()
        .map(|v| {
            if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
                Ok(v.to_string())
            } else {
                Err(raise(Error::Usage(format!(
                    "a command argument must be a string or a number, found {}",
                    v.type_name()
                ))))
            }
        })
        .collect::<Result<_, _>>()?;
    crate::quote::join(&words).map_err(raise)
}

/// Run and raise on failure: the value is stdout (per node for an array).
fn checked(
    ctx: &NativeCallContext,
    target: Dynamic,
    line: &str,
    effect: Effect,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let host = super::host(ctx)?;
    let target = Target::from_dynamic(&host, target)?;
    let results = host.block_on(run(
        &host,
        &target.nodes,
        line,
        effect,
        Check::ExitZero,
        None,
    ));
    let kept: Map = results
        .iter()
        .filter_map(|(n, r)| {
            r.as_ref()
                .ok()
                .map(|o| (n.as_str().into(), o.stdout.clone().into()))
        })
        .collect();
    match all_ok(results) {
        Ok(values) => Ok(target.shape(
            values
                .into_iter()
                .map(|(n, o)| (n, Dynamic::from(o.stdout)))
                .collect(),
        )),
        Err(e) => Err(raise_keeping(e, kept)),
    }
}

/// Run and return every outcome: `#{code, stdout, stderr}` per node; an unreachable or
/// timed-out node gives `#{code: -1, stdout: "", stderr: "", error: "…"}`.
fn tolerant(
    ctx: &NativeCallContext,
    target: Dynamic,
    line: &str,
    effect: Effect,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let host = super::host(ctx)?;
    let target = Target::from_dynamic(&host, target)?;
    let results = host.block_on(run(
        &host,
        &target.nodes,
        line,
        effect,
        Check::Nothing,
        None,
    ));
    let mut values = Vec::with_capacity(results.len());
    for (name, r) in results {
        let value = match r {
            Ok(out) => output_map(&out),
            Err(Error::Interrupted) => return Err(raise(Error::Interrupted)),
            Err(e) => {
                let mut m = Map::new();
                m.insert("code".into(), Dynamic::from_int(-1));
                m.insert("stdout".into(), "".into());
                m.insert("stderr".into(), "".into());
                m.insert("error".into(), e.to_string().into());
                m.into()
            }
        };
        values.push((name, value));
    }
    Ok(target.shape(values))
}

/// Interpret a `Result` of the library inside a script.
pub fn script_result<T>(r: Result<T>) -> Result<T, Box<EvalAltResult>> {
    r.map_err(raise)
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
        checked(&ctx, target, line, Effect::Change)
    }

    /// Run a program with arguments (`["virsh", "start", name]`), each argument quoted for the
    /// remote shell, so names with spaces, quotes, `$` or `;` arrive as one word. Otherwise as
    /// `sh`.
    #[rhai_fn(return_raw)]
    pub fn cmd(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = argv_line(argv)?;
        checked(&ctx, target, &line, Effect::Change)
    }

    /// Like `sh`, for a command that only reads the node: it runs in `--dry-run` too.
    #[rhai_fn(return_raw)]
    pub fn query(
        ctx: NativeCallContext,
        target: Dynamic,
        line: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        checked(&ctx, target, line, Effect::Read)
    }

    /// Like `cmd`, for a command that only reads the node: it runs in `--dry-run` too.
    #[rhai_fn(name = "query", return_raw)]
    pub fn query_argv(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = argv_line(argv)?;
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
        tolerant(&ctx, target, line, Effect::Change)
    }

    /// `try_sh` for an argument vector (each argument quoted).
    #[rhai_fn(return_raw)]
    pub fn try_cmd(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = argv_line(argv)?;
        tolerant(&ctx, target, &line, Effect::Change)
    }

    /// `try_sh` for a read-only command: runs in `--dry-run` too.
    #[rhai_fn(return_raw)]
    pub fn try_query(
        ctx: NativeCallContext,
        target: Dynamic,
        line: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        tolerant(&ctx, target, line, Effect::Read)
    }

    /// `try_query` for an argument vector.
    #[rhai_fn(name = "try_query", return_raw)]
    pub fn try_query_argv(
        ctx: NativeCallContext,
        target: Dynamic,
        argv: Array,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = argv_line(argv)?;
        tolerant(&ctx, target, &line, Effect::Read)
    }

    /// Quote an argument vector as shell text, as `cmd` would send it.
    #[rhai_fn(return_raw)]
    pub fn shell_quote(argv: Array) -> Result<String, Box<EvalAltResult>> {
        argv_line(argv)
    }
}
