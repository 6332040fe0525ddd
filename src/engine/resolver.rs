//! `import` resolution, confined: a module comes from the site's stdlib directory (operators'
//! own or edited modules win) or from the `stdlib/` shipped inside the binary — nowhere else.
//! Module paths are plain names (`import "vms" as vms;`), never file paths.

use std::path::PathBuf;

use include_dir::{Dir, include_dir};
use rhai::{Engine, EvalAltResult, Module, Position, Scope, Shared};

use super::error::Sources;

/// The stdlib shipped with ovsup.
pub static SHIPPED_STDLIB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/stdlib");

/// Resolves `import "name"` to `<site>/name.rhai`, else the shipped `stdlib/name.rhai`.
pub struct StdlibResolver {
    site: Option<PathBuf>,
    sources: Sources,
}

impl StdlibResolver {
    /// A resolver over the site directory (if any).
    pub fn new(site: Option<PathBuf>, sources: Sources) -> StdlibResolver {
        StdlibResolver { site, sources }
    }

    /// The text and display name of module `name`.
    fn find(&self, name: &str) -> Option<(String, String)> {
        let file = format!("{name}.rhai");
        if let Some(site) = &self.site {
            let path = site.join(&file);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Some((path.display().to_string(), text));
            }
        }
        let shipped = SHIPPED_STDLIB.get_file(&file)?;
        Some((
            format!("stdlib/{file}"),
            shipped.contents_utf8()?.to_string(),
        ))
    }
}

/// A module name is letters, digits, `_` and `-` only: no path can escape the directories.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl rhai::ModuleResolver for StdlibResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let not_found = |what: String| {
            let err = |pos| Box::new(EvalAltResult::ErrorModuleNotFound(what.clone(), pos));
            match self.sources.find_import(path) {
                Some((source, at)) if pos.is_none() => Box::new(EvalAltResult::ErrorInModule(
                    source,
                    err(at),
                    Position::NONE,
                )),
                _ => err(pos),
            }
        };
        if !valid_name(path) {
            return Err(not_found(format!(
                "{path} (a module is named by letters, digits, '_' and '-'; it comes from the stdlib directories only)"
            )));
        }
        let Some((display, text)) = self.find(path) else {
            return Err(not_found(path.to_string()));
        };
        self.sources.add(&display, &text);
        let in_module =
            |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(display.clone(), e, pos));
        let mut ast = engine.compile(&text).map_err(|e| in_module(e.into()))?;
        ast.set_source(display.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        Ok(module.into())
    }
}
