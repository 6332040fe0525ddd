//! dpkg's side of node health: `dpkg-query -W` (versions and `${db:Status-Abbrev}`),
//! `dpkg --audit` (the packages a failed run left behind; it exits 0 either way) and
//! `dpkg --configure PKG…|-a` (configures them again, failing again while the postinst
//! fault holds), with real dpkg's messages.

use std::fmt::Write as _;

use super::apt::glob_match;
use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::seed::package_info;
use crate::sim::state::{NodeState, Package, PkgStatus};

const LOCKED: &str = "dpkg: error: dpkg status database is locked by another process\n";
const LOCKED_AUDIT: &str = "Another process has locked the database for writing, and might currently be\n\
modifying it, some of the following problems might just be due to that.\n\n";

/// `dpkg --audit|-C` and `dpkg --configure PKG…|-a|--pending`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--audit" | "-C"] => audit(ctx),
        ["--configure", "-a" | "--pending"] => configure_command(ctx, None),
        ["--configure", pkgs @ ..]
            if !pkgs.is_empty() && pkgs.iter().all(|p| !p.starts_with('-')) =>
        {
            configure_command(ctx, Some(pkgs))
        }
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

/// The audit's sections, in dpkg's order: which packages, and the explanation.
const SECTIONS: [(PkgStatus, &str); 4] = [
    (
        PkgStatus::HalfInstalled,
        "The following packages are in a mess due to serious problems during\n\
installation.  They must be reinstalled for them (and any packages\n\
that depend on them) to function properly:\n",
    ),
    (
        PkgStatus::Unpacked,
        "The following packages have been unpacked but not yet configured.\n\
They must be configured using dpkg --configure or the configure\n\
menu option in dselect for them to work:\n",
    ),
    (
        PkgStatus::HalfConfigured,
        "The following packages are only half configured, probably due to problems\n\
configuring them the first time.  The configuration should be retried using\n\
dpkg --configure <package> or the configure menu option in dselect:\n",
    ),
    (
        PkgStatus::TriggersAwaited,
        "The following packages are awaiting processing of triggers that they\n\
have activated in other packages.  This processing can be requested using\n\
dselect or dpkg --configure --pending (or dpkg --triggers-only):\n",
    ),
];

/// One package line of the audit: ` %-20s %.*s` (the summary cut to fit 78 columns).
fn describe_briefly(name: &str) -> String {
    let summary = package_info(name, "").summary;
    let max = 57usize.saturating_sub(name.len().saturating_sub(20));
    let cut: String = summary.chars().take(max).collect();
    format!(" {name:<20} {cut}\n")
}

/// `dpkg --audit`: nothing when every package is configured; otherwise a section per kind
/// of problem, each followed by a blank line. Exit 0 either way.
fn audit(ctx: &Ctx<'_>) -> SimOutput {
    let mut out = String::new();
    for (status, explanation) in SECTIONS {
        let names: Vec<&String> = ctx
            .state
            .packages
            .iter()
            .filter(|(_, p)| p.installed.is_some() && p.status == status)
            .map(|(n, _)| n)
            .collect();
        if names.is_empty() {
            continue;
        }
        if out.is_empty() && ctx.state.faults.apt_lock_held(ctx.now_ms) {
            out.push_str(LOCKED_AUDIT);
        }
        out.push_str(explanation);
        for n in names {
            out.push_str(&describe_briefly(n));
        }
        out.push('\n');
    }
    SimOutput::ok(out)
}

fn error_processing(name: &str, why: &str) -> String {
    format!("dpkg: error processing package {name} (--configure):\n {why}\n")
}

/// Configures one package as dpkg would (its postinst fails while `failing_installs` names
/// it); the error is dpkg's stderr for it.
pub fn configure(state: &mut NodeState, name: &str) -> Result<(), String> {
    let failing = state.faults.failing_installs.iter().any(|f| f == name);
    let Some(p) = state
        .packages
        .get_mut(name)
        .filter(|p| p.installed.is_some())
    else {
        return Err(error_processing(
            name,
            &format!("no package named '{name}' is installed, cannot configure"),
        ));
    };
    match p.status {
        PkgStatus::Installed => Err(error_processing(
            name,
            &format!("package {name} is already installed and configured"),
        )),
        PkgStatus::HalfInstalled | PkgStatus::ConfigFiles => Err(error_processing(
            name,
            &format!(
                "package {name} is not ready for configuration\n cannot configure (current status '{}')",
                p.status.word()
            ),
        )),
        PkgStatus::Unpacked | PkgStatus::HalfConfigured if failing => {
            p.status = PkgStatus::HalfConfigured;
            Err(error_processing(
                name,
                "subprocess installed post-installation script returned error exit status 1",
            ))
        }
        _ => {
            p.status = PkgStatus::Installed;
            Ok(())
        }
    }
}

/// `dpkg --configure`: the named packages, or (`None`) every one left unpacked,
/// half-configured or awaiting triggers.
fn configure_command(ctx: &mut Ctx<'_>, pkgs: Option<&[&str]>) -> SimOutput {
    if ctx.state.faults.apt_lock_held(ctx.now_ms) {
        return SimOutput::fail(2, LOCKED);
    }
    let names: Vec<String> = match pkgs {
        Some(p) => p.iter().map(|s| (*s).to_owned()).collect(),
        None => ctx
            .state
            .packages
            .iter()
            .filter(|(_, p)| {
                p.installed.is_some()
                    && (p.status.interrupted() || p.status == PkgStatus::TriggersAwaited)
            })
            .map(|(n, _)| n.clone())
            .collect(),
    };
    let mut out = SimOutput::default();
    let mut failed = Vec::new();
    for name in &names {
        if let Some(p) = ctx.state.packages.get(name) {
            let v = p.installed.as_deref().unwrap_or("");
            let _ = match p.status {
                PkgStatus::Unpacked | PkgStatus::HalfConfigured => {
                    writeln!(out.stdout, "Setting up {name} ({v}) ...")
                }
                PkgStatus::TriggersAwaited => {
                    writeln!(out.stdout, "Processing triggers for {name} ({v}) ...")
                }
                _ => Ok(()),
            };
        }
        if let Err(e) = configure(ctx.state, name) {
            out.stderr.push_str(&e);
            failed.push(name.as_str());
        }
    }
    if !failed.is_empty() {
        let _ = writeln!(
            out.stderr,
            "Errors were encountered while processing:\n {}",
            failed.join("\n ")
        );
        out.code = 1;
    }
    out
}

/// Expands a dpkg-query `--showformat` for one known package.
fn expand_format(fmt: &str, name: &str, p: &Package) -> Option<String> {
    let version = p.installed.as_deref().unwrap_or("");
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
                    "db:Status-Abbrev" => p.status.abbrev().to_owned(),
                    "Status" => p.status.status_field().to_owned(),
                    "Installed-Size" => package_info(name, version).installed_kib.to_string(),
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
pub fn query(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
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
        if p.installed.is_none() {
            continue;
        }
        let mut hit = patterns.is_empty();
        for (i, pat) in patterns.iter().enumerate() {
            if glob_match(pat, name) {
                matched[i] = true;
                hit = true;
            }
        }
        if hit {
            match expand_format(&format, name, p) {
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
    use crate::sim::SimOutput;
    use crate::sim::cli::set_fault;
    use crate::sim::state::{AptVariant, Init, PkgStatus};
    use crate::sim::tools::testutil::{node, run};

    const QUERY: &str = r"dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n'";

    #[test]
    fn audit_is_silent_when_all_is_configured_and_exits_0_either_way() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        assert_eq!(run(&n, "dpkg --audit"), SimOutput::ok(""));
        n.update(|s| {
            set_fault(
                s,
                "pkg_status",
                "alba=iF,arakoon=iU,openvstorage=iW,volumedriver-base=iHR",
            )
        })
        .expect("update")
        .expect("knob");
        let o = run(&n, "dpkg --audit");
        assert_eq!(o.code, 0);
        assert_eq!(
            o.stdout,
            "The following packages are in a mess due to serious problems during\n\
installation.  They must be reinstalled for them (and any packages\n\
that depend on them) to function properly:\n \
volumedriver-base    VolumeDriver common files\n\
\n\
The following packages have been unpacked but not yet configured.\n\
They must be configured using dpkg --configure or the configure\n\
menu option in dselect for them to work:\n \
arakoon              Arakoon: a distributed key-value store\n\
\n\
The following packages are only half configured, probably due to problems\n\
configuring them the first time.  The configuration should be retried using\n\
dpkg --configure <package> or the configure menu option in dselect:\n \
alba                 ALBA: the Open vStorage backend\n\
\n\
The following packages are awaiting processing of triggers that they\n\
have activated in other packages.  This processing can be requested using\n\
dselect or dpkg --configure --pending (or dpkg --triggers-only):\n \
openvstorage         Open vStorage\n\
\n"
        );
        assert_eq!(
            run(&n, &format!("{QUERY} alba volumedriver-base openvstorage")).stdout,
            "alba\t0.9.17-1\tiF \nopenvstorage\t2.7.2-rev.3735.aa53c43-1\tiW \nvolumedriver-base\t6.1.0-1\tiHR\n"
        );
        // A holder of the lock is mentioned first.
        n.update(|s| s.faults.apt_lock = true).expect("update");
        assert!(run(&n, "dpkg --audit").stdout.starts_with(
            "Another process has locked the database for writing, and might currently be\n\
             modifying it, some of the following problems might just be due to that.\n\n"
        ));
        let o = run(&n, "dpkg --configure -a");
        assert_eq!(
            o,
            SimOutput::fail(
                2,
                "dpkg: error: dpkg status database is locked by another process\n"
            )
        );
    }

    #[test]
    fn configure_repairs_and_fails_again_while_the_fault_holds() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        run(&n, "apt-get update");
        n.update(|s| s.faults.failing_installs = vec!["alba".into()])
            .expect("update");
        assert_eq!(run(&n, "apt-get install -y alba").code, 100);
        let o = run(&n, "dpkg --configure alba");
        assert_eq!(
            o,
            SimOutput {
                code: 1,
                stdout: "Setting up alba (0.9.18-1) ...\n".into(),
                stderr: "dpkg: error processing package alba (--configure):\n subprocess installed post-installation script returned error exit status 1\n\
                         Errors were encountered while processing:\n alba\n"
                    .into(),
            }
        );
        let o = run(&n, "dpkg --configure arakoon nosuch");
        assert_eq!(o.code, 1);
        assert_eq!(
            o.stderr,
            "dpkg: error processing package arakoon (--configure):\n package arakoon is already installed and configured\n\
             dpkg: error processing package nosuch (--configure):\n no package named 'nosuch' is installed, cannot configure\n\
             Errors were encountered while processing:\n arakoon\n nosuch\n"
        );
        assert!(
            run(&n, "dpkg --audit")
                .stdout
                .contains(" alba                 ALBA")
        );
        n.update(|s| {
            s.faults.failing_installs.clear();
            s.packages.get_mut("arakoon").expect("arakoon").status = PkgStatus::TriggersAwaited;
        })
        .expect("update");
        let o = run(&n, "dpkg --configure -a");
        assert_eq!(
            o,
            SimOutput::ok(
                "Setting up alba (0.9.18-1) ...\nProcessing triggers for arakoon (1.9.17-1) ...\n"
            )
        );
        assert_eq!(run(&n, "dpkg --audit"), SimOutput::ok(""));
        assert_eq!(run(&n, "dpkg --configure -a"), SimOutput::ok(""));
        assert_eq!(run(&n, "apt-get install -y alba").code, 0);
        n.update(|s| set_fault(s, "pkg_status", "alba=half-installed"))
            .expect("update")
            .expect("knob");
        let o = run(&n, "dpkg --configure alba");
        assert!(
            o.stderr.contains(
                " package alba is not ready for configuration\n cannot configure (current status 'half-installed')\n"
            ),
            "{o:?}"
        );
        assert_eq!(run(&n, "dpkg -l").code, 127);
        let mut s = n.state().expect("state");
        assert!(set_fault(&mut s, "pkg_status", "alba=xx").is_err());
        assert!(set_fault(&mut s, "pkg_status", "nosuch=ii").is_err());
    }

    #[test]
    fn removed_packages_keep_their_config_files() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_2);
        n.update(|s| set_fault(s, "pkg_status", "alba=rc"))
            .expect("update")
            .expect("knob");
        assert_eq!(
            run(&n, &format!("{QUERY} alba")).stdout,
            "alba\t0.9.17-1\trc \n"
        );
        assert!(
            run(&n, "apt-cache policy alba")
                .stdout
                .starts_with("alba:\n  Installed: (none)\n")
        );
        assert_eq!(run(&n, "dpkg --audit"), SimOutput::ok(""));
    }
}
