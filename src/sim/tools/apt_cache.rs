//! `apt-cache policy` (what is installed and what the lists offer, in the apt 1.0 and 1.2
//! forms) and `apt-cache show` (the lists' stanza of a version, with its sizes: how a tool
//! learns how much space pending packages need).

use std::fmt::Write as _;

use super::apt::REPO_URL;
use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::seed::package_info;
use crate::sim::state::AptVariant;
use crate::sim::version;

/// `apt-cache policy PKG…` and `apt-cache show [--no-all-versions] PKG…`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let plain = |pkgs: &[&str]| !pkgs.is_empty() && pkgs.iter().all(|p| !p.starts_with('-'));
    match args.as_slice() {
        ["policy", pkgs @ ..] if plain(pkgs) => policy(ctx, pkgs),
        ["show", "--no-all-versions", pkgs @ ..] if plain(pkgs) => show(ctx, pkgs, false),
        ["show", pkgs @ ..] if plain(pkgs) => show(ctx, pkgs, true),
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

/// `apt-cache policy PKG…`: installed, candidate and the version table, per package.
fn policy(ctx: &Ctx<'_>, pkgs: &[&str]) -> SimOutput {
    let apt = ctx.state.apt_variant;
    let mut out = SimOutput::default();
    for name in pkgs {
        let known = ctx
            .state
            .packages
            .get(*name)
            .filter(|p| p.apt_installed().is_some() || p.candidate.is_some());
        let Some(p) = known else {
            if apt == AptVariant::V1_2 {
                let _ = writeln!(out.stderr, "N: Unable to locate package {name}");
            }
            continue;
        };
        let installed = p.apt_installed();
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

/// `apt-cache show PKG…`: a stanza per version the lists know (with `--no-all-versions`,
/// the candidate's only), a blank line after each. Unknown packages: `N:` lines, and exit
/// 100 with `E: No packages found` when none is known.
fn show(ctx: &Ctx<'_>, pkgs: &[&str], all_versions: bool) -> SimOutput {
    let mut out = SimOutput::default();
    let mut found = false;
    for name in pkgs {
        let Some(p) = ctx.state.packages.get(*name) else {
            let _ = writeln!(out.stderr, "N: Unable to locate package {name}");
            continue;
        };
        let mut versions: Vec<&str> = p.candidate.as_deref().into_iter().collect();
        if all_versions || versions.is_empty() {
            versions.extend(p.apt_installed());
        }
        versions.dedup();
        if !all_versions {
            versions.truncate(1);
        }
        if versions.is_empty() {
            let _ = writeln!(out.stderr, "N: Unable to locate package {name}");
            continue;
        }
        found = true;
        for v in versions {
            out.stdout.push_str(&stanza(name, v));
        }
    }
    if !found {
        out.stderr.push_str("E: No packages found\n");
        out.code = 100;
    }
    out
}

/// The lists' record of `name` at `version`.
fn stanza(name: &str, version: &str) -> String {
    let info = package_info(name, version);
    let first = name.chars().next().unwrap_or('x');
    let file = format!(
        "pool/main/{first}/{name}/{name}_{}_amd64.deb",
        version.replace(':', "%3a")
    );
    let digest = format!("{:016x}", fnv(&file));
    format!(
        "Package: {name}\n\
         Priority: optional\n\
         Section: {section}\n\
         Installed-Size: {kib}\n\
         Maintainer: Open vStorage <support@openvstorage.com>\n\
         Architecture: amd64\n\
         Version: {version}\n\
         Filename: {file}\n\
         Size: {size}\n\
         MD5sum: {digest}{digest}\n\
         SHA1: {digest}{digest}{d8}\n\
         SHA256: {digest}{digest}{digest}{digest}\n\
         Description: {summary}\n\
         Description-md5: {digest}{digest}\n\
         \n",
        section = info.section,
        kib = info.installed_kib,
        size = info.deb_bytes,
        d8 = &digest[..8],
        summary = info.summary,
    )
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
