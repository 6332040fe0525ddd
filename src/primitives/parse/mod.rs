//! Parsers of what the real tools print (formats in docs/node-commands.md). Pure functions
//! over text: each accepts the layouts the real tools use (apt 1.0 and newer, upstart and
//! systemd) and rejects anything else with the offending line, never guessing.
