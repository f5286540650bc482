//! The exec's own process as the container sees it, read from the gateway host's `/proc`.
//!
//! Docker reports an exec's host pid. When the gateway shares the host's pid namespace (it runs
//! on the Docker host, not in a container of its own), `/proc/<host pid>/status` names the
//! process's pid inside the container (the last `NSpid` entry) and `/proc/<host pid>/stat` its
//! start time, which is the same in every namespace. With them the kill script finds the
//! session's shell even after it dropped the marker (`exec env -u ENTRY_SESSION bash`).
//!
//! Guarantees: only a well-formed answer naming a nested pid is given; otherwise `None`, and the
//! script falls back to the marker. When the gateway has a pid namespace of its own, the number
//! may name an unrelated process of the gateway's; that cannot select a stranger in the
//! container, because the script also requires the start time to match and the process to be
//! an exec root (PPid 0) there.

use std::fs;

/// `<pid in the container>:<start time>` of host process `host_pid`, when this host's `/proc`
/// shows it inside a nested pid namespace.
pub fn exec_process(host_pid: i64) -> Option<String> {
    if host_pid <= 0 {
        return None;
    }
    let status = fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    let stat = fs::read_to_string(format!("/proc/{host_pid}/stat")).ok()?;
    parse(host_pid, &status, &stat)
}

fn parse(host_pid: i64, status: &str, stat: &str) -> Option<String> {
    let nspid: Vec<i64> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (&first, &inner) = (nspid.first()?, nspid.last()?);
    if first != host_pid || nspid.len() < 2 {
        return None;
    }
    // Field 22, start time: the 20th after the command name, which ends at the last ')'.
    let after_comm = &stat[stat.rfind(") ")? + 2..];
    let born: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    Some(format!("{inner}:{born}"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    const STAT: &str = "6260 (ba) sh) S 6240 6260 6260 0 -1 4194560 1081 0 1 0 2 1 0 0 20 0 1 0 140898 2322432 348";

    #[test]
    fn nested_pids_give_the_container_pid_and_start() {
        assert_eq!(parse(6260, "Name:\tbash\nNSpid:\t6260\t13\n", STAT).as_deref(), Some("13:140898"));
        assert_eq!(parse(6260, "NSpid:\t6260\t900\t13\n", STAT).as_deref(), Some("13:140898"));
    }

    #[test]
    fn anything_else_gives_nothing() {
        // Not nested: the gateway sees the process in its own namespace only.
        assert_eq!(parse(6260, "NSpid:\t6260\n", STAT), None);
        // A malformed line.
        assert_eq!(parse(6260, "NSpid:\t77\t13\n", STAT), None);
        assert_eq!(parse(6260, "Name:\tbash\n", STAT), None);
        assert_eq!(parse(6260, "NSpid:\t6260\t13\n", "6260 (bash) S 1"), None);
        assert_eq!(super::exec_process(0), None);
    }
}
