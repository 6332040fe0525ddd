//! `apt-get update|install`, `apt-cache policy` and `dpkg-query -W`: the package side of an
//! upgrade. Reproduces the apt 1.0 / 1.2 differences (version-table priorities,
//! `--force-yes`), the lock and dpkg failures, and the archive cache that makes a second
//! install of an already-downloaded `.deb` download nothing.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::fs::Kind;
use crate::sim::state::{AptVariant, PkgStatus};

/// The apt archive cache.
pub const ARCHIVES: &str = "/var/cache/apt/archives";
/// The Open vStorage repository's URL.
pub const REPO_URL: &str = "http://apt.openvstorage.org";
const LISTS_LOCK: &str = "E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock directory /var/lib/apt/lists/\n";
const DPKG_LOCK: &str = "E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n";
const ARCHIVES_LOCK: &str = "E: Could not get lock /var/cache/apt/archives/lock - open (11: Resource temporarily unavailable)\nE: Unable to lock directory /var/cache/apt/archives/\n";
const INTERRUPTED: &str = "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. \n";
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

pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
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

/// The options and words of an `apt-get` command line; `None` for an option not simulated.
fn parse_get(argv: &[String]) -> Option<(GetOpts, Vec<&str>)> {
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
                _ => return None,
            },
            o if o.starts_with("-o") && o[2..].starts_with("Dpkg::Options::=") => {}
            o if o.starts_with('-') && !o.starts_with("--") && o.len() > 1 => {
                for c in o[1..].chars() {
                    match c {
                        'y' => opts.yes = true,
                        'd' => opts.download_only = true,
                        'q' => {}
                        _ => return None,
                    }
                }
            }
            o if o.starts_with('-') => return None,
            w => words.push(w),
        }
    }
    Some((opts, words))
}

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
    let Some((opts, words)) = parse_get(argv) else {
        return SimOutput::not_simulated(&join(argv));
    };
    match words.split_first() {
        Some((&"update", [])) => update(ctx),
        Some((&"install", pkgs)) => install(ctx, &opts, pkgs),
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

/// How many `.deb` files `apt-get install …` would fetch now (0 for any other command, or
/// one that fails before fetching): the simulator sleeps that many fetch times first.
pub fn pending_fetches(ctx: &Ctx<'_>, argv: &[String]) -> usize {
    let Some((opts, words)) = parse_get(argv) else {
        return 0;
    };
    let Some((&"install", args)) = words.split_first() else {
        return 0;
    };
    let mut scratch = SimOutput::default();
    if check_install_lock(ctx, &opts, &mut scratch).is_none() || !opts.yes {
        return 0;
    }
    let Some(targets) = resolve_targets(ctx, args, &mut scratch) else {
        return 0;
    };
    plan_changes(ctx, &targets, &mut scratch)
        .iter()
        .filter(|c| ctx.fs.kind(&deb_path(&c.name, &c.new)) != Some(Kind::File))
        .count()
}

/// The stamp apt touches after an update that fetched every source (what `stat` shows).
pub const UPDATE_STAMP: &str = "/var/lib/apt/periodic/update-success-stamp";

/// `apt-get update`: the lists learn the repository's newest versions, and the stamp is
/// touched — unless the Open vStorage source fails (`failing_sources`): then its lists stay
/// as they were, the stamp is not touched, apt 1.0 warns and exits 0, apt 1.2 exits 100.
fn update(ctx: &mut Ctx<'_>) -> SimOutput {
    if ctx.state.faults.apt_lock_held(ctx.now_ms) {
        return SimOutput::fail(100, LISTS_LOCK);
    }
    if ctx.state.faults.failing_sources {
        return failed_update(ctx.state.apt_variant);
    }
    for pkg in ctx.state.packages.values_mut() {
        if let Some(newest) = pkg.newest_in_repository() {
            pkg.candidate = Some(newest.to_owned());
        }
    }
    ctx.state.apt_updated_ms = Some(ctx.now_ms);
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

/// The Open vStorage source answers 404 (a repository moved or a distribution dropped).
fn failed_update(apt: AptVariant) -> SimOutput {
    let packages = format!("{REPO_URL}/dists/unstable/main/binary-amd64/Packages");
    match apt {
        AptVariant::V1_0 => SimOutput {
            code: 0,
            stdout: format!(
                "Hit http://archive.ubuntu.com trusty Release.gpg\n\
                 Hit http://archive.ubuntu.com trusty Release\n\
                 Err {REPO_URL} unstable/main amd64 Packages\n  404  Not Found\n\
                 Fetched 0 B in 0s (0 B/s)\n\
                 Reading package lists... Done\n"
            ),
            stderr: format!(
                "W: Failed to fetch {packages}  404  Not Found\n\n\
                 E: Some index files failed to download. They have been ignored, or old ones used instead.\n"
            ),
        },
        AptVariant::V1_2 => SimOutput {
            code: 100,
            stdout: format!(
                "Hit:1 http://archive.ubuntu.com/ubuntu xenial InRelease\n\
                 Ign:2 {REPO_URL} unstable InRelease\n\
                 Err:3 {REPO_URL} unstable Release\n  404  Not Found\n\
                 Reading package lists... Done\n"
            ),
            stderr: format!(
                "W: The repository '{REPO_URL} unstable Release' does not have a Release file.\n\
                 N: Data from such a repository can't be authenticated and is therefore potentially dangerous to use.\n\
                 N: See apt-secure(8) manpage for repository creation and user configuration details.\n\
                 E: Failed to fetch {packages}  404  Not Found\n\
                 E: Some index files failed to download. They have been ignored, or old ones used instead.\n"
            ),
        },
    }
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

/// The `--force-yes` warning of apt 1.2, the lock another process may hold, and a dpkg run
/// that left packages unpacked or half-configured.
fn check_install_lock(ctx: &Ctx<'_>, opts: &GetOpts, out: &mut SimOutput) -> Option<()> {
    if opts.force_yes && ctx.state.apt_variant == AptVariant::V1_2 {
        out.stderr.push_str(FORCE_YES_DEPRECATED);
    }
    if ctx.state.faults.apt_lock_held(ctx.now_ms) {
        out.stderr.push_str(if opts.download_only {
            ARCHIVES_LOCK
        } else {
            DPKG_LOCK
        });
        out.code = 100;
        return None;
    }
    let interrupted = ctx.state.packages.values().any(|p| p.status.interrupted());
    if interrupted && !opts.download_only {
        out.stderr.push_str(INTERRUPTED);
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
        if p.apt_installed() == Some(cand.as_str()) {
            let _ = match ctx.state.apt_variant {
                AptVariant::V1_0 => writeln!(out.stdout, "{name} is already the newest version."),
                AptVariant::V1_2 => {
                    writeln!(out.stdout, "{name} is already the newest version ({cand}).")
                }
            };
        } else {
            changes.push(Change {
                name: name.clone(),
                old: p.apt_installed().map(str::to_owned),
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
            !targets.contains(*n)
                && p.apt_installed().is_some()
                && p.apt_installed() != p.candidate.as_deref()
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

/// dpkg: unpack every change (at the new version, `iU `), then configure each (`ii `); a
/// failing postinst leaves its package half-configured (`iF `) and fails the command.
fn unpack_and_configure(ctx: &mut Ctx<'_>, changes: &[Change], out: &mut SimOutput) {
    out.stdout
        .push_str("(Reading database ... 123456 files and directories currently installed.)\n");
    for Change { name, old, new } in changes {
        if let Some(p) = ctx.state.packages.get_mut(name) {
            p.installed = Some(new.clone());
            p.status = PkgStatus::Unpacked;
        }
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
        if let Err(e) = super::dpkg::configure(ctx.state, name) {
            out.stderr.push_str(&e);
            failed.push(name);
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

#[cfg(test)]
mod tests {
    use crate::sim::SimOutput;
    use crate::sim::state::{AptVariant, Init, PkgStatus};
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
        assert_eq!(
            o.stderr,
            "dpkg: error processing package alba (--configure):\n subprocess installed post-installation script returned error exit status 1\n\
             Errors were encountered while processing:\n alba\n\
             E: Sub-process /usr/bin/dpkg returned an error code (1)\n"
        );
        assert!(
            o.stdout.contains("Setting up alba (0.9.18-1) ...\n"),
            "{}",
            o.stdout
        );
        // As real dpkg: the new version is unpacked, and left half-configured.
        let s = n.state().expect("state");
        assert_eq!(s.packages["alba"].installed.as_deref(), Some("0.9.18-1"));
        assert_eq!(s.packages["alba"].status, PkgStatus::HalfConfigured);
        assert_eq!(s.packages["arakoon"].installed.as_deref(), Some("1.9.22-1"));
        assert_eq!(s.packages["arakoon"].status, PkgStatus::Installed);
        assert!(
            run(&n, "apt-cache policy alba")
                .stdout
                .starts_with("alba:\n  Installed: 0.9.18-1\n  Candidate: 0.9.18-1\n")
        );
        let o = run(
            &n,
            r"dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n' alba arakoon",
        );
        assert_eq!(o.stdout, "alba\t0.9.18-1\tiF \narakoon\t1.9.22-1\tii \n");
        // apt refuses to go on until dpkg is repaired.
        let o = run(&n, "apt-get install -y openvstorage");
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (
                100,
                "",
                "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. \n"
            )
        );
        assert_eq!(
            run(&n, "apt-get install -y --download-only openvstorage").code,
            0
        );
    }

    #[test]
    fn a_failing_source_refreshes_nothing_and_touches_no_stamp() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        n.update(|s| s.faults.failing_sources = true)
            .expect("update");
        let o = run(&n, "apt-get update");
        assert_eq!(o.code, 0, "apt 1.0 warns and exits 0");
        assert_eq!(
            o.stderr,
            "W: Failed to fetch http://apt.openvstorage.org/dists/unstable/main/binary-amd64/Packages  404  Not Found\n\n\
             E: Some index files failed to download. They have been ignored, or old ones used instead.\n"
        );
        assert!(o.stdout.contains(
            "Err http://apt.openvstorage.org unstable/main amd64 Packages\n  404  Not Found\n"
        ));
        let s = n.state().expect("state");
        assert_eq!(s.packages["alba"].candidate.as_deref(), Some("0.9.17-1"));
        assert_eq!(s.apt_updated_ms, None);
        let stat = "stat -c %Y /var/lib/apt/periodic/update-success-stamp";
        assert_eq!(
            run(&n, stat),
            SimOutput::fail(
                1,
                "stat: cannot stat '/var/lib/apt/periodic/update-success-stamp': No such file or directory\n"
            )
        );
        let (_d, n) = node(Init::Systemd, AptVariant::V1_2);
        n.update(|s| s.faults.failing_sources = true)
            .expect("update");
        let o = run(&n, "apt-get update");
        assert_eq!(o.code, 100, "apt 1.2 fails");
        assert_eq!(
            o.stderr,
            "W: The repository 'http://apt.openvstorage.org unstable Release' does not have a Release file.\n\
             N: Data from such a repository can't be authenticated and is therefore potentially dangerous to use.\n\
             N: See apt-secure(8) manpage for repository creation and user configuration details.\n\
             E: Failed to fetch http://apt.openvstorage.org/dists/unstable/main/binary-amd64/Packages  404  Not Found\n\
             E: Some index files failed to download. They have been ignored, or old ones used instead.\n"
        );
        assert!(
            o.stdout
                .contains("Err:3 http://apt.openvstorage.org unstable Release\n  404  Not Found\n")
        );
        assert_eq!(n.state().expect("state").apt_updated_ms, None);
        // A clean update touches the stamp; stat shows its epoch seconds.
        n.update(|s| s.faults.failing_sources = false)
            .expect("update");
        let before = crate::sim::state::now_ms() / 1000;
        assert_eq!(run(&n, "apt-get update").code, 0);
        let o = run(&n, stat);
        assert_eq!(o.code, 0, "{o:?}");
        let secs: u64 = o.stdout.trim_end().parse().expect("seconds");
        assert!(secs >= before && secs <= before + 2, "{secs} vs {before}");
        assert_eq!(o.stdout, format!("{secs}\n"));
        // Aged by the knob.
        n.update(|s| crate::sim::cli::set_fault(s, "stamp_hours_ago", "48"))
            .expect("update")
            .expect("knob");
        let aged: u64 = run(&n, stat).stdout.trim_end().parse().expect("seconds");
        assert!((before - 48 * 3600).abs_diff(aged) <= 2, "{aged}");
        n.update(|s| crate::sim::cli::set_fault(s, "stamp_hours_ago", "never"))
            .expect("update")
            .expect("knob");
        assert_eq!(run(&n, stat).code, 1);
        assert_eq!(run(&n, "stat -c %Y /nope").code, 1);
        assert_eq!(
            run(&n, "stat -c %Y /etc").code,
            127,
            "no mtimes in the virtual fs"
        );
    }

    #[test]
    fn a_lock_held_for_a_while_then_released() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        n.update(|s| crate::sim::cli::set_fault(s, "apt_lock_secs", "1"))
            .expect("update")
            .expect("knob");
        let pid = n
            .state()
            .expect("state")
            .faults
            .apt_lock_pid
            .expect("holder");
        for lock in [
            "/var/lib/dpkg/lock",
            "/var/lib/dpkg/lock-frontend",
            "/var/lib/apt/lists/lock",
            "/var/cache/apt/archives/lock",
        ] {
            let o = run(&n, &format!("fuser -v {lock}"));
            assert_eq!(o.code, 0, "{lock}");
            assert_eq!(o.stdout, format!("{pid:>6}"));
            let label = format!("{lock}:");
            let name = if label.len() > 20 {
                format!("{label}\n{:21}", "")
            } else {
                format!("{label:<21}")
            };
            assert_eq!(
                o.stderr,
                format!(
                    "                     USER        PID ACCESS COMMAND\n{name}root      F.... unattended-upgr\n"
                ),
                "{lock}"
            );
        }
        assert_eq!(
            run(&n, "fuser -v /var/lib/dpkg/lock").stderr,
            "                     USER        PID ACCESS COMMAND\n/var/lib/dpkg/lock:  root      F.... unattended-upgr\n"
        );
        let o = run(&n, "fuser /var/lib/dpkg/lock");
        assert_eq!(
            (o.stdout, o.stderr),
            (format!("{pid:>6}"), "/var/lib/dpkg/lock:\n".into())
        );
        assert_eq!(run(&n, "apt-get install -y alba").code, 100);
        assert_eq!(run(&n, "dpkg --configure -a").code, 2);
        std::thread::sleep(std::time::Duration::from_millis(1050));
        assert_eq!(
            run(&n, "fuser -v /var/lib/dpkg/lock"),
            SimOutput::fail(1, "")
        );
        assert_eq!(run(&n, "apt-get update").code, 0);
        assert_eq!(
            run(&n, "fuser -v /nope/lock"),
            SimOutput::fail(1, "Specified filename /nope/lock does not exist.\n")
        );
    }

    #[test]
    fn package_sizes_of_the_candidate() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        run(&n, "apt-get update");
        let o = run(&n, "apt-cache show --no-all-versions alba arakoon");
        assert_eq!(o.code, 0, "{o:?}");
        let stanzas: Vec<&str> = o.stdout.split("\n\n").filter(|s| !s.is_empty()).collect();
        assert_eq!(stanzas.len(), 2, "{}", o.stdout);
        let alba = crate::sim::seed::package_info("alba", "0.9.18-1");
        assert!(stanzas[0].starts_with("Package: alba\n"), "{}", stanzas[0]);
        assert!(stanzas[0].contains("\nVersion: 0.9.18-1\n"));
        assert!(stanzas[0].contains(&format!("\nInstalled-Size: {}\n", alba.installed_kib)));
        assert!(stanzas[0].contains(&format!("\nSize: {}\n", alba.deb_bytes)));
        assert!(stanzas[0].contains("\nFilename: pool/main/a/alba/alba_0.9.18-1_amd64.deb\n"));
        assert!(stanzas[1].contains("\nVersion: 1.9.22-1\n"));
        let all = run(&n, "apt-cache show alba");
        assert_eq!(all.stdout.matches("Package: alba\n").count(), 2);
        let o = run(&n, "apt-cache show --no-all-versions nosuch alba");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (0, "N: Unable to locate package nosuch\n")
        );
        let o = run(&n, "apt-cache show --no-all-versions nosuch");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (
                100,
                "N: Unable to locate package nosuch\nE: No packages found\n"
            )
        );
    }

    #[test]
    fn fetching_takes_time_without_holding_the_node() {
        use std::time::{Duration, Instant};
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        run(&n, "apt-get update");
        n.update(|s| s.faults.download_ms = 300).expect("update");
        let other = n.clone();
        let started = Instant::now();
        let t = std::thread::spawn(move || other.run_line("apt-get install -y alba arakoon", None));
        std::thread::sleep(Duration::from_millis(100));
        let quick = Instant::now();
        assert_eq!(run(&n, "virsh list --name").code, 0);
        assert!(
            quick.elapsed() < Duration::from_millis(200),
            "the node is held"
        );
        let o = t.join().expect("join");
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "two fetches"
        );
        // Pre-staged: nothing to fetch, no wait.
        run(&n, "apt-get install -y --download-only openvstorage-core");
        let started = Instant::now();
        assert_eq!(run(&n, "apt-get install -y openvstorage-core").code, 0);
        assert!(started.elapsed() < Duration::from_millis(250));
        // The deadline cuts a long fetch.
        let o = n.run_line(
            "apt-get install -y openvstorage",
            Some(Instant::now() + Duration::from_millis(100)),
        );
        assert_eq!(o.code, 124);
    }

    #[test]
    fn free_space() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        let o = run(&n, "df --output=avail -B1 /var/cache/apt/archives");
        assert_eq!(o, SimOutput::ok("      Avail\n51539607552\n"));
        n.update(|s| s.faults.free_bytes = Some(1024))
            .expect("update");
        let o = run(&n, "df --output=avail -B1 / /var/cache/apt/archives");
        assert_eq!(o, SimOutput::ok("Avail\n 1024\n 1024\n"));
        let o = run(&n, "df --output=avail -B1 /nope");
        assert_eq!(
            o,
            SimOutput::fail(1, "df: /nope: No such file or directory\n")
        );
        assert_eq!(run(&n, "df -h /").code, 127);
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
