//! `apt-get update|install`, `apt-cache policy` and `dpkg-query -W`: the package side of an
//! upgrade. Reproduces the apt 1.0 / 1.2 differences (version-table priorities,
//! `--force-yes`), the lock and dpkg failures, and the archive cache that makes a second
//! install of an already-downloaded `.deb` download nothing.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::fs::Kind;
use crate::sim::state::AptVariant;
use crate::sim::version;

/// The apt archive cache.
pub const ARCHIVES: &str = "/var/cache/apt/archives";
const REPO_URL: &str = "http://apt.openvstorage.org";
const LISTS_LOCK: &str = "E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock directory /var/lib/apt/lists/\n";
const DPKG_LOCK: &str = "E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n";
const ARCHIVES_LOCK: &str = "E: Could not get lock /var/cache/apt/archives/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock directory /var/cache/apt/archives/\n";
const FORCE_YES_DEPRECATED: &str =
    "W: --force-yes is deprecated, use one of the options starting with --allow instead.\n";
const HEADER: &str =
    "Reading package lists...\nBuilding dependency tree...\nReading state information...\n";

/// The path of a package's `.deb` in the archive cache.
pub fn deb_path(pkg: &str, version: &str) -> String {
    format!("{ARCHIVES}/{pkg}_{}_amd64.deb", version.replace(':', "%3a"))
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn glob_match(pattern: &str, name: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches(name),
        Err(_) => pattern == name,
    }
}

#[derive(Default)]
struct GetOpts {
    yes: bool,
    force_yes: bool,
    download_only: bool,
}

/// What `apt-get --version` prints first: the generations differ in their first line.
const VERSION_1_0: &str = "apt 1.0.1ubuntu2 for amd64 compiled on Jan 23 2019 18:56:44\n";
const VERSION_1_2: &str = "apt 1.2.35 (amd64)\n";
const VERSION_MODULES: &str = concat!(
    "Supported modules:\n",
    "*Ver: Standard .deb\n",
    "*Pkg:  Debian dpkg interface (Priority 30)\n",
    " Pkg:  Debian APT solver interface (Priority -1000)\n",
    " S.L: 'deb' Debian binary tree\n",
    " S.L: 'deb-src' Debian source tree\n",
    " Idx: Debian Source Index\n",
    " Idx: Debian Package Index\n",
    " Idx: Debian Translation Index\n",
    " Idx: Debian dpkg status file\n",
);

/// `apt-get --version`, `apt-get update` and
/// `apt-get install [-y] [--force-yes] [--download-only] [-q…] PKG…`.
pub fn apt_get(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    if matches!(argv, [_, v] if v == "--version" || v == "-v") {
        let first = match ctx.state.apt_variant {
            AptVariant::V1_0 => VERSION_1_0,
            AptVariant::V1_2 => VERSION_1_2,
        };
        return SimOutput::ok(format!("{first}{VERSION_MODULES}"));
    }
    let mut opts = GetOpts::default();
    let mut words: Vec<&str> = Vec::new();
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--yes" | "--assume-yes" => opts.yes = true,
            "--force-yes" => opts.force_yes = true,
            "--download-only" => opts.download_only = true,
            "--quiet" | "--no-install-recommends" => {}
            "-o" => match it.next() {
                Some(v) if v.starts_with("Dpkg::Options::=") => {}
                _ => return SimOutput::not_simulated(&join(argv)),
            },
            o if o.starts_with("-o") && o[2..].starts_with("Dpkg::Options::=") => {}
            o if o.starts_with('-') && !o.starts_with("--") && o.len() > 1 => {
                for c in o[1..].chars() {
                    match c {
                        'y' => opts.yes = true,
                        'd' => opts.download_only = true,
                        'q' => {}
                        _ => return SimOutput::not_simulated(&join(argv)),
                    }
                }
            }
            o if o.starts_with('-') => return SimOutput::not_simulated(&join(argv)),
            w => words.push(w),
        }
    }
    match words.split_first() {
        Some((&"update", [])) => update(ctx),
        Some((&"install", pkgs)) => install(ctx, &opts, pkgs),
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

fn update(ctx: &mut Ctx<'_>) -> SimOutput {
    if ctx.state.faults.apt_lock {
        return SimOutput::fail(100, LISTS_LOCK);
    }
    for pkg in ctx.state.packages.values_mut() {
        if let Some(newest) = pkg.newest_in_repository() {
            pkg.candidate = Some(newest.to_owned());
        }
    }
    let out = match ctx.state.apt_variant {
        AptVariant::V1_0 => format!(
            "Hit http://archive.ubuntu.com trusty Release.gpg\n\
             Hit http://archive.ubuntu.com trusty Release\n\
             Get:1 {REPO_URL} unstable Release [2,389 B]\n\
             Fetched 2,389 B in 0s (5,012 B/s)\n\
             Reading package lists... Done\n"
        ),
        AptVariant::V1_2 => format!(
            "Hit:1 http://archive.ubuntu.com/ubuntu xenial InRelease\n\
             Get:2 {REPO_URL} unstable InRelease [2,389 B]\n\
             Fetched 2,389 B in 0s (5,012 B/s)\n\
             Reading package lists... Done\n"
        ),
    };
    SimOutput::ok(out)
}

/// One package an install changes: from `old` (none: newly installed) to `new`.
struct Change {
    name: String,
    old: Option<String>,
    new: String,
}

/// `apt-get install`: lock, resolve the names, plan, confirm, fetch, unpack and configure.
/// Each phase appends to `out`; one that ends the command returns `None`.
fn install(ctx: &mut Ctx<'_>, opts: &GetOpts, args: &[&str]) -> SimOutput {
    let mut out = SimOutput::default();
    let _ = install_phases(ctx, opts, args, &mut out);
    out
}

fn install_phases(
    ctx: &mut Ctx<'_>,
    opts: &GetOpts,
    args: &[&str],
    out: &mut SimOutput,
) -> Option<()> {
    check_install_lock(ctx, opts, out)?;
    out.stdout.push_str(HEADER);
    let targets = resolve_targets(ctx, args, out)?;
    let changes = plan_changes(ctx, &targets, out);
    print_summary(ctx, &targets, &changes, out);
    if changes.is_empty() {
        return None;
    }
    confirm(ctx, opts, &changes, out)?;
    fetch_debs(ctx, &changes, out)?;
    if opts.download_only {
        out.stdout
            .push_str("Download complete and in download only mode\n");
        return None;
    }
    unpack_and_configure(ctx, &changes, out);
    Some(())
}

/// The `--force-yes` warning of apt 1.2, and the lock another process may hold.
fn check_install_lock(ctx: &Ctx<'_>, opts: &GetOpts, out: &mut SimOutput) -> Option<()> {
    if opts.force_yes && ctx.state.apt_variant == AptVariant::V1_2 {
        out.stderr.push_str(FORCE_YES_DEPRECATED);
    }
    if ctx.state.faults.apt_lock {
        out.stderr.push_str(if opts.download_only {
            ARCHIVES_LOCK
        } else {
            DPKG_LOCK
        });
        out.code = 100;
        return None;
    }
    Some(())
}

/// Resolves names and globs against what the lists know.
fn resolve_targets(ctx: &Ctx<'_>, args: &[&str], out: &mut SimOutput) -> Option<BTreeSet<String>> {
    let mut targets: BTreeSet<String> = BTreeSet::new();
    let unknown = |out: &mut SimOutput, arg: &str| {
        out.stderr
            .push_str(&format!("E: Unable to locate package {arg}\n"));
        out.code = 100;
    };
    for &arg in args {
        if is_glob(arg) {
            let hits: Vec<String> = ctx
                .state
                .packages
                .iter()
                .filter(|(n, p)| p.candidate.is_some() && glob_match(arg, n))
                .map(|(n, _)| n.clone())
                .collect();
            if hits.is_empty() {
                unknown(out, arg);
                return None;
            }
            let kind = match ctx.state.apt_variant {
                AptVariant::V1_0 => "regex",
                AptVariant::V1_2 => "glob",
            };
            for h in hits {
                let _ = writeln!(out.stdout, "Note, selecting '{h}' for {kind} '{arg}'");
                targets.insert(h);
            }
        } else if ctx
            .state
            .packages
            .get(arg)
            .is_some_and(|p| p.candidate.is_some())
        {
            targets.insert(arg.to_owned());
        } else {
            unknown(out, arg);
            return None;
        }
    }
    Some(targets)
}

/// What changes: every target whose candidate is not the installed version.
fn plan_changes(ctx: &Ctx<'_>, targets: &BTreeSet<String>, out: &mut SimOutput) -> Vec<Change> {
    let mut changes = Vec::new();
    for name in targets {
        let Some(p) = ctx.state.packages.get(name) else {
            continue;
        };
        let Some(cand) = p.candidate.clone() else {
            continue;
        };
        if p.installed.as_deref() == Some(cand.as_str()) {
            let _ = match ctx.state.apt_variant {
                AptVariant::V1_0 => writeln!(out.stdout, "{name} is already the newest version."),
                AptVariant::V1_2 => {
                    writeln!(out.stdout, "{name} is already the newest version ({cand}).")
                }
            };
        } else {
            changes.push(Change {
                name: name.clone(),
                old: p.installed.clone(),
                new: cand,
            });
        }
    }
    changes
}

/// The NEW / upgraded lists and the `N upgraded, …` line.
fn print_summary(
    ctx: &Ctx<'_>,
    targets: &BTreeSet<String>,
    changes: &[Change],
    out: &mut SimOutput,
) {
    let not_upgraded = ctx
        .state
        .packages
        .iter()
        .filter(|(n, p)| {
            !targets.contains(*n) && p.installed.is_some() && p.installed != p.candidate
        })
        .count();
    let upgraded: Vec<&str> = changes
        .iter()
        .filter(|c| c.old.is_some())
        .map(|c| c.name.as_str())
        .collect();
    let new: Vec<&str> = changes
        .iter()
        .filter(|c| c.old.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !new.is_empty() {
        let _ = writeln!(
            out.stdout,
            "The following NEW packages will be installed:\n  {}",
            new.join(" ")
        );
    }
    if !upgraded.is_empty() {
        let _ = writeln!(
            out.stdout,
            "The following packages will be upgraded:\n  {}",
            upgraded.join(" ")
        );
    }
    let _ = writeln!(
        out.stdout,
        "{} upgraded, {} newly installed, 0 to remove and {not_upgraded} not upgraded.",
        upgraded.len(),
        new.len()
    );
}

/// Without `-y` apt asks (and there is no terminal); apt 1.0 also wants `--force-yes` for
/// the unauthenticated repository.
fn confirm(ctx: &Ctx<'_>, opts: &GetOpts, changes: &[Change], out: &mut SimOutput) -> Option<()> {
    if !opts.yes {
        out.stdout
            .push_str("Do you want to continue? [Y/n] Abort.\n");
        out.code = 1;
        return None;
    }
    if ctx.state.apt_variant == AptVariant::V1_0 && !opts.force_yes {
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(
            out.stdout,
            "WARNING: The following packages cannot be authenticated!\n  {}",
            names.join(" ")
        );
        out.stderr
            .push_str("E: There are problems and -y was used without --force-yes\n");
        out.code = 100;
        return None;
    }
    Some(())
}

/// Fetches the `.deb` files the archive cache lacks.
fn fetch_debs(ctx: &mut Ctx<'_>, changes: &[Change], out: &mut SimOutput) -> Option<()> {
    let apt = ctx.state.apt_variant;
    let mut fetched = 0usize;
    for Change { name, new: ver, .. } in changes {
        let deb = deb_path(name, ver);
        if ctx.fs.kind(&deb) == Some(Kind::File) {
            continue;
        }
        fetched += 1;
        let _ = match apt {
            AptVariant::V1_0 => writeln!(
                out.stdout,
                "Get:{fetched} {REPO_URL}/ unstable/main {name} amd64 {ver} [1,024 kB]"
            ),
            AptVariant::V1_2 => writeln!(
                out.stdout,
                "Get:{fetched} {REPO_URL} unstable/main amd64 {name} amd64 {ver} [1,024 kB]"
            ),
        };
        if let Some(p) = ctx.state.packages.get_mut(name) {
            p.downloads += 1;
        }
        let written = ctx
            .fs
            .create_dir_all(ARCHIVES)
            .and_then(|()| ctx.fs.write(&deb, &format!("simulated {name} {ver}\n")));
        if let Err(e) = written {
            let _ = writeln!(out.stderr, "E: Could not write {deb}: {e}");
            out.code = 100;
            return None;
        }
    }
    if fetched > 0 {
        let _ = writeln!(out.stdout, "Fetched {},024 kB in 0s (10.2 MB/s)", fetched);
    }
    Some(())
}

/// dpkg: unpack every change, then configure each; a failing postinst fails the command.
fn unpack_and_configure(ctx: &mut Ctx<'_>, changes: &[Change], out: &mut SimOutput) {
    out.stdout
        .push_str("(Reading database ... 123456 files and directories currently installed.)\n");
    for Change { name, old, new } in changes {
        let _ = writeln!(
            out.stdout,
            "Preparing to unpack .../{name}_{new}_amd64.deb ..."
        );
        let _ = match old {
            Some(old) => writeln!(out.stdout, "Unpacking {name} ({new}) over ({old}) ..."),
            None => writeln!(out.stdout, "Unpacking {name} ({new}) ..."),
        };
    }
    let mut failed: Vec<&str> = Vec::new();
    for Change { name, new, .. } in changes {
        let _ = writeln!(out.stdout, "Setting up {name} ({new}) ...");
        if ctx.state.faults.failing_installs.iter().any(|f| f == name) {
            let _ = writeln!(
                out.stderr,
                "dpkg: error processing package {name} (--configure):\n subprocess installed post-installation script returned error exit status 1"
            );
            failed.push(name);
        } else if let Some(p) = ctx.state.packages.get_mut(name) {
            p.installed = Some(new.clone());
        }
    }
    if !failed.is_empty() {
        let _ = writeln!(
            out.stderr,
            "Errors were encountered while processing:\n {}",
            failed.join("\n ")
        );
        out.stderr
            .push_str("E: Sub-process /usr/bin/dpkg returned an error code (1)\n");
        out.code = 100;
    }
}

/// `apt-cache policy PKG…`.
pub fn apt_cache(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let [_, sub, pkgs @ ..] = argv else {
        return SimOutput::not_simulated(&join(argv));
    };
    if sub != "policy" || pkgs.is_empty() || pkgs.iter().any(|p| p.starts_with('-')) {
        return SimOutput::not_simulated(&join(argv));
    }
    let apt = ctx.state.apt_variant;
    let mut out = SimOutput::default();
    for name in pkgs {
        let known = ctx
            .state
            .packages
            .get(name.as_str())
            .filter(|p| p.installed.is_some() || p.candidate.is_some());
        let Some(p) = known else {
            if apt == AptVariant::V1_2 {
                let _ = writeln!(out.stderr, "N: Unable to locate package {name}");
            }
            continue;
        };
        let installed = p.installed.as_deref();
        let from_repo = p.candidate.as_deref();
        let candidate = from_repo.or(installed);
        let mut versions: Vec<&str> = installed.into_iter().chain(from_repo).collect();
        versions.sort_by(|a, b| version::compare(b, a));
        versions.dedup();
        let _ = writeln!(out.stdout, "{name}:");
        let _ = writeln!(out.stdout, "  Installed: {}", installed.unwrap_or("(none)"));
        let _ = writeln!(out.stdout, "  Candidate: {}", candidate.unwrap_or("(none)"));
        out.stdout.push_str("  Version table:\n");
        for v in versions {
            let marker = if Some(v) == installed {
                " *** "
            } else {
                "     "
            };
            let prio = match apt {
                AptVariant::V1_0 => 0,
                AptVariant::V1_2 if Some(v) == from_repo => 500,
                AptVariant::V1_2 => 100,
            };
            let _ = writeln!(out.stdout, "{marker}{v} {prio}");
            if Some(v) == from_repo {
                let _ = writeln!(
                    out.stdout,
                    "        500 {REPO_URL} unstable/main amd64 Packages"
                );
            }
            if Some(v) == installed {
                out.stdout.push_str("        100 /var/lib/dpkg/status\n");
            }
        }
    }
    out
}

/// Expands a dpkg-query `--showformat` for one installed package.
fn expand_format(fmt: &str, name: &str, version: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return None,
                    }
                }
                let (field, width) = match field.split_once(';') {
                    Some((f, w)) => (f.to_owned(), Some(w.trim().parse::<i32>().ok()?)),
                    None => (field, None),
                };
                let value = match field.as_str() {
                    "Package" | "binary:Package" => name.to_owned(),
                    "Version" => version.to_owned(),
                    "db:Status-Abbrev" => "ii ".to_owned(),
                    "Status" => "install ok installed".to_owned(),
                    "Architecture" => "amd64".to_owned(),
                    _ => String::new(),
                };
                match width {
                    Some(w) if w < 0 => {
                        let _ = write!(out, "{value:<width$}", width = w.unsigned_abs() as usize);
                    }
                    Some(w) => {
                        let _ = write!(out, "{value:>width$}", width = w as usize);
                    }
                    None => out.push_str(&value),
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// `dpkg-query -W [-f=FORMAT] [PATTERN…]`.
pub fn dpkg_query(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let mut show = false;
    let mut format = "${binary:Package}\t${Version}\n".to_owned();
    let mut patterns: Vec<&str> = Vec::new();
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-W" | "--show" => show = true,
            "-f" | "--showformat" => match it.next() {
                Some(f) => format = f.clone(),
                None => return SimOutput::not_simulated(&join(argv)),
            },
            o if o.starts_with("--showformat=") => format = o["--showformat=".len()..].to_owned(),
            o if o.starts_with("-f") => {
                format = o[2..].strip_prefix('=').unwrap_or(&o[2..]).to_owned()
            }
            o if o.starts_with("-W") && o.len() > 2 => {
                show = true;
                let rest = &o[2..];
                match rest.strip_prefix("f") {
                    Some(f) => format = f.strip_prefix('=').unwrap_or(f).to_owned(),
                    None => return SimOutput::not_simulated(&join(argv)),
                }
            }
            o if o.starts_with('-') => return SimOutput::not_simulated(&join(argv)),
            p => patterns.push(p),
        }
    }
    if !show {
        return SimOutput::not_simulated(&join(argv));
    }
    let mut out = SimOutput::default();
    let mut matched = vec![false; patterns.len()];
    for (name, p) in &ctx.state.packages {
        let Some(version) = p.installed.as_deref() else {
            continue;
        };
        let mut hit = patterns.is_empty();
        for (i, pat) in patterns.iter().enumerate() {
            if glob_match(pat, name) {
                matched[i] = true;
                hit = true;
            }
        }
        if hit {
            match expand_format(&format, name, version) {
                Some(s) => out.stdout.push_str(&s),
                None => return SimOutput::not_simulated(&join(argv)),
            }
        }
    }
    for (pat, m) in patterns.iter().zip(&matched) {
        if !m {
            let _ = writeln!(out.stderr, "dpkg-query: no packages found matching {pat}");
            out.code = 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn policy_before_and_after_update_apt12() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        let o = run(&n, "apt-cache policy alba nosuch");
        assert_eq!(o.code, 0);
        assert_eq!(
            o.stdout,
            "alba:\n  Installed: 0.9.17-1\n  Candidate: 0.9.17-1\n  Version table:\n \
             *** 0.9.17-1 500\n        500 http://apt.openvstorage.org unstable/main amd64 Packages\n\
             \x20       100 /var/lib/dpkg/status\n"
        );
        assert_eq!(o.stderr, "N: Unable to locate package nosuch\n");
        let u = run(&n, "apt-get update");
        assert_eq!(u.code, 0);
        assert!(u.stdout.starts_with("Hit:1 http://"), "{}", u.stdout);
        assert!(u.stdout.contains("Fetched 2,389 B in 0s (5,012 B/s)\n"));
        let o = run(&n, "apt-cache policy alba");
        assert_eq!(
            o.stdout,
            "alba:\n  Installed: 0.9.17-1\n  Candidate: 0.9.18-1\n  Version table:\n     0.9.18-1 500\n        500 http://apt.openvstorage.org unstable/main amd64 Packages\n *** 0.9.17-1 100\n        100 /var/lib/dpkg/status\n"
        );
    }

    #[test]
    fn policy_apt10_priority_zero() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let u = run(&n, "apt-get update");
        assert_eq!(u.code, 0);
        assert!(
            u.stdout
                .starts_with("Hit http://archive.ubuntu.com trusty Release.gpg\n")
        );
        assert!(
            u.stdout
                .ends_with("Fetched 2,389 B in 0s (5,012 B/s)\nReading package lists... Done\n")
        );
        let o = run(&n, "apt-cache policy alba nosuch");
        assert_eq!(
            o.stdout,
            "alba:\n  Installed: 0.9.17-1\n  Candidate: 0.9.18-1\n  Version table:\n     0.9.18-1 0\n        500 http://apt.openvstorage.org unstable/main amd64 Packages\n *** 0.9.17-1 0\n        100 /var/lib/dpkg/status\n"
        );
        assert_eq!(o.stderr, "");
    }

    #[test]
    fn dpkg_query_globs_and_misses() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        let o = run(
            &n,
            r"dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n' 'openvstorage*'",
        );
        assert_eq!(o.code, 0, "{o:?}");
        assert_eq!(
            o.stdout,
            "openvstorage\t2.7.2-rev.3735.aa53c43-1\tii \n\
             openvstorage-backend\t2.7.2-rev.3735.aa53c43-1\tii \n\
             openvstorage-core\t2.7.2-rev.3735.aa53c43-1\tii \n\
             openvstorage-webapps\t2.7.2-rev.3735.aa53c43-1\tii \n"
        );
        let o = run(&n, "dpkg-query -W 'foo*' alba");
        assert_eq!(o.code, 1);
        assert_eq!(o.stdout, "alba\t0.9.17-1\n");
        assert_eq!(o.stderr, "dpkg-query: no packages found matching foo*\n");
    }

    #[test]
    fn install_downloads_once_and_uses_cache() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        run(&n, "apt-get update");
        let o = run(&n, "apt-get install -y --download-only alba");
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            o.stdout
                .contains("Download complete and in download only mode")
        );
        let s = n.state().expect("state");
        assert_eq!(s.packages["alba"].downloads, 1);
        assert_eq!(s.packages["alba"].installed.as_deref(), Some("0.9.17-1"));
        assert_eq!(
            run(
                &n,
                "test -f /var/cache/apt/archives/alba_0.9.18-1_amd64.deb"
            )
            .code,
            0
        );
        let o = run(&n, "apt-get install -y alba");
        assert_eq!(o.code, 0, "{o:?}");
        assert!(!o.stdout.contains("Get:"));
        let s = n.state().expect("state");
        assert_eq!(s.packages["alba"].downloads, 1);
        assert_eq!(s.packages["alba"].installed.as_deref(), Some("0.9.18-1"));
        // No cached .deb: one download per install.
        let o = run(&n, "apt-get install -y -q arakoon");
        assert_eq!(o.code, 0);
        assert!(o.stdout.contains(
            "Get:1 http://apt.openvstorage.org unstable/main amd64 arakoon amd64 1.9.22-1"
        ));
        assert_eq!(n.state().expect("state").packages["arakoon"].downloads, 1);
        let o = run(&n, "apt-get install -y arakoon");
        assert!(
            o.stdout
                .contains("arakoon is already the newest version (1.9.22-1).\n")
        );
        assert_eq!(n.state().expect("state").packages["arakoon"].downloads, 1);
    }

    #[test]
    fn force_yes_variants_and_globs() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        run(&n, "apt-get update");
        let o = run(&n, "apt-get install -y alba");
        assert_eq!(o.code, 100);
        assert_eq!(
            o.stderr,
            "E: There are problems and -y was used without --force-yes\n"
        );
        let o = run(&n, "apt-get install -y --force-yes openvstorag*");
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            o.stdout
                .contains("Note, selecting 'openvstorage-core' for regex 'openvstorag*'\n")
        );
        assert_eq!(o.stderr, "");
        let s = n.state().expect("state");
        assert_eq!(
            s.packages["openvstorage-webapps"].installed.as_deref(),
            Some("2.7.3-rev.3802.9a4bd21-1")
        );
        let (_d, n) = node(Init::Systemd, AptVariant::V1_2);
        run(&n, "apt-get update");
        let o = run(&n, "apt-get install -y --force-yes alba");
        assert_eq!(o.code, 0);
        assert_eq!(
            o.stderr,
            "W: --force-yes is deprecated, use one of the options starting with --allow instead.\n"
        );
        let o = run(&n, "apt-get install -y nosuch");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (100, "E: Unable to locate package nosuch\n")
        );
    }

    #[test]
    fn lock_and_failing_install() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        n.update(|s| s.faults.apt_lock = true).expect("update");
        let o = run(&n, "apt-get update");
        assert_eq!(o.code, 100);
        assert!(o.stderr.starts_with(
            "E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)\n"
        ));
        let o = run(&n, "apt-get install -y alba");
        assert_eq!(o.code, 100);
        assert_eq!(
            o.stderr,
            "E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n"
        );
        n.update(|s| {
            s.faults.apt_lock = false;
            s.faults.failing_installs = vec!["alba".into()];
        })
        .expect("update");
        run(&n, "apt-get update");
        let o = run(&n, "apt-get install -y alba arakoon");
        assert_eq!(o.code, 100);
        assert!(
            o.stderr
                .ends_with("E: Sub-process /usr/bin/dpkg returned an error code (1)\n")
        );
        let s = n.state().expect("state");
        assert_eq!(s.packages["alba"].installed.as_deref(), Some("0.9.17-1"));
        assert_eq!(s.packages["arakoon"].installed.as_deref(), Some("1.9.22-1"));
    }

    #[test]
    fn version_first_line() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let o = run(&n, "apt-get --version");
        assert_eq!(o.code, 0);
        assert!(
            o.stdout
                .starts_with("apt 1.0.1ubuntu2 for amd64 compiled on ")
        );
        let (_d, n) = node(Init::Systemd, AptVariant::V1_2);
        let o = run(&n, "apt-get --version");
        assert!(
            o.stdout
                .starts_with("apt 1.2.35 (amd64)\nSupported modules:\n")
        );
    }

    #[test]
    fn without_yes_aborts() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        run(&n, "apt-get update");
        let o = run(&n, "apt-get install alba");
        assert_eq!(o.code, 1);
        assert!(
            o.stdout
                .ends_with("Do you want to continue? [Y/n] Abort.\n")
        );
    }
}
