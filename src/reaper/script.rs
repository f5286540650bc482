//! The shell script the reaper runs inside a container to end a session's processes, and the
//! parsing of what it prints.
//!
//! The script finds processes by the marker variable in `/proc/<pid>/environ`, sends HUP,
//! waits the grace period, sends KILL to what is left, and prints one line:
//! `entry-reap found=<n> killed=<n> left=<n>`, or `entry-reap noproc` without `/proc`.
//! It needs only `sh`, `grep`, `kill` and `sleep` (all in busybox). It does not carry the marker
//! itself, so it never signals itself.

/// Which processes of a session are ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReapPolicy {
    /// The shell and everything it started, background jobs too.
    Tree,
    /// Only the exec's own process (its children are left to the container's init).
    Shell,
    /// Nothing.
    Off,
}

/// The script for `policy`; arguments are `$1` the marker (`ENTRY_SESSION=<id>`) and `$2` the
/// grace period in whole seconds.
pub fn script(policy: ReapPolicy) -> String {
    let body = match policy {
        ReapPolicy::Shell => SHELL_ONLY,
        ReapPolicy::Tree | ReapPolicy::Off => TREE,
    };
    format!("{PRELUDE}{body}")
}

const TREE: &str = r#"
[ -d /proc/1 ] || { echo "entry-reap noproc"; exit 0; }
pids=""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  marked "$p" && pids="$pids $p"
done
reap "$2" $pids
"#;

// The exec's own process is the marked one whose parent is outside the container (PPid 0).
const SHELL_ONLY: &str = r#"
[ -d /proc/1 ] || { echo "entry-reap noproc"; exit 0; }
pids=""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  marked "$p" || continue
  grep -q "^PPid:[[:space:]]*0$" "$d/status" 2>/dev/null && pids="$pids $p"
done
reap "$2" $pids
"#;

/// Shared by both scripts: `reap GRACE PID…` sends HUP, waits up to GRACE seconds, sends
/// KILL to what is left, and reports.
/// A process counts as alive while its environment still shows the marker: a zombie (dead,
/// not yet reaped by its parent) has an empty environment.
pub const PRELUDE: &str = r#"
marker=$1
marked() { grep -q "$marker" "/proc/$1/environ" 2>/dev/null; }
reap() {
  grace=$1; shift
  n=$#; list="$*"
  [ "$n" -eq 0 ] && { echo "entry-reap found=0 killed=0 left=0"; exit 0; }
  kill -HUP $list 2>/dev/null
  waited=0
  while [ "$waited" -lt $((grace*10)) ]; do
    alive=0; for p in $list; do marked "$p" && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1; waited=$((waited+1))
  done
  left=""; for p in $list; do marked "$p" && left="$left $p"; done
  [ -n "$left" ] && kill -KILL $left 2>/dev/null && sleep 0.1
  still=0; for p in $left; do marked "$p" && still=$((still+1)); done
  echo "entry-reap found=$n killed=$((n-still)) left=$still"
}
"#;

/// What the script reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptReport {
    Counted { found: u32, killed: u32, left: u32 },
    NoProc,
}

/// Parses the script's output; `None` when it printed no report line.
pub fn parse_report(output: &str) -> Option<ScriptReport> {
    let line = output.lines().rev().find_map(|l| l.trim().strip_prefix("entry-reap "))?;
    if line == "noproc" {
        return Some(ScriptReport::NoProc);
    }
    let mut found = None;
    let mut killed = None;
    let mut left = None;
    for field in line.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        let value = value.parse().ok()?;
        match key {
            "found" => found = Some(value),
            "killed" => killed = Some(value),
            "left" => left = Some(value),
            _ => {}
        }
    }
    Some(ScriptReport::Counted { found: found?, killed: killed?, left: left? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(
            parse_report("noise\nentry-reap found=3 killed=3 left=0\n"),
            Some(ScriptReport::Counted { found: 3, killed: 3, left: 0 })
        );
        assert_eq!(parse_report("entry-reap noproc"), Some(ScriptReport::NoProc));
        assert_eq!(parse_report("OCI runtime exec failed: exec: \"sh\": executable file not found"), None);
        assert_eq!(parse_report("entry-reap found=x"), None);
    }
}
