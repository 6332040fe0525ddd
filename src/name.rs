//! The names an operator gives nodes, groups and environments (in an inventory or a simulated
//! layout): one rule for both, since a layout's nodes become an inventory's.

/// The longest name a node, host, user or environment may have: a DNS name's 253 characters.
pub const MAX_NAME_LEN: usize = 253;

/// Node, group and environment names: letters, digits, `.`, `_`, `-`, not starting with
/// `-`, at most [`MAX_NAME_LEN`] characters.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "expected a name of at most {MAX_NAME_LEN} characters, found one of {}",
            name.len()
        ));
    }
    if name.is_empty() || name.starts_with('-') {
        return Err(format!(
            "expected a name not empty and not starting with '-', found {name:?}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "expected a name of letters, digits, '.', '_' and '-', found {c:?} in {name:?}"
        ));
    }
    Ok(())
}
