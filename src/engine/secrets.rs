//! `secret(text)`: a value that reaches the node a command is sent to, and nothing else (see
//! `src/secret.rs`); joining it with plain text keeps it secret.

use rhai::plugin::*;

/// The script API of secrets.
#[export_module]
pub mod secrets_api {
    use rhai::ImmutableString;

    use crate::engine::error::raise;
    use crate::error::Error;
    use crate::secret::{SHOWN, Secret};

    /// Mark `text` as secret (a password, a token): the `Secret` it returns is sent as it is
    /// by `cmd(target, [..., s, ...])` (as a word) and by `sh`, `query`, `try_sh` and
    /// `try_query` (as the line), while the journal, the events, the errors and the dry-run
    /// output show `<secret>` in its place. It prints as `<secret>` and cannot be turned back
    /// into text; join it with `+` (`"--password=" + s` is a secret showing as
    /// `--password=<secret>`), not with string interpolation, which would send `<secret>`.
    pub fn secret(text: &str) -> Secret {
        Secret::new(text)
    }

    /// Plain text followed by a secret: a secret, whose plain part is shown.
    #[rhai_fn(name = "+")]
    pub fn plain_then_secret(plain: &str, secret: Secret) -> Secret {
        secret.after_plain(plain)
    }

    /// A secret followed by plain text: a secret, whose plain part is shown.
    #[rhai_fn(name = "+")]
    pub fn secret_then_plain(secret: Secret, plain: &str) -> Secret {
        secret.then_plain(plain)
    }

    /// Two secrets joined: a secret.
    #[rhai_fn(name = "+")]
    pub fn secret_then_secret(first: Secret, second: Secret) -> Secret {
        first.then(second)
    }

    /// `text += secret` cannot keep the secret (the variable holds text): write
    /// `text = text + secret`, which makes it a secret.
    #[rhai_fn(name = "+=", return_raw)]
    pub fn append_to_text(
        text: &mut ImmutableString,
        secret: Secret,
    ) -> Result<(), Box<EvalAltResult>> {
        let _ = (text, secret);
        Err(raise(Error::argument(
            "`text += secret` would turn the secret into text: write `text = text + secret`",
        )))
    }

    /// A secret prints as `<secret>`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(secret: &mut Secret) -> String {
        let _ = secret;
        SHOWN.to_string()
    }
}
