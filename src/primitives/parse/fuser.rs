//! `fuser 4446/tcp` (psmisc): whether a process listens on the cloud agent's port.
//!
//! Exit 0: the pids are on stdout (each possibly followed by an access letter), the name
//! (`4446/tcp:`) on stderr. Exit 1 with nothing on stdout: nothing listens. Anything else is an
//! error naming the node, the command and the offending line.

use super::unexpected;
use crate::error::Result;
use crate::transport::Output;

/// The pids listening, as `fuser PORT/tcp` (or `fuser -k PORT/tcp`, which prints the pids it
/// killed) reported them on `node`: empty when nothing listens (exit 1).
pub fn listeners(node: &str, command: &str, out: &Output) -> Result<Vec<u32>> {
    match out.code {
        0 => {
            let mut pids = Vec::new();
            for word in out.stdout.split_whitespace() {
                let digits = word.trim_end_matches(['c', 'e', 'f', 'F', 'r', 'm']);
                match digits.parse::<u32>() {
                    Ok(pid) if pid > 0 => pids.push(pid),
                    _ => return Err(unexpected(node, command, word, "a process id")),
                }
            }
            if pids.is_empty() {
                return Err(unexpected(
                    node,
                    command,
                    out.stdout.trim(),
                    "process ids after exit code 0",
                ));
            }
            Ok(pids)
        }
        1 => {
            if let Some(line) = out.stdout.lines().find(|l| !l.trim().is_empty()) {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "no output with exit code 1 (nothing listening)",
                ));
            }
            // psmisc warns about /proc entries it cannot read; anything else (a usage text,
            // an unknown option) means the question was not answered.
            if let Some(line) = out
                .stderr
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("Cannot stat"))
            {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "nothing on stderr with exit code 1 (nothing listening)",
                ));
            }
            Ok(Vec::new())
        }
        _ => Err(crate::host::failed(node, command, out)),
    }
}

/// A process that holds a file, as `fuser -v FILE` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its user.
    pub user: String,
    /// Its pid.
    pub pid: u32,
    /// Its command name (as psmisc shortens it: `unattended-upgr`).
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {}, user {})", self.command, self.pid, self.user)
    }
}

/// The processes holding `path`, from `fuser -v PATH`: psmisc prints the pids on stdout and
/// the rest of its table on stderr (`USER PID ACCESS COMMAND`, the path before the first row,
/// the PID column left blank there; on a terminal the two streams interleave into whole rows),
/// and exits 0 — or exits 1 with nobody holding it. Kernel rows (`kernel mount …`) are
/// skipped.
pub fn holders(node: &str, command: &str, path: &str, out: &Output) -> Result<Vec<Holder>> {
    if out.code == 1 {
        return Ok(Vec::new());
    }
    if out.code != 0 {
        return Err(crate::host::failed(node, command, out));
    }
    let mut pids = Vec::new();
    for word in out.stdout.split_whitespace() {
        let digits = word.trim_end_matches(['c', 'e', 'f', 'F', 'r', 'm']);
        pids.push(
            digits
                .parse::<u32>()
                .map_err(|_| unexpected(node, command, word, "a process id"))?,
        );
    }
    let mut pids = pids.into_iter();
    let mut found = Vec::new();
    for line in out.stderr.lines() {
        let row = line
            .trim_start()
            .strip_prefix(&format!("{path}:"))
            .unwrap_or(line);
        let words: Vec<&str> = row.split_whitespace().collect();
        let (user, pid, name) = match words.as_slice() {
            [] | ["USER", "PID", "ACCESS", "COMMAND"] | ["kernel", ..] => continue,
            [user, pid, _access, name @ ..] if !name.is_empty() && pid.parse::<u32>().is_ok() => {
                (*user, pid.parse::<u32>().ok(), name.join(" "))
            }
            [user, _access, name @ ..] if !name.is_empty() => (*user, pids.next(), name.join(" ")),
            _ => {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "a row `USER PID ACCESS COMMAND` of fuser -v",
                ));
            }
        };
        let pid =
            pid.ok_or_else(|| unexpected(node, command, line, "a pid on stdout for the row"))?;
        found.push(Holder {
            user: user.to_string(),
            pid,
            command: name,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holders_of_a_lock_file_pids_on_stdout() {
        let out = Output {
            code: 0,
            stdout: "  2987".into(),
            stderr: "                     USER        PID ACCESS COMMAND\n\
                     /var/lib/dpkg/lock:  root      F.... unattended-upgr\n"
                .into(),
        };
        let h = holders(
            "n",
            "fuser -v /var/lib/dpkg/lock",
            "/var/lib/dpkg/lock",
            &out,
        )
        .expect("parsed");
        assert_eq!(h[0].to_string(), "unattended-upgr (pid 2987, user root)");
    }

    #[test]
    fn the_holders_of_a_lock_file() {
        let out = Output {
            code: 0,
            stdout: String::new(),
            stderr: "                     USER        PID ACCESS COMMAND\n\
                     /var/lib/dpkg/lock:  root       1234 F.... unattended-upgr\n\
                     \x20                    root       1240 F.... dpkg\n"
                .into(),
        };
        let h = holders(
            "n",
            "fuser -v /var/lib/dpkg/lock",
            "/var/lib/dpkg/lock",
            &out,
        )
        .expect("parsed");
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].to_string(), "unattended-upgr (pid 1234, user root)");
        assert_eq!(h[1].pid, 1240);
        let nobody = Output {
            code: 1,
            ..Output::default()
        };
        assert!(holders("n", "c", "/x", &nobody).expect("nobody").is_empty());
    }
    use crate::error::Error;

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    const CMD: &str = "fuser 4446/tcp";

    #[test]
    fn pids_or_nothing() {
        assert_eq!(
            listeners("n", CMD, &out(0, "  1234", "4446/tcp:\n")).unwrap(),
            [1234]
        );
        assert_eq!(
            listeners("n", CMD, &out(0, "  1234  1240\n", "4446/tcp:\n")).unwrap(),
            [1234, 1240]
        );
        assert_eq!(listeners("n", CMD, &out(0, " 77e", "")).unwrap(), [77]);
        assert!(listeners("n", CMD, &out(1, "", "")).unwrap().is_empty());
        assert!(
            listeners(
                "n",
                CMD,
                &out(1, "", "Cannot stat file /proc/9/fd/3: No such file\n")
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn rejects_anything_else() {
        let parsed = listeners("node-01", CMD, &out(0, "  abc", "4446/tcp:\n"));
        crate::primitives::parse::assert_rejected(parsed, "node-01", CMD, "abc");
        assert!(listeners("n", CMD, &out(0, "", "4446/tcp:\n")).is_err());
        assert!(listeners("n", CMD, &out(1, "1234", "")).is_err());
        assert!(listeners("n", CMD, &out(1, "", "Usage: fuser [-fIMuvw] ...\n")).is_err());
        assert!(matches!(
            listeners("n", CMD, &out(127, "", "sh: fuser: not found\n")),
            Err(Error::Remote { code: 127, .. })
        ));
    }
}
