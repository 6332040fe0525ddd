//! Shell completions and the man page, both generated from the one clap definition of the
//! command line.

use std::path::Path;

use crate::support::ovsup::Ovsup;

const SUBCOMMANDS: &[&str] = &["history", "alba", "eval", "definitions", "import-legacy"];

#[test]
fn completions_for_bash_zsh_and_fish_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        // No inventory is needed to generate them.
        let ran = Ovsup::with_inventory(Path::new("/nonexistent/inventory.toml"))
            .args(["completions", shell])
            .run()
            .code(0);
        assert!(ran.stdout.len() > 1000, "{shell}: {}", ran.stdout);
        for sub in SUBCOMMANDS {
            assert!(ran.stdout.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            ran.stdout.contains("--skip-vm"),
            "{shell} completion lacks --skip-vm"
        );
    }
    Ovsup::with_inventory(Path::new("sim"))
        .args(["completions", "tcsh"])
        .run()
        .code(2);
}

#[test]
fn the_man_page_is_roff_naming_the_subcommands_and_options() {
    let ran = Ovsup::with_inventory(Path::new("/nonexistent/inventory.toml"))
        .args(["man"])
        .run()
        .code(0);
    // roff escapes a minus sign: `import\-legacy`.
    let page = &ran.stdout.replace("\\-", "-");
    assert!(
        page.starts_with(".ie") || page.contains(".TH ovsup"),
        "{page}"
    );
    assert!(
        page.contains(".SH SUBCOMMANDS") || page.contains("SUBCOMMANDS"),
        "{page}"
    );
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "the man page lacks {sub}");
    }
    assert!(page.contains("--dry-run"), "{page}");
}
