//! Finding runbooks: a file path, a runbook of the site directory, or one shipped inside the
//! binary (`runbooks/*.rhai`). Site runbooks override shipped ones of the same name.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

use crate::engine::Script;
use crate::error::{Error, Result};

/// The runbooks shipped with ovsup.
pub static SHIPPED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/runbooks");

/// Where a runbook came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file named on the command line.
    File(PathBuf),
    /// The site runbook directory.
    Site(PathBuf),
    /// Shipped inside the binary.
    Shipped,
}

/// Find a runbook by name (`check`) or path (`./fix.rhai`, anything with `/` or ending `.rhai`).
pub fn find(spec: &str, site_dir: Option<&Path>) -> Result<(Script, Origin)> {
    if spec.ends_with(".rhai") || spec.contains('/') {
        let path = PathBuf::from(spec);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        return Ok((
            Script {
                name: spec.to_string(),
                text,
            },
            Origin::File(path),
        ));
    }
    if !spec
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Usage(format!(
            "{spec:?} is neither a runbook name (letters, digits, '-', '_') nor a .rhai file"
        )));
    }
    let file = format!("{spec}.rhai");
    if let Some(dir) = site_dir {
        let path = dir.join(&file);
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            return Ok((
                Script {
                    name: path.display().to_string(),
                    text,
                },
                Origin::Site(path),
            ));
        }
    }
    if let Some(text) = SHIPPED.get_file(&file).and_then(|f| f.contents_utf8()) {
        return Ok((
            Script {
                name: format!("runbooks/{file}"),
                text: text.to_string(),
            },
            Origin::Shipped,
        ));
    }
    let mut known: Vec<String> = SHIPPED
        .files()
        .filter_map(|f| {
            f.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    known.sort();
    Err(Error::Usage(format!(
        "no runbook named {spec:?} (site directory: {}; shipped: {})",
        site_dir.map_or("none".to_string(), |d| d.display().to_string()),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )))
}

/// A runbook as `ovsup list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// The first line of its `//!` header.
    pub description: String,
    /// Where it comes from (a site runbook hides the shipped one of the same name).
    pub origin: Origin,
}

/// The first `//!` line of a runbook: its one-line description.
pub fn description(text: &str) -> String {
    text.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix("//!"))
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

/// Every runbook: the site directory's, then the shipped ones it does not override; by name.
pub fn list(site_dir: Option<&Path>) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    if let Some(dir) = site_dir
        && dir.is_dir()
    {
        for item in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = item.map_err(|e| Error::io(dir, e))?.path();
            // `*.d.rhai` are definition files for editors (`ovsup definitions`), not runbooks.
            let definitions = path.to_string_lossy().ends_with(".d.rhai");
            if path.extension().is_none_or(|e| e != "rhai") || definitions {
                continue;
            }
            let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            entries.push(Entry {
                name,
                description: description(&text),
                origin: Origin::Site(path),
            });
        }
    }
    for file in SHIPPED.files() {
        let Some(name) = file
            .path()
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
        else {
            continue;
        };
        if entries.iter().any(|e| e.name == name) {
            continue;
        }
        entries.push(Entry {
            description: description(file.contents_utf8().unwrap_or_default()),
            name,
            origin: Origin::Shipped,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::Sources;

    /// No two stdlib modules define a function of the same name and arity: Rhai resolves a
    /// module's call to such a function to the one of a module it imports (seen: `describe`
    /// of `pending` answering for `prereqs`' own), so a collision silently calls the wrong one.
    #[test]
    fn stdlib_function_names_are_unique_across_modules() {
        let mut seen: std::collections::BTreeMap<(String, usize), String> = Default::default();
        for file in crate::engine::resolver::SHIPPED_STDLIB.files() {
            let text = file.contents_utf8().expect("UTF-8");
            for line in text.lines() {
                let Some(rest) = line.strip_prefix("fn ") else {
                    continue;
                };
                let Some((name, args)) = rest.split_once('(') else {
                    continue;
                };
                let args = args.split(')').next().unwrap_or("");
                let arity = args.split(',').filter(|a| !a.trim().is_empty()).count();
                let module = file.path().display().to_string();
                if let Some(other) = seen.insert((name.trim().to_string(), arity), module.clone()) {
                    panic!("{name}/{arity} is defined in both {other} and {module}");
                }
            }
        }
        assert!(seen.len() > 20, "{seen:?}");
    }

    /// Every shipped runbook and stdlib module compiles, and says what it does in its header.
    #[test]
    fn shipped_runbooks_and_stdlib_compile_and_describe_themselves() {
        let sources = Sources::default();
        let engine = crate::engine::unattached(None, sources.clone());
        let mut scope = rhai::Scope::new();
        scope.push_constant("opts", rhai::Map::new());
        let dirs = [
            ("runbooks", &SHIPPED),
            ("stdlib", &crate::engine::resolver::SHIPPED_STDLIB),
        ];
        let mut count = 0;
        for (dir, files) in dirs {
            for file in files.files() {
                let name = format!("{dir}/{}", file.path().display());
                let text = file.contents_utf8().expect("shipped files are UTF-8");
                assert!(
                    !description(text).is_empty(),
                    "{name} has no //! description"
                );
                let script = crate::engine::Script {
                    name: name.clone(),
                    text: text.to_string(),
                };
                let scope = if dir == "runbooks" {
                    scope.clone()
                } else {
                    rhai::Scope::new()
                };
                crate::engine::compile(&engine, &script, &scope, &sources)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                count += 1;
            }
        }
        assert!(count >= 11 + 5, "only {count} shipped files");
    }

    /// No two stdlib modules define a function of the same name and arity. Rhai 1.27 caches
    /// where an unqualified call resolved without telling modules apart, so once
    /// `pending::pending` had called its `describe(v)`, `prereqs::lines` called it too instead
    /// of its own `describe(b)` (a plan's refusal listed `()` for every blocker).
    #[test]
    fn stdlib_function_names_are_distinct_across_modules() {
        let sources = Sources::default();
        let engine = crate::engine::unattached(None, sources.clone());
        let mut seen: std::collections::BTreeMap<(String, usize), String> = Default::default();
        for file in crate::engine::resolver::SHIPPED_STDLIB.files() {
            let name = format!("stdlib/{}", file.path().display());
            let script = crate::engine::Script {
                name: name.clone(),
                text: file.contents_utf8().expect("UTF-8").to_string(),
            };
            let ast = crate::engine::compile(&engine, &script, &rhai::Scope::new(), &sources)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            for f in ast.iter_functions() {
                let key = (f.name.to_string(), f.params.len());
                if let Some(other) = seen.insert(key.clone(), name.clone()) {
                    panic!("{}/{} is defined in {other} and in {name}", key.0, key.1);
                }
            }
        }
        assert!(seen.len() > 20, "only {} stdlib functions", seen.len());
    }
}
