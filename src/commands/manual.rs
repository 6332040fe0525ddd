//! What goes around ovsup on an operator's machine, generated from ovsup itself: shell
//! completions and the man page from the one clap definition of the command line
//! (`clap_complete`, `clap_mangen`), and Rhai definition files for editors from the
//! registered primitives and the shipped stdlib ([`crate::engine::definitions`]).

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::outcome::Outcome;

/// `ovsup completions SHELL`: the completion script.
pub fn completions(shell: clap_complete::Shell) -> Result<Outcome> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "ovsup", &mut script);
    text(script)
}

/// `ovsup man`: the man page, as roff.
pub fn man() -> Result<Outcome> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Error::Internal(format!("rendering the man page: {e}")))?;
    text(page)
}

fn text(bytes: Vec<u8>) -> Result<Outcome> {
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::Internal(format!("generated text is not UTF-8: {e}")))?;
    Ok(Outcome::Text(text.trim_end().to_string()))
}

/// `ovsup definitions DIR`: the `.d.rhai` files written into `dir`.
pub fn definitions(dir: &Path) -> Result<Outcome> {
    let written = crate::engine::definitions::write(dir)?;
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    Ok(Outcome::Message(format!(
        "wrote {} Rhai definition files into {}: {}",
        names.len(),
        dir.display(),
        names.join(", ")
    )))
}
