//! Errors across the Rhai boundary: host errors travel through a script as a [`ScriptError`]
//! value (so `try { … } catch (e)` sees node, command, exit code), and a failed script is turned
//! back into a typed [`Error`] with the innermost `file:line:col` — Rhai wraps the real
//! position of a failure inside a function or module in `ErrorInFunctionCall`/`ErrorInModule`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, EvalAltResult, Map, Position};

use crate::error::{Error, Location};

/// A host failure as a script sees it in `catch (e)`: `e.message`, `e.kind`, `e.node`,
/// `e.nodes`, `e.command`, `e.code`, `e.kept` (the results of the nodes that succeeded before
/// the failure was raised).
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// The typed error.
    pub error: Arc<Error>,
    /// Results of the nodes that did succeed, keyed by node name.
    pub kept: Map,
}

fn text_or_unit(value: Option<&str>) -> Dynamic {
    value.map_or(Dynamic::UNIT, |v| v.to_string().into())
}

impl ScriptError {
    /// The error's text.
    pub fn message(&mut self) -> String {
        self.error.to_string()
    }

    /// The kind of the error (docs/errors.md).
    pub fn kind(&mut self) -> String {
        self.error.kind().to_string()
    }

    /// The node, when the error concerns one node.
    pub fn node(&mut self) -> Dynamic {
        text_or_unit(self.error.node())
    }

    /// Every node the error concerns.
    pub fn nodes(&mut self) -> Array {
        self.error
            .nodes()
            .into_iter()
            .map(|n| Dynamic::from(n.to_string()))
            .collect()
    }

    /// The remote command, when one failed.
    pub fn command(&mut self) -> Dynamic {
        text_or_unit(self.error.command())
    }

    /// The remote exit code, when a remote command failed.
    pub fn code(&mut self) -> Dynamic {
        self.error
            .exit_code()
            .map_or(Dynamic::UNIT, |c| Dynamic::from_int(i64::from(c)))
    }

    /// The results kept from the nodes that succeeded.
    pub fn kept(&mut self) -> Map {
        self.kept.clone()
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Raise a host error inside a script.
pub fn raise(error: Error) -> Box<EvalAltResult> {
    raise_keeping(error, Map::new())
}

/// Raise a host error, keeping the results of the nodes that succeeded.
pub fn raise_keeping(error: Error, kept: Map) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(ScriptError {
            error: Arc::new(error),
            kept,
        }),
        Position::NONE,
    ))
}

/// The text of every script and module compiled in a run, by source name, for caret displays.
#[derive(Debug, Clone, Default)]
pub struct Sources(Arc<Mutex<HashMap<String, String>>>);

impl Sources {
    /// Remember the text of a source.
    pub fn add(&self, name: &str, text: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_string(), text.to_string());
        }
    }

    /// Where a source imports module `path` (`import "path"`): its name and the position of
    /// the path's string. Rhai resolves the imports of a whole runbook before running it and
    /// gives no position then; this finds the statement that asked.
    pub fn find_import(&self, path: &str) -> Option<(String, Position)> {
        let quoted = format!("\"{path}\"");
        let sources = self.0.lock().ok()?;
        let mut names: Vec<&String> = sources.keys().collect();
        names.sort();
        names.into_iter().find_map(|name| {
            sources[name].lines().enumerate().find_map(|(i, line)| {
                let at = line.find(&quoted)?;
                let before = line[..at].trim_end();
                before.ends_with("import").then(|| {
                    let column = line[..at].chars().count() + 1;
                    let pos = Position::new(
                        u16::try_from(i + 1).unwrap_or(u16::MAX),
                        u16::try_from(column).unwrap_or(u16::MAX),
                    );
                    (name.clone(), pos)
                })
            })
        })
    }

    /// The location of `pos` in `source`.
    pub fn locate(&self, source: &str, pos: Position) -> Option<Location> {
        let line = pos.line()?;
        let column = pos.position().unwrap_or(1);
        let source_line = self.0.lock().ok().and_then(|m| {
            m.get(source)
                .and_then(|t| t.lines().nth(line - 1).map(str::to_string))
        });
        Some(Location {
            file: PathBuf::from(source),
            line,
            column,
            source_line,
        })
    }
}

/// Turn a script failure into the typed error, located at its innermost position. A host
/// error keeps its kind and facts; Rhai's own runtime errors (a type mismatch, an unknown
/// function, too many operations) are [`Error::Script`]; what Rhai finds wrong in a runbook
/// before running it (a syntax error, an unknown module) is [`Error::ScriptSyntax`].
pub fn from_eval(err: &EvalAltResult, main_source: &str, sources: &Sources) -> Error {
    let (inner, source, pos) = innermost(err, main_source.to_string(), Position::NONE);
    let location = sources.locate(&source, pos);
    let script = |message: String| match &location {
        Some(_) => Error::Script { message },
        // Rhai gives some errors no position (a data race in a closure): name the file.
        None => Error::Script {
            message: format!("{source}: {message}"),
        },
    };
    let error = match inner {
        EvalAltResult::ErrorRuntime(value, _) => match value.read_lock::<ScriptError>() {
            Some(se) => (*se.error).clone(),
            None => script(value.to_string()),
        },
        EvalAltResult::ErrorTerminated(value, _)
            if value.clone().into_string().ok().as_deref() == Some(super::budget::OVER_BUDGET) =>
        {
            script(format!(
                "the runbook computed for more than {} s by itself (time spent in primitives \
                 does not count): a runaway loop? (limit: {}=SECONDS)",
                super::budget::limit().as_secs_f64(),
                super::budget::LIMIT_ENV
            ))
        }
        EvalAltResult::ErrorTerminated(..) => return Error::Interrupted,
        EvalAltResult::ErrorParsing(..) | EvalAltResult::ErrorModuleNotFound(..) => {
            let message = strip_position(&inner.to_string());
            return match location {
                Some(location) => Error::ScriptSyntax { location, message },
                None => Error::Usage(format!("{source}: {message}")),
            };
        }
        other => script(strip_position(&other.to_string())),
    };
    match error {
        // Ctrl-C is no place in a runbook.
        Error::Interrupted => Error::Interrupted,
        other => other.at(location),
    }
}

/// Walk wrappers down to the error that happened, tracking the source it happened in.
fn innermost(
    err: &EvalAltResult,
    source: String,
    outer: Position,
) -> (&EvalAltResult, String, Position) {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, fn_source, inner, pos) => {
            let src = if fn_source.is_empty() {
                source
            } else {
                fn_source.clone()
            };
            innermost(inner, src, *pos)
        }
        EvalAltResult::ErrorInModule(path, inner, pos) => {
            let (src, at) = if path.is_empty() {
                (source, *pos)
            } else {
                (path.clone(), Position::NONE)
            };
            innermost(inner, src, at)
        }
        other => {
            let pos = if other.position().is_none() {
                outer
            } else {
                other.position()
            };
            (other, source, pos)
        }
    }
}

/// Rhai appends " (line L, position P)" to messages; we print the position ourselves.
fn strip_position(text: &str) -> String {
    match text.rfind(" (line ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text.to_string(),
    }
}
