//! Secret values and the command lines that carry them. A runbook marks a text with
//! `secret(text)`; the node the command is sent to gets the real text, and everything else —
//! the journal, the events (`--json`, the terminal, `--dry-run`'s printout), the errors —
//! gets `<secret>` in its place.
//!
//! It is enforced in one place: a [`CommandLine`] is the text sent to the node together with
//! the text shown for it, built once (from shell text, from an argument vector, or from a
//! [`Secret`]) and carried as one value through `Host::exec`, which sends
//! [`CommandLine::sent`] and records, reports and names in errors only
//! [`CommandLine::shown`]. What a node echoes back in an error (stderr, a simulator's
//! "not simulated: …") is scrubbed of the secret texts too ([`CommandLine::redact`]).

use std::borrow::Cow;

use crate::error::{Error, Result};

/// What stands for a secret wherever it is shown.
pub const SHOWN: &str = "<secret>";

/// A text that must reach a node and nothing else, possibly with plain text around it
/// (`"--password=" + secret(pw)` is a `Secret` whose plain part may be shown). It prints as
/// `<secret>`, in Rust (`Debug`, `Display`) as in a script.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    parts: Vec<Part>,
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Plain(String),
    Hidden(String),
}

impl Secret {
    /// A wholly secret text.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret {
            parts: vec![Part::Hidden(text.into())],
        }
    }

    /// This secret followed by plain text.
    pub fn then_plain(mut self, text: &str) -> Secret {
        self.parts.push(Part::Plain(text.to_string()));
        self
    }

    /// Plain text followed by this secret.
    pub fn after_plain(mut self, text: &str) -> Secret {
        self.parts.insert(0, Part::Plain(text.to_string()));
        self
    }

    /// This secret followed by another.
    pub fn then(mut self, other: Secret) -> Secret {
        self.parts.extend(other.parts);
        self
    }

    /// The real text, for the node only.
    fn real(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Plain(s) | Part::Hidden(s) => s.as_str(),
            })
            .collect()
    }

    /// The text shown for it: the plain parts, and [`SHOWN`] for each secret part.
    fn shown(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Plain(s) => s.as_str(),
                Part::Hidden(_) => SHOWN,
            })
            .collect()
    }

    /// The secret parts (non-empty ones: an empty secret hides nothing).
    fn hidden(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Hidden(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SHOWN)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SHOWN)
    }
}

/// One word of an argument vector: plain text, or a secret.
#[derive(Debug, Clone)]
pub enum Word {
    /// Shown as it is.
    Plain(String),
    /// Shown as `<secret>` (its plain parts as they are).
    Secret(Secret),
}

/// A command line for a node: the text sent, and the text everything else shows for it.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandLine {
    sent: String,
    shown: String,
    secrets: Vec<String>,
}

impl CommandLine {
    /// Shell text without a secret: sent and shown alike.
    pub fn plain(text: impl Into<String>) -> CommandLine {
        let text = text.into();
        CommandLine {
            shown: text.clone(),
            sent: text,
            secrets: Vec::new(),
        }
    }

    /// Shell text holding secrets (`"echo " + secret(pw) + " | chpasswd"`).
    pub fn shell(text: &Secret) -> CommandLine {
        CommandLine {
            sent: text.real(),
            shown: text.shown(),
            secrets: text.hidden().map(str::to_string).collect(),
        }
    }

    /// An argument vector, each word quoted for the remote shell ([`crate::quote::join`]); a
    /// secret word is shown as `<secret>` (quoted with its plain parts when it has any).
    pub fn argv(words: &[Word]) -> Result<CommandLine> {
        let real: Vec<String> = words
            .iter()
            .map(|w| match w {
                Word::Plain(s) => s.clone(),
                Word::Secret(s) => s.real(),
            })
            .collect();
        let sent = crate::quote::join(&real)?;
        let mut secrets = Vec::new();
        let mut shown = Vec::with_capacity(words.len());
        for w in words {
            shown.push(match w {
                Word::Plain(s) => crate::quote::join(&[s])?,
                Word::Secret(s) if s.parts.len() == 1 => SHOWN.to_string(),
                Word::Secret(s) => crate::quote::join(&[s.shown()])?,
            });
            if let Word::Secret(s) = w {
                secrets.extend(s.hidden().map(str::to_string));
            }
        }
        Ok(CommandLine {
            sent,
            shown: shown.join(" "),
            secrets,
        })
    }

    /// The text sent to the node.
    pub fn sent(&self) -> &str {
        &self.sent
    }

    /// The text the journal, the events and the errors show.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the line holds a secret.
    pub fn has_secret(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// `text` (a node's stderr, an error message) with every secret text replaced by
    /// `<secret>`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), SHOWN));
            }
        }
        out
    }

    /// An error about this line as it may be shown: the command as [`CommandLine::shown`],
    /// and the texts that came from the node (stderr, a reason, a message) redacted.
    pub fn redact_error(&self, e: Error) -> Error {
        if !self.has_secret() {
            return e;
        }
        let text = |s: String| self.redact(&s).into_owned();
        match e {
            Error::Remote {
                node, code, stderr, ..
            } => Error::Remote {
                node,
                command: self.shown.clone(),
                code,
                stderr: text(stderr),
            },
            Error::Timeout { node, seconds, .. } => Error::Timeout {
                node,
                command: self.shown.clone(),
                seconds,
            },
            Error::Unexpected {
                node,
                line,
                message,
                ..
            } => Error::Unexpected {
                node,
                command: self.shown.clone(),
                line: text(line),
                message: text(message),
            },
            Error::Unreachable { node, reason } => Error::Unreachable {
                node,
                reason: text(reason),
            },
            Error::Node { node, message } => Error::Node {
                node,
                message: text(message),
            },
            Error::Simulator { node, message } => Error::Simulator {
                node,
                message: text(message),
            },
            Error::Internal(message) => Error::Internal(text(message)),
            other => other,
        }
    }
}

impl std::fmt::Debug for CommandLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CommandLine").field(&self.shown).finish()
    }
}

impl From<&str> for CommandLine {
    fn from(text: &str) -> CommandLine {
        CommandLine::plain(text)
    }
}

impl From<&String> for CommandLine {
    fn from(text: &String) -> CommandLine {
        CommandLine::plain(text.as_str())
    }
}

impl From<String> for CommandLine {
    fn from(text: String) -> CommandLine {
        CommandLine::plain(text)
    }
}

impl From<&CommandLine> for CommandLine {
    fn from(line: &CommandLine) -> CommandLine {
        line.clone()
    }
}

/// Refuse shell text that holds `<secret>`: a secret was turned into text (string
/// interpolation, `to_string`), so the node would get the word `<secret>` instead of it.
pub fn refuse_shown_secret(text: &str) -> Result<()> {
    if text.contains(SHOWN) {
        return Err(Error::argument(format!(
            "the command holds {SHOWN}: a secret() became text (string interpolation or \
             to_string) and would be sent as the word {SHOWN}; join it with `+` instead \
             (\"--password=\" + pw), or pass it as a word of cmd([...])"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_gets_the_text_and_everything_else_the_mark() {
        let pw = Secret::new("hunter2 $x");
        let line = CommandLine::argv(&[
            Word::Plain("mysql".into()),
            Word::Plain("-u".into()),
            Word::Plain("root o'brien".into()),
            Word::Secret(pw.clone().after_plain("-p")),
            Word::Secret(pw.clone()),
        ])
        .expect("argv");
        assert_eq!(
            shlex::split(line.sent()).expect("split"),
            ["mysql", "-u", "root o'brien", "-phunter2 $x", "hunter2 $x"]
        );
        assert_eq!(
            line.shown(),
            "mysql -u \"root o'brien\" '-p<secret>' <secret>"
        );
        assert!(!line.shown().contains("hunter2"));
        assert_eq!(
            line.redact("error: bad password hunter2 $x"),
            "error: bad password <secret>"
        );
        let shell = CommandLine::shell(&pw.clone().after_plain("echo ").then_plain(" | chpasswd"));
        assert_eq!(shell.sent(), "echo hunter2 $x | chpasswd");
        assert_eq!(shell.shown(), "echo <secret> | chpasswd");
        assert_eq!(format!("{pw:?} {pw}"), "<secret> <secret>");
        let e = shell.redact_error(Error::Remote {
            node: "n".into(),
            command: shell.sent().to_string(),
            code: 1,
            stderr: "not simulated: echo hunter2 $x".into(),
        });
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(refuse_shown_secret("echo <secret>").is_err());
        assert!(refuse_shown_secret("echo ok").is_ok());
    }
}
