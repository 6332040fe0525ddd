//! `ovsup list`, `ovsup show NAME`, `ovsup edit NAME`: what runbooks there are, what one says,
//! and a site copy of a shipped one to change.

use std::path::Path;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::runbooks::{self, Origin};

/// `ovsup list`.
pub fn list(g: &Global, site: Option<&Path>) -> Result<serde_json::Value> {
    let entries = runbooks::list(site)?;
    let origin = |o: &Origin| match o {
        Origin::Shipped => "shipped".to_string(),
        Origin::Site(p) | Origin::File(p) => p.display().to_string(),
    };
    if g.json {
        return Ok(serde_json::Value::Array(
            entries
                .iter()
                .map(|e| {
                    serde_json::json!({"name": e.name, "description": e.description, "origin": origin(&e.origin)})
                })
                .collect(),
        ));
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    Ok(serde_json::Value::String(
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
    ))
}

/// `ovsup show NAME`.
pub fn show(name: &str, site: Option<&Path>) -> Result<serde_json::Value> {
    let (script, _) = runbooks::find(name, site)?;
    Ok(serde_json::Value::String(
        script.text.trim_end().to_string(),
    ))
}

/// `ovsup edit NAME`: copy the shipped runbook into the site directory, never over a file.
pub fn edit(name: &str, site: Option<&Path>) -> Result<serde_json::Value> {
    let Some(site) = site else {
        return Err(Error::Usage(
            "no site runbook directory: give --runbook-dir DIR (or -i INVENTORY: runbooks/ beside it)".into(),
        ));
    };
    let target = site.join(format!("{name}.rhai"));
    if target.exists() {
        return Err(Error::Usage(format!(
            "{} exists already: edit it there (remove it to go back to the shipped runbook)",
            target.display()
        )));
    }
    let (script, origin) = runbooks::find(name, None)?;
    if origin != Origin::Shipped {
        return Err(Error::Usage(format!("{name:?} is not a shipped runbook")));
    }
    std::fs::create_dir_all(site).map_err(|e| Error::io(site, e))?;
    std::fs::write(&target, script.text).map_err(|e| Error::io(&target, e))?;
    Ok(serde_json::Value::String(format!(
        "copied the shipped {name} runbook to {}: edit it there; it now overrides the shipped one",
        target.display()
    )))
}
