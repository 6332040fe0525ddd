//! `df --output=avail -B1 PATH…`: the free bytes of the filesystem under PATH, from the
//! node's `free_bytes` knob (the test nodes share the host's disk, so the real `df` would
//! answer the host's space). The header `Avail` is right-aligned to the widest value.

use std::fmt::Write as _;

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::state::DEFAULT_FREE_BYTES;

/// `df --output=avail -B1 PATH…` (the two options in either order).
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let paths = match args.as_slice() {
        ["--output=avail", "-B1", paths @ ..] | ["-B1", "--output=avail", paths @ ..]
            if !paths.is_empty() && paths.iter().all(|p| !p.starts_with('-')) =>
        {
            paths
        }
        _ => return SimOutput::not_simulated(&join(argv)),
    };
    let free = ctx.state.faults.free_bytes.unwrap_or(DEFAULT_FREE_BYTES);
    let mut out = SimOutput::default();
    let mut rows = Vec::new();
    for p in paths {
        if ctx.fs.kind(p).is_some() {
            rows.push(free.to_string());
        } else {
            let _ = writeln!(out.stderr, "df: {p}: No such file or directory");
            out.code = 1;
        }
    }
    if !rows.is_empty() {
        let width = rows.iter().map(String::len).max().unwrap_or(0).max(5);
        let _ = writeln!(out.stdout, "{:>width$}", "Avail");
        for r in rows {
            let _ = writeln!(out.stdout, "{r:>width$}");
        }
    }
    out
}
