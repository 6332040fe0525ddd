//! Turning an argument vector into shell text for the remote shell. Every argument that
//! reaches a node goes through here (or is shell text the operator wrote himself).

use crate::error::{Error, Result};

/// Quote each argument for a POSIX shell and join them with spaces (`shlex::try_join`, which
/// refuses NUL — a NUL cannot cross to a remote shell intact).
pub fn join<S: AsRef<str>>(argv: &[S]) -> Result<String> {
    if argv.is_empty() {
        return Err(Error::argument(
            "empty command: expected at least a program name",
        ));
    }
    shlex::try_join(argv.iter().map(AsRef::as_ref))
        .map_err(|_| Error::argument("a command argument contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_arguments_stay_single_words() {
        let line = join(&["echo", "a b", "it's", "$HOME", "x;rm -rf /", "`id`"]).unwrap();
        let back = shlex::split(&line).unwrap();
        assert_eq!(back, ["echo", "a b", "it's", "$HOME", "x;rm -rf /", "`id`"]);
        assert!(join(&["a\0b"]).is_err());
        assert!(join::<&str>(&[]).is_err());
    }
}
