//! The only module that knows Rhai: a sandboxed engine (limits on operations, call depth,
//! sizes and modules; no `eval`; `import` confined to the stdlib directories), one registration
//! file per primitive family, and the bridge from synchronous script calls to the async host.
//!
//! Host functions reach the run's [`Host`] through the engine's tag (`NativeCallContext::tag`),
//! so they can be plain `#[export_module]` functions whose doc comments become the generated
//! primitive reference.

pub mod apt;
pub mod budget;
pub mod call;
pub mod cluster;
pub mod control;
pub mod definitions;
pub mod error;
pub mod exec;
pub mod files;
pub mod health;
pub mod nodes;
pub mod options;
pub mod reference;
pub mod resolver;
pub mod secrets;
pub mod services;
pub mod steps;
pub mod target;
pub mod topology;
pub mod vms;

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map, Scope};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::report::{Event, Level};
use error::Sources;

/// The run's host, as the engine's tag.
#[derive(Clone)]
pub struct HostHandle(pub Arc<Host>);

/// A script to run: its text and the name errors show for it.
pub struct Script {
    /// What errors call it (a path, `runbooks/check.rhai`, `<eval>`).
    pub name: String,
    /// The source text.
    pub text: String,
}

/// Limits that keep a runaway script from taking the host down. Generous for runbooks (which
/// spend their time in primitives, not in loops), small enough to stop an accident.
fn limit(engine: &mut Engine) {
    engine
        .set_max_operations(50_000_000)
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(64 << 20)
        .set_max_array_size(1_000_000)
        .set_max_map_size(100_000)
        .set_max_modules(128)
        .set_max_variables(10_000)
        .set_max_functions(10_000);
    engine.disable_symbol("eval");
    engine.set_strict_variables(true);
}

/// The sandboxed engine with every primitive registered, but no host attached: it compiles
/// scripts (and is what `build` starts from).
pub fn unattached(site_stdlib: Option<PathBuf>, sources: Sources) -> Engine {
    let mut engine = Engine::new();
    limit(&mut engine);
    engine.set_module_resolver(resolver::StdlibResolver::new(site_stdlib, sources));
    register(&mut engine);
    engine
}

/// Build the engine for a run over `host`, importing from `site_stdlib` then the shipped stdlib.
pub fn build(host: Arc<Host>, site_stdlib: Option<PathBuf>, sources: Sources) -> Engine {
    let mut engine = unattached(site_stdlib, sources);
    // Ctrl-C stops the script at its next operation (primitives watch the same token), and so
    // does a runbook computing too long by itself.
    let budget = budget::Budget::new(host.clone(), budget::limit());
    engine.on_progress(move |ops| budget.check(ops));
    let h = host.clone();
    engine.on_print(move |s| {
        h.report(Event::Log {
            level: Level::Info,
            message: s.to_string(),
        })
    });
    let h = host.clone();
    engine.on_debug(move |s, _, _| {
        h.report(Event::Log {
            level: Level::Debug,
            message: s.to_string(),
        })
    });
    engine.set_default_tag(Dynamic::from(HostHandle(host)));
    engine
}

/// Every primitive family: its name, what it is for, and its script module. The one list
/// both the engine and the generated reference (`reference.rs`) are made from.
pub fn families() -> Vec<(&'static str, &'static str, rhai::Module)> {
    use rhai::exported_module;
    vec![
        (
            "nodes",
            "The target set and the `Node` type.",
            exported_module!(nodes::nodes_api),
        ),
        (
            "exec",
            "Running commands on nodes.",
            exported_module!(exec::exec_api),
        ),
        (
            "files",
            "Files on nodes.",
            exported_module!(files::files_api),
        ),
        ("apt", "Packages.", exported_module!(apt::apt_api)),
        (
            "services",
            "Init jobs (upstart or systemd) and SysV services.",
            exported_module!(services::services_api),
        ),
        (
            "vms",
            "Virtual machines and the VM record.",
            exported_module!(vms::vms_api),
        ),
        (
            "cluster",
            "The cloud agent: offline and online.",
            exported_module!(cluster::cluster_api),
        ),
        (
            "health",
            "A node's health before and after a step: dpkg, free space, the age of the apt lists, package sizes.",
            exported_module!(health::health_api),
        ),
        (
            "topology",
            "The cluster's topology (ids, Arakoon clusters and their members, what each node serves) and safe Arakoon restarts.",
            exported_module!(topology::topology_api),
        ),
        (
            "steps",
            "Steps in progress, for runs that converge when re-run.",
            exported_module!(steps::steps_api),
        ),
        (
            "control",
            "Messages, failures, confirmation, waiting, run options.",
            exported_module!(control::control_api),
        ),
        (
            "secrets",
            "Values that reach a node and nothing else: not the journal, the events, the errors.",
            exported_module!(secrets::secrets_api),
        ),
    ]
}

/// Register the types scripts see by name (`Node`, `Error`, `Secret`).
pub fn register_types(engine: &mut Engine) {
    engine.register_type_with_name::<crate::inventory::Node>("Node");
    engine.register_type_with_name::<error::ScriptError>("Error");
    engine.register_type_with_name::<crate::secret::Secret>("Secret");
}

/// Register every primitive family.
pub fn register(engine: &mut Engine) {
    register_types(engine);
    for (_, _, module) in families() {
        engine.register_global_module(module.into());
    }
}

/// Compile a script with every module it imports (resolved now, not when the `import` runs,
/// so that a missing or broken module is found before the first command), reporting what is
/// wrong at its file, line and column (exit 2).
pub fn compile(
    engine: &Engine,
    script: &Script,
    scope: &Scope,
    sources: &Sources,
) -> Result<rhai::AST> {
    sources.add(&script.name, &script.text);
    let mut ast = engine
        .compile_into_self_contained(scope, &script.text)
        .map_err(|e| match error::from_eval(&e, &script.name, sources) {
            syntax @ (Error::ScriptSyntax { .. } | Error::Usage(_)) => syntax,
            other => {
                let message = other.innermost().to_string();
                match other.location().cloned() {
                    Some(location) => Error::ScriptSyntax { location, message },
                    None => Error::ScriptSyntax {
                        location: crate::error::Location::of(
                            std::path::Path::new(&script.name),
                            &script.text,
                            0,
                        ),
                        message,
                    },
                }
            }
        })?;
    ast.set_source(script.name.as_str());
    Ok(ast)
}

/// The `opts` map scripts see: `--set key=value` pairs, values typed as bool or integer when
/// they read as one.
pub fn opts_map(pairs: &[(String, String)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| {
            let value = match v.as_str() {
                "true" => Dynamic::TRUE,
                "false" => Dynamic::FALSE,
                other => other
                    .parse::<i64>()
                    .map(Dynamic::from_int)
                    .unwrap_or_else(|_| other.into()),
            };
            (k.as_str().into(), value)
        })
        .collect()
}

/// A script's value as JSON (`()` is `null`).
pub fn to_json(value: &Dynamic) -> Result<serde_json::Value> {
    if value.is_unit() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("runbook value to JSON: {e}")))
}

/// Run a script to its end and return its value.
pub fn run(
    host: Arc<Host>,
    script: &Script,
    opts: Map,
    site_stdlib: Option<PathBuf>,
) -> Result<Dynamic> {
    let sources = Sources::default();
    let engine = build(host, site_stdlib, sources.clone());
    let mut scope = Scope::new();
    scope.push_constant("opts", opts);
    let ast = compile(&engine, script, &scope, &sources)?;
    engine
        .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
        .map_err(|e| error::from_eval(&e, &script.name, &sources))
}
