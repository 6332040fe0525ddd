//! `ip -4 -o addr show dev backplane1`: the storage-backplane address Arakoon restarts are
//! pointed at. Only the one-line (`-o`) IPv4 form is simulated.

use std::net::Ipv4Addr;

use super::{Ctx, join};
use crate::sim::SimOutput;

/// The interface index `ip` shows for backplane1.
const BACKPLANE_INDEX: u32 = 5;

/// `ip -4 -o addr show [dev] IFACE`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let iface = match args.as_slice() {
        ["-4", "-o", "addr" | "address" | "a", "show", "dev", i]
        | ["-4", "-o", "addr" | "address" | "a", "show", i]
        | ["-o", "-4", "addr" | "address" | "a", "show", "dev", i] => *i,
        _ => return SimOutput::not_simulated(&join(argv)),
    };
    let addr = match (iface, &ctx.state.backplane1) {
        ("backplane1", Some(a)) => a.clone(),
        _ => return SimOutput::fail(1, format!("Device \"{iface}\" does not exist.\n")),
    };
    let Some((ip, prefix)) = addr
        .split_once('/')
        .and_then(|(ip, p)| Some((ip.parse::<Ipv4Addr>().ok()?, p.parse::<u32>().ok()?)))
        .filter(|(_, p)| *p <= 32)
    else {
        return SimOutput::fail(
            1,
            format!("ovs-sim: bad backplane1 address in state: {addr}\n"),
        );
    };
    let host_mask = if prefix == 0 {
        u32::MAX
    } else {
        (1u32 << (32 - prefix)) - 1
    };
    let brd = Ipv4Addr::from(u32::from(ip) | host_mask);
    SimOutput::ok(format!(
        "{BACKPLANE_INDEX}: {iface}    inet {ip}/{prefix} brd {brd} scope global {iface}\\       valid_lft forever preferred_lft forever\n"
    ))
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn backplane() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let o = run(&n, "ip -4 -o addr show dev backplane1");
        assert_eq!(
            o.stdout,
            "5: backplane1    inet 10.107.1.11/24 brd 10.107.1.255 scope global backplane1\\       valid_lft forever preferred_lft forever\n"
        );
        let o = run(&n, "ip -4 -o addr show dev eth9");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (1, "Device \"eth9\" does not exist.\n")
        );
    }
}
