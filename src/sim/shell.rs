//! A deliberately tiny shell for the in-process transport: simple commands joined by `;`,
//! `&&` and `||`, words split and unquoted like `sh` does (via `shlex`). Anything richer —
//! pipes, redirections, substitutions, variables, subshells — is refused as "not simulated"
//! rather than approximated, so that a runbook never passes against the simulator by luck.

/// How a command is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `;` (or the first command of the line): always runs.
    Seq,
    /// `&&`: runs when the previous command succeeded.
    And,
    /// `||`: runs when the previous command failed.
    Or,
}

/// A line the mini shell refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not simulated: {line}")]
pub struct Unsupported {
    /// The refused line.
    pub line: String,
}

/// Environment assignments a command may carry (and which the simulator may ignore).
const HARMLESS_ASSIGNMENTS: [&str; 3] = ["LC_ALL=C", "LANG=C", "DEBIAN_FRONTEND=noninteractive"];

const SEQ: &str = "\u{1}S";
const AND: &str = "\u{1}A";
const OR: &str = "\u{1}O";

/// Marks unquoted operators with sentinel words and refuses unsupported constructs.
fn mark_operators(line: &str) -> Option<String> {
    #[derive(PartialEq)]
    enum Q {
        None,
        Single,
        Double,
    }
    if line.contains('\u{1}') {
        return None;
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut q = Q::None;
    let mut chars = line.chars().peekable();
    let mut word_start = true;
    while let Some(c) = chars.next() {
        match q {
            Q::Single => {
                if c == '\'' {
                    q = Q::None;
                }
                out.push(c);
            }
            Q::Double => match c {
                '"' => {
                    q = Q::None;
                    out.push(c);
                }
                '\\' => {
                    out.push(c);
                    out.push(chars.next()?);
                }
                '$' | '`' => return None,
                _ => out.push(c),
            },
            Q::None => {
                let starts = word_start;
                word_start = false;
                match c {
                    '\'' => {
                        q = Q::Single;
                        out.push(c);
                    }
                    '"' => {
                        q = Q::Double;
                        out.push(c);
                    }
                    '\\' => {
                        out.push(c);
                        out.push(chars.next()?);
                    }
                    '#' if starts => break,
                    ';' | '\n' => {
                        out.push_str(&format!(" {SEQ} "));
                        word_start = true;
                    }
                    '&' if chars.peek() == Some(&'&') => {
                        chars.next();
                        out.push_str(&format!(" {AND} "));
                        word_start = true;
                    }
                    '|' if chars.peek() == Some(&'|') => {
                        chars.next();
                        out.push_str(&format!(" {OR} "));
                        word_start = true;
                    }
                    '&' | '|' | '>' | '<' | '(' | ')' | '`' | '$' | '{' | '}' => return None,
                    ' ' | '\t' => {
                        out.push(c);
                        word_start = true;
                    }
                    _ => out.push(c),
                }
            }
        }
    }
    (q == Q::None).then_some(out)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            let mut cs = name.chars();
            cs.next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// Splits a line into simple commands and the operators joining them.
pub fn parse(line: &str) -> Result<Vec<(Op, Vec<String>)>, Unsupported> {
    let unsupported = || Unsupported {
        line: line.to_owned(),
    };
    let marked = mark_operators(line).ok_or_else(unsupported)?;
    let words = shlex::split(&marked).ok_or_else(unsupported)?;
    let mut list: Vec<(Op, Vec<String>)> = Vec::new();
    let mut op = Op::Seq;
    let mut cur: Vec<String> = Vec::new();
    let mut pending_op = false;
    for w in words {
        let next = match w.as_str() {
            SEQ => Some(Op::Seq),
            AND => Some(Op::And),
            OR => Some(Op::Or),
            _ => None,
        };
        match next {
            Some(n) => {
                if cur.is_empty() {
                    return Err(unsupported());
                }
                list.push((op, std::mem::take(&mut cur)));
                op = n;
                pending_op = n != Op::Seq;
            }
            None => {
                if cur.is_empty() && is_assignment(&w) {
                    if !HARMLESS_ASSIGNMENTS.contains(&w.as_str()) {
                        return Err(unsupported());
                    }
                    continue;
                }
                if cur.is_empty() && w == "!" {
                    return Err(unsupported());
                }
                cur.push(w);
                pending_op = false;
            }
        }
    }
    if !cur.is_empty() {
        list.push((op, cur));
    } else if pending_op {
        return Err(unsupported());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn operators_and_quotes() {
        let l = parse("LC_ALL=C apt-get update && echo 'a && b' || false; true").expect("parse");
        assert_eq!(
            l,
            vec![
                (Op::Seq, words(&["apt-get", "update"])),
                (Op::And, words(&["echo", "a && b"])),
                (Op::Or, words(&["false"])),
                (Op::Seq, words(&["true"])),
            ]
        );
        let l = parse("sh -c 'virsh list --name | cat'").expect("parse");
        assert_eq!(l[0].1[2], "virsh list --name | cat");
        assert_eq!(parse("true;").expect("parse").len(), 1);
    }

    #[test]
    fn rejects_unsupported() {
        for bad in [
            "virsh list | grep x",
            "echo x > /tmp/f",
            "cat < f",
            "echo $(hostname)",
            "echo `hostname`",
            "echo \"$HOME\"",
            "FOO=1 true",
            "sleep 1 &",
            "(true)",
            "echo 'unterminated",
            "&& true",
            "true &&",
            "true ;; false",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
