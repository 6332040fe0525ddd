//! `ovsup nodes`: the target set, and with `--ping` reachability and round-trip time.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure};

/// `ovsup nodes [--ping]`: the target set, and with `--ping` whether and how fast each answers.
pub fn list(g: &Global, host: &Arc<Host>, ping: bool) -> Result<serde_json::Value> {
    let targets = host.targets(None);
    let pings = if ping {
        let results = host.block_on(host.fan_out("ping", &targets, OnFailure::Continue, |node| {
            let host = &host;
            async move {
                let connect = host.connect(&node).await?;
                let began = std::time::Instant::now();
                host.exec_ok(&node, "true", Effect::Read, None).await?;
                Ok((connect, began.elapsed()))
            }
        }));
        Some(results)
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut unreachable = Vec::new();
    let mut outcomes = pings.map(Vec::into_iter);
    for node in &targets {
        let mut row = serde_json::json!({
            "name": node.name,
            "host": node.host,
            "groups": node.groups,
        });
        match outcomes.as_mut().and_then(Iterator::next) {
            Some((_, Ok((connect, rtt)))) => {
                row["reachable"] = true.into();
                row["connect_ms"] = ms(connect).into();
                row["rtt_ms"] = ms(rtt).into();
            }
            Some((_, Err(e))) => {
                row["reachable"] = false.into();
                row["error"] = e.to_string().into();
                unreachable.push(e);
            }
            None => {}
        }
        rows.push(row);
    }
    if !g.json {
        for row in &rows {
            let mut line = format!(
                "{:<20} {:<24} {}",
                row["name"].as_str().unwrap_or_default(),
                row["host"].as_str().unwrap_or_default(),
                row["groups"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default()
            );
            match row.get("reachable").and_then(|r| r.as_bool()) {
                Some(true) => line.push_str(&format!(
                    "  ok  connect {:.1} ms  rtt {:.1} ms",
                    row["connect_ms"].as_f64().unwrap_or_default(),
                    row["rtt_ms"].as_f64().unwrap_or_default()
                )),
                Some(false) => line.push_str("  UNREACHABLE"),
                None => {}
            }
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    }
    if !unreachable.is_empty() {
        return Err(Error::Nodes {
            total: targets.len(),
            failures: unreachable,
        });
    }
    Ok(if g.json {
        serde_json::Value::Array(rows)
    } else {
        serde_json::Value::Null
    })
}

/// Milliseconds with one decimal.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
