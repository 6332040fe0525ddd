//! The handful of coreutils runbooks use on nodes (`test`, `[`, `ls`, `touch`, `cat`, `cp`,
//! `mkdir`, `rm`, `echo`, `true`, `false`, and `sed -i` in its anchored-prefix form), for
//! the in-process node whose filesystem is virtual. Anything outside these forms is refused
//! as "not simulated" rather than guessed.

use std::fmt::Write as _;

use super::{Ctx, basename, join};
use crate::sim::SimOutput;
use crate::sim::fs::{Fs, Kind, normalize};

/// Whether `name` is one of the simulated coreutils.
pub fn handles(name: &str) -> bool {
    matches!(
        name,
        "test"
            | "["
            | "ls"
            | "touch"
            | "cat"
            | "cp"
            | "mkdir"
            | "rm"
            | "sed"
            | "echo"
            | "grep"
            | "true"
            | "false"
    )
}

/// Runs one of the simulated coreutils.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let fs = ctx.fs;
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let plain = !args.is_empty() && args.iter().all(|a| !a.starts_with('-'));
    let answer = match basename(&argv[0]) {
        "true" => Some(SimOutput::ok("")),
        "false" => Some(SimOutput::fail(1, "")),
        "echo" => echo(&args),
        "test" => test(fs, &args),
        "[" => match args.split_last() {
            Some((&"]", inner)) => test(fs, inner),
            _ => Some(SimOutput::fail(2, "[: missing `]'\n")),
        },
        "ls" => match args.as_slice() {
            [dir] | ["-1", dir] if !dir.starts_with('-') => Some(ls(fs, dir)),
            _ => None,
        },
        "touch" if plain => Some(touch(fs, &args)),
        "cat" if plain => Some(cat(fs, &args)),
        "cp" => match args.as_slice() {
            [src, dst] | ["-p", src, dst] if !src.starts_with('-') && !dst.starts_with('-') => {
                Some(cp(fs, src, dst))
            }
            _ => None,
        },
        "mkdir" => mkdir(fs, &args),
        "rm" => rm(fs, &args),
        "sed" => sed(fs, &args),
        "grep" => grep(fs, &args),
        _ => None,
    };
    answer.unwrap_or_else(|| SimOutput::not_simulated(&join(argv)))
}

/// `echo [-n] WORDS…`.
fn echo(args: &[&str]) -> Option<SimOutput> {
    match args.first() {
        Some(&"-n") => Some(SimOutput::ok(args[1..].join(" "))),
        Some(a) if a.starts_with('-') && a.len() > 1 => None,
        _ => Some(SimOutput::ok(format!("{}\n", args.join(" ")))),
    }
}

/// `touch FILE…`: creates missing files (the times are not simulated).
fn touch(fs: &dyn Fs, files: &[&str]) -> SimOutput {
    each(files, |f, err| {
        if fs.kind(f).is_none() && fs.write(f, "").is_err() {
            let _ = writeln!(err, "touch: cannot touch '{f}': No such file or directory");
        }
    })
}

/// `cat FILE…`.
fn cat(fs: &dyn Fs, files: &[&str]) -> SimOutput {
    let mut out = SimOutput::ok("");
    for f in files {
        match (fs.kind(f), fs.read(f)) {
            (Some(Kind::Dir), _) => {
                let _ = writeln!(out.stderr, "cat: {f}: Is a directory");
                out.code = 1;
            }
            (_, Ok(c)) => out.stdout.push_str(&c),
            (_, Err(_)) => {
                let _ = writeln!(out.stderr, "cat: {f}: No such file or directory");
                out.code = 1;
            }
        }
    }
    out
}

/// `mkdir [-p] DIR…`.
fn mkdir(fs: &dyn Fs, args: &[&str]) -> Option<SimOutput> {
    match args.split_first() {
        Some((&"-p", dirs)) if !dirs.is_empty() => Some(each(dirs, |d, err| {
            if fs.create_dir_all(d).is_err() {
                let _ = writeln!(err, "mkdir: cannot create directory '{d}': File exists");
            }
        })),
        Some((first, _)) if !first.starts_with('-') => Some(each(args, |d, err| {
            let n = normalize(d);
            let parent_ok = n.rsplit_once('/').is_some_and(|(p, _)| {
                fs.kind(if p.is_empty() { "/" } else { p }) == Some(Kind::Dir)
            });
            if fs.kind(&n).is_some() {
                let _ = writeln!(err, "mkdir: cannot create directory '{d}': File exists");
            } else if !parent_ok || fs.create_dir_all(&n).is_err() {
                let _ = writeln!(
                    err,
                    "mkdir: cannot create directory '{d}': No such file or directory"
                );
            }
        })),
        _ => None,
    }
}

/// `rm [-f] FILE…` (files only).
fn rm(fs: &dyn Fs, args: &[&str]) -> Option<SimOutput> {
    let (force, files) = match args.split_first() {
        Some((&"-f", files)) => (true, files),
        _ => (false, args),
    };
    if files.is_empty() || files.iter().any(|f| f.starts_with('-')) {
        return None;
    }
    Some(each(files, |f, err| match fs.kind(f) {
        Some(Kind::File) if fs.remove_file(f).is_err() => {
            let _ = writeln!(err, "rm: cannot remove '{f}': Permission denied");
        }
        Some(Kind::File) => {}
        Some(Kind::Dir) => {
            let _ = writeln!(err, "rm: cannot remove '{f}': Is a directory");
        }
        None if !force => {
            let _ = writeln!(err, "rm: cannot remove '{f}': No such file or directory");
        }
        None => {}
    }))
}

/// Applies `f` to every operand; any stderr makes the exit status 1.
fn each(items: &[&str], mut f: impl FnMut(&str, &mut String)) -> SimOutput {
    let mut err = String::new();
    for i in items {
        f(i, &mut err);
    }
    if err.is_empty() {
        SimOutput::ok("")
    } else {
        SimOutput::fail(1, err)
    }
}

fn test(fs: &dyn Fs, args: &[&str]) -> Option<SimOutput> {
    let ok = match args {
        ["-d", p] => fs.kind(p) == Some(Kind::Dir),
        ["-f", p] => fs.kind(p) == Some(Kind::File),
        ["-e", p] => fs.kind(p).is_some(),
        _ => return None,
    };
    Some(if ok {
        SimOutput::ok("")
    } else {
        SimOutput::fail(1, "")
    })
}

fn ls(fs: &dyn Fs, path: &str) -> SimOutput {
    match fs.kind(path) {
        Some(Kind::Dir) => match fs.list_dir(path) {
            Ok(names) => SimOutput::ok(names.iter().map(|n| format!("{n}\n")).collect::<String>()),
            Err(e) => SimOutput::fail(2, format!("ls: cannot open directory '{path}': {e}\n")),
        },
        Some(Kind::File) => SimOutput::ok(format!("{path}\n")),
        None => SimOutput::fail(
            2,
            format!("ls: cannot access '{path}': No such file or directory\n"),
        ),
    }
}

fn cp(fs: &dyn Fs, src: &str, dst: &str) -> SimOutput {
    match fs.kind(src) {
        None => {
            return SimOutput::fail(
                1,
                format!("cp: cannot stat '{src}': No such file or directory\n"),
            );
        }
        Some(Kind::Dir) => {
            return SimOutput::fail(
                1,
                format!("cp: -r not specified; omitting directory '{src}'\n"),
            );
        }
        Some(Kind::File) => {}
    }
    let target = if fs.kind(dst) == Some(Kind::Dir) {
        format!("{}/{}", normalize(dst), basename(&normalize(src)))
    } else {
        dst.to_owned()
    };
    match fs.read(src).and_then(|c| fs.write(&target, &c)) {
        Ok(()) => SimOutput::ok(""),
        Err(_) => SimOutput::fail(
            1,
            format!("cp: cannot create regular file '{target}': No such file or directory\n"),
        ),
    }
}

/// Unescapes a sed literal (`\/` → `/`); `None` when it holds regex syntax we don't simulate.
fn literal(s: &str, delim: char, is_pattern: bool) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let n = chars.next()?;
                if n.is_ascii_alphanumeric() && n != delim {
                    return None;
                }
                out.push(n);
            }
            '&' if !is_pattern => return None,
            '.' | '[' | ']' | '*' | '^' | '$' if is_pattern => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `grep [-e] PATTERN FILE`, PATTERN a literal or `^` and a literal (what the capture asks
/// of `settings.py`): the matching lines, exit 0; none, exit 1; no such file, exit 2.
fn grep(fs: &dyn Fs, args: &[&str]) -> Option<SimOutput> {
    let (pattern, file) = match args {
        ["-e", p, f] => (*p, *f),
        [p, f] if !p.starts_with('-') => (*p, *f),
        _ => return None,
    };
    if file.starts_with('-') {
        return None;
    }
    let (anchored, rest) = match pattern.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    let needle = literal(rest, '\0', true)?;
    let content = match (fs.kind(file), fs.read(file)) {
        (Some(Kind::Dir), _) => {
            return Some(SimOutput::fail(
                2,
                format!("grep: {file}: Is a directory\n"),
            ));
        }
        (_, Ok(c)) => c,
        (_, Err(_)) => {
            return Some(SimOutput::fail(
                2,
                format!("grep: {file}: No such file or directory\n"),
            ));
        }
    };
    let found: String = content
        .lines()
        .filter(|l| {
            if anchored {
                l.starts_with(&needle)
            } else {
                l.contains(&needle)
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    Some(if found.is_empty() {
        SimOutput::fail(1, "")
    } else {
        SimOutput::ok(found)
    })
}

/// `sed -i[SUFFIX] [-e] 's/^PREFIX.*/REPLACEMENT/' FILE…`: replaces every line that starts
/// with PREFIX by REPLACEMENT, keeping FILE+SUFFIX as a backup when SUFFIX is given.
fn sed(fs: &dyn Fs, args: &[&str]) -> Option<SimOutput> {
    let (first, rest) = args.split_first()?;
    let suffix = first.strip_prefix("-i")?;
    let (expr, files) = match rest {
        ["-e", e, files @ ..] => (*e, files),
        [e, files @ ..] if !e.starts_with('-') => (*e, files),
        _ => return None,
    };
    if files.is_empty() || files.iter().any(|f| f.starts_with('-')) {
        return None;
    }
    let body = expr.strip_prefix('s')?;
    let delim = body.chars().next()?;
    if delim.is_alphanumeric() || delim == '\\' || delim == '\n' {
        return None;
    }
    // Split on unescaped delimiters.
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = body[delim.len_utf8()..].chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let n = chars.next()?;
            let last = parts.last_mut()?;
            last.push('\\');
            last.push(n);
        } else if c == delim {
            parts.push(String::new());
        } else {
            parts.last_mut()?.push(c);
        }
    }
    let [pattern, replacement, flags] = parts.as_slice() else {
        return None;
    };
    if !(flags.is_empty() || flags == "g") {
        return None;
    }
    let prefix = pattern.strip_prefix('^')?.strip_suffix(".*")?;
    let prefix = literal(prefix, delim, true)?;
    let replacement = literal(replacement, delim, false)?;
    let mut out = SimOutput::ok("");
    for f in files {
        let content = match fs.read(f) {
            Ok(c) => c,
            Err(_) => {
                let _ = writeln!(out.stderr, "sed: can't read {f}: No such file or directory");
                out.code = 2;
                continue;
            }
        };
        let mut new = String::with_capacity(content.len());
        for line in content.split_inclusive('\n') {
            let (text, nl) = match line.strip_suffix('\n') {
                Some(t) => (t, "\n"),
                None => (line, ""),
            };
            if text.starts_with(&prefix) {
                new.push_str(&replacement);
            } else {
                new.push_str(text);
            }
            new.push_str(nl);
        }
        let backup = if suffix.is_empty() {
            Ok(())
        } else {
            fs.write(&format!("{f}{suffix}"), &content)
        };
        if backup.and_then(|()| fs.write(f, &new)).is_err() {
            let _ = writeln!(out.stderr, "sed: couldn't edit {f}: not a regular file");
            out.code = 4;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn files() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let o = run(&n, "ls /opt/OpenvStorage/config/arakoon/");
        assert_eq!(o.stdout, "mybackend-abm\nmybackend-nsm_0\novsdb\nvoldrv\n");
        let o = run(&n, "ls /nope");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (2, "ls: cannot access '/nope': No such file or directory\n")
        );
        assert_eq!(run(&n, "test -e /etc/ready_for_upgrade").code, 1);
        assert_eq!(
            run(
                &n,
                "touch /etc/ready_for_upgrade && test -f /etc/ready_for_upgrade"
            )
            .code,
            0
        );
        assert_eq!(run(&n, "[ -d /run/systemd/system ]").code, 1);
        assert_eq!(
            run(&n, "mkdir -p /tmp/a/b && test -d /tmp/a/b && echo yes").stdout,
            "yes\n"
        );
        assert_eq!(run(&n, "rm -f /etc/ready_for_upgrade /nope").code, 0);
        assert_eq!(run(&n, "rm /nope").code, 1);
        assert_eq!(
            run(&n, "cat /nope").stderr,
            "cat: /nope: No such file or directory\n"
        );
    }

    #[test]
    fn grep_a_literal_or_an_anchored_one() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let f = "/opt/OpenvStorage/webapps/api/settings.py";
        let o = run(&n, &format!("grep '^ALLOWED_HOSTS' {f}"));
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "ALLOWED_HOSTS = ['localhost']\n")
        );
        assert_eq!(
            run(&n, &format!("grep -e DEBUG {f}")).stdout,
            "DEBUG = False\n"
        );
        assert_eq!(run(&n, &format!("grep '^localhost' {f}")).code, 1);
        let o = run(&n, "grep x /nosuch");
        assert_eq!(o.code, 2);
        assert!(o.stderr.contains("No such file or directory"), "{o:?}");
        assert_eq!(run(&n, &format!("grep 'A.*' {f}")).code, 127);
    }

    #[test]
    fn sed_anchored_prefix() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let f = "/opt/OpenvStorage/webapps/api/settings.py";
        let before = run(&n, &format!("cat {f}")).stdout;
        assert!(before.contains("ALLOWED_HOSTS = ['localhost']\n"));
        let o = run(
            &n,
            &format!("sed -i.bak -e \"s/^ALLOWED_HOSTS.*/ALLOWED_HOSTS = ['*']/\" {f}"),
        );
        assert_eq!(o.code, 0, "{o:?}");
        let after = run(&n, &format!("cat {f}")).stdout;
        assert_eq!(
            after,
            before.replace("ALLOWED_HOSTS = ['localhost']", "ALLOWED_HOSTS = ['*']")
        );
        assert_eq!(run(&n, &format!("cat {f}.bak")).stdout, before);
        assert_eq!(run(&n, &format!("cp -p {f}.bak /nodir/x")).code, 1);
        assert_eq!(
            run(
                &n,
                &format!("cp -p {f}.bak /tmp && cat /tmp/settings.py.bak")
            )
            .stdout,
            before
        );
        assert_eq!(run(&n, &format!("sed -i 's/foo/bar/' {f}")).code, 127);
        assert_eq!(run(&n, &format!("sed -i 's/^A.*/&x/' {f}")).code, 127);
        assert_eq!(run(&n, &format!("sed 's/^A.*/x/' {f}")).code, 127);
    }
}
