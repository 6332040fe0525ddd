#!/usr/bin/env python3
"""What one SSH session costs a test-bed node, in CPU: the node's sshd (the listener, its
per-connection processes and the sessions they reaped) before and after 200 sessions of a
command over one open ControlMaster. This is how bench/README.md's per-session costs were
found (a bare session, the on-node `timeout` wrapper, the run lock's script, old and new).

    cargo run --release -p ovsup-testbed --example bed -- 1 &   # prints the bed's dir
    python3 bench/session_cost.py BED_DIR
"""
import os
import subprocess
import sys
import time

# The run lock's script before issue 10 (mkdir, two cats and a command substitution) and now
# (builtins, `flock` the only program): src/transport/node_lock.rs.
OLD_LOCK = """umask 077 && mkdir -p /var/lib/ovsup && exec 9>>/var/lib/ovsup/run.lock || exit 97
if flock -n 9; then
  prev=$(cat /var/lib/ovsup/run.lock.holder 2>/dev/null)
  printf '%s\\n' '{"pid":1}' > /var/lib/ovsup/run.lock.holder
  printf 'LOCKED\\t%s\\n' "$prev"
  cat >/dev/null
  : > /var/lib/ovsup/run.lock.holder
else
  printf 'BUSY\\t%s\\n' "$(cat /var/lib/ovsup/run.lock.holder 2>/dev/null)"
fi
"""
NEW_LOCK = """umask 077 && { [ -d /var/lib/ovsup ] || mkdir -p /var/lib/ovsup; } && exec 9>>/var/lib/ovsup/run.lock || exit 97
prev=
if flock -n 9; then
  [ -s /var/lib/ovsup/run.lock.holder ] && read -r prev < /var/lib/ovsup/run.lock.holder
  printf '%s\\n' '{"pid":1}' > /var/lib/ovsup/run.lock.holder
  printf 'LOCKED\\t%s\\n' "$prev"
  while read -r _; do :; done
  : > /var/lib/ovsup/run.lock.holder
else
  [ -s /var/lib/ovsup/run.lock.holder ] && read -r prev < /var/lib/ovsup/run.lock.holder
  printf 'BUSY\\t%s\\n' "$prev"
fi
"""
COMMANDS = [
    ("bare session (`true`)", "true"),
    ("ovsup's wrapper (`timeout -k 5 30 true`)", "timeout -k 5 30 true"),
    ("run lock, old script", OLD_LOCK),
    ("run lock, new script", NEW_LOCK),
]
SESSIONS = 200


def procs():
    """pid -> (ppid, utime + stime + cutime + cstime in ticks)"""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (f[1], sum(int(x) for x in f[11:15]))
    return out


def tree_ticks(root):
    ps = procs()
    todo, total = [root], 0
    while todo:
        p = todo.pop()
        total += ps.get(p, ("", 0))[1]
        todo += [c for c, (pp, _) in ps.items() if pp == p]
    return total


def main():
    bed = sys.argv[1].rstrip("/")
    cfg = f"{bed}/ssh_config"
    node = sorted(d for d in os.listdir(bed) if d.startswith("node-"))[0]
    addr = next(
        line.split()[1]
        for line in open(cfg)
        if line.strip().startswith("HostName")
    )
    sshd = next(
        p
        for p in os.listdir("/proc")
        if p.isdigit()
        and f"{bed}/{node}/sshd_config".encode() in open(f"/proc/{p}/cmdline", "rb").read()
        and open(f"/proc/{p}/cmdline", "rb").read().startswith(b"sshd:")
    )
    ctl = f"/tmp/session-cost-{os.getpid()}"
    ssh = ["ssh", "-F", cfg, "-o", f"ControlPath={ctl}"]
    subprocess.run(ssh + ["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-fN", f"root@{addr}"], check=True)
    hz = os.sysconf("SC_CLK_TCK")
    try:
        for label, cmd in COMMANDS:
            before = tree_ticks(sshd)
            for _ in range(SESSIONS):
                subprocess.run(ssh + [f"root@{addr}", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            time.sleep(0.5)
            ms = (tree_ticks(sshd) - before) * 1000 / hz / SESSIONS
            print(f"{label:45s} {ms:5.2f} ms of node CPU per session")
    finally:
        subprocess.run(ssh + ["-O", "exit", f"root@{addr}"], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
