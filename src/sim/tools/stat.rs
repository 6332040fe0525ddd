//! `stat -c FORMAT PATH…` for the node's health checks: the age of the apt lists is the
//! mtime of `/var/lib/apt/periodic/update-success-stamp`, which apt touches only after an
//! update that fetched every source. The stamp is answered from the node's state (the same
//! truth `apt-get update` writes, on both backends); other paths from the filesystem.
//! Formats: `%Y` (mtime, epoch seconds), `%s` (size), `%n` (name), `%%`.

use std::fmt::Write as _;

use super::apt::UPDATE_STAMP;
use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::fs::{Kind, normalize};

/// What `stat` needs of a path: size and mtime (seconds) when known.
struct Meta {
    size: u64,
    mtime: Option<u64>,
}

fn meta(ctx: &Ctx<'_>, path: &str) -> Option<Meta> {
    if normalize(path) == UPDATE_STAMP {
        return ctx.state.apt_updated_ms.map(|ms| Meta {
            size: 0,
            mtime: Some(ms / 1000),
        });
    }
    let size = match ctx.fs.kind(path)? {
        Kind::Dir => 4096,
        Kind::File => ctx.fs.read(path).map_or(0, |c| c.len() as u64),
    };
    Some(Meta {
        size,
        mtime: ctx.fs.mtime(path),
    })
}

/// Expands FORMAT for one path; `None` when a directive is not simulated.
fn expand(format: &str, path: &str, m: &Meta) -> Option<String> {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'Y' => out.push_str(&m.mtime?.to_string()),
            's' => out.push_str(&m.size.to_string()),
            'n' => out.push_str(path),
            '%' => out.push('%'),
            _ => return None,
        }
    }
    out.push('\n');
    Some(out)
}

/// `stat -c FORMAT PATH…` / `stat --format=FORMAT PATH…`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let (format, paths) = match args.as_slice() {
        ["-c" | "--format", f, paths @ ..] => (*f, paths),
        [f, paths @ ..] if f.starts_with("--format=") => (&f["--format=".len()..], paths),
        _ => return SimOutput::not_simulated(&join(argv)),
    };
    if paths.is_empty() || paths.iter().any(|p| p.starts_with('-')) {
        return SimOutput::not_simulated(&join(argv));
    }
    let mut out = SimOutput::default();
    for p in paths {
        match meta(ctx, p) {
            Some(m) => match expand(format, p, &m) {
                Some(line) => out.stdout.push_str(&line),
                None => return SimOutput::not_simulated(&join(argv)),
            },
            None => {
                let _ = writeln!(
                    out.stderr,
                    "stat: cannot stat '{p}': No such file or directory"
                );
                out.code = 1;
            }
        }
    }
    out
}
