//! `ovsup list`, `ovsup show NAME`, `ovsup edit NAME`: what runbooks there are, what one says,
//! and a site copy of a shipped one to change.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::runbooks::{self, Origin};

/// `ovsup list`.
pub fn list(config: &Config) -> Result<Outcome> {
    Ok(Outcome::Runbooks(runbooks::list(
        config.runbook_dir.as_deref(),
    )?))
}

/// `ovsup show NAME`.
pub fn show(config: &Config, name: &str) -> Result<Outcome> {
    let (script, _) = runbooks::find(name, config.runbook_dir.as_deref())?;
    Ok(Outcome::Text(script.text.trim_end().to_string()))
}

/// `ovsup edit NAME`: copy the shipped runbook into the site directory, never over a file.
pub fn edit(config: &Config, name: &str) -> Result<Outcome> {
    let Some(site) = config.edit_dir.as_deref() else {
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
    Ok(Outcome::Message(format!(
        "copied the shipped {name} runbook to {}: edit it there; it now overrides the shipped one",
        target.display()
    )))
}
