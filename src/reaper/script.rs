//! The shell script the reaper runs inside a container to end a session's processes, and the
//! parsing of what it prints.
//!
//! The script snapshots what the policy selects (pid and start time, so a reused pid is never
//! mistaken for a selected process, and a process that re-execs or drops the marker stays
//! selected), sends HUP, waits the grace period, then freezes (STOP) what of the selection still
//! lives together with anything it started meanwhile, until a scan finds nothing new, sends KILL,
//! and scans again. It prints one `entry-reap left <pid> <comm>` line per process still alive
//! after all that, then one summary line:
//! `entry-reap found=<n> marked=<n> descendants=<n> terminal=<n> reparented=<n> later=<n>
//! ended=<n> left=<n> shell=<yes|no>`, or only `entry-reap noproc` without `/proc`.
//! It needs POSIX `sh`, `grep` (with `-z`), `kill` and `sleep`, and `readlink`, `tr` and `head`
//! for the terminal and strict checks (all in busybox). It does not carry the marker and skips
//! its own pid; its children are its own, never in the selection.

/// The kill script. Arguments: `$1` the marker (`ENTRY_SESSION=<id>`), `$2` the grace period in
/// whole seconds, `$3` the policy (`tree`, `strict` or `shell`), `$4` the exec's own process as
/// `<pid in the container>:<start time>` when the gateway could tell it, else empty.
///
/// Selection (`choose`), from a fresh scan of `/proc` each time:
/// - every process in `$keep` (pid:start) that still lives;
/// - the marked processes (policy `shell`: only the marked exec root, whose parent is outside
///   the container, PPid 0), and the exec's own process named by `$4` even without its marker;
/// - processes born at or after the session's shell that hold its terminal (fd 0, 1 or 2 on the
///   shell's pty or pipes), unless they carry another live session's marker;
/// - policy `strict`: processes born at or after the shell whose parent is pid 1, same exception;
/// - then every descendant of the selection (PPid walk), whatever its environment.
///
/// A zombie (state Z or X) counts as gone: it has ended, only its parent has not collected it.
pub const SCRIPT: &str = r#"
marker=$1 grace=$2 policy=$3 hint=$4 me=$$
[ -d /proc/1 ] || { echo "entry-reap noproc"; exit 0; }
shell= shell_born= term= keep= sent= stopped=

# info PID: sets state, ppid and born (start time, ticks after boot); fails when PID is gone.
info() {
  line=
  read -r line 2>/dev/null <"/proc/$1/stat"
  [ -n "$line" ] || return 1
  set -- ${line##*) }
  state=$1 ppid=$2 born=${20}
  [ -n "$born" ]
}
# alive PID BORN: PID still runs and is the process that started at BORN.
alive() {
  info "$1" && [ "$born" = "$2" ] || return 1
  case $state in Z|X|x) return 1 ;; esac
}
# marked PID: PID carried the marker at the last scan (one grep reads every environment).
marked() { case $marks in *" /proc/$1/environ "*) return 0 ;; esac; return 1; }
# session_of PID: the session marker in PID's environment, if any.
session_of() { grep -xz 'ENTRY_SESSION=.*' "/proc/$1/environ" 2>/dev/null | tr '\0' '\n' | head -n 1; }
# other_live PID: PID carries the marker of another session whose shell is alive here.
other_live() {
  s=$(session_of "$1")
  case $s in ''|"$marker"|*[!A-Za-z0-9_=.:-]*) return 1 ;; esac
  case " $live " in *" $s "*) return 0 ;; esac
  return 1
}
# on_terminal PID: one of PID's fd 0, 1, 2 is the session's pty or one of its pipes.
on_terminal() {
  [ -n "$term" ] || return 1
  for f in 0 1 2; do
    t=$(readlink "/proc/$1/fd/$f" 2>/dev/null) && [ -n "$t" ] || continue
    case " $term " in *" $t "*) return 0 ;; esac
  done
  return 1
}
has() { case " $set " in *" $1:"*) return 0 ;; esac; return 1; }
pick() { set="$set $1:$2"; eval "n_$3=\$((n_$3+1))"; grew=1; }
pids() { for e; do printf '%s ' "${e%%:*}"; done; }
count() { echo $#; }
any_alive() { for e; do alive "${e%%:*}" "${e#*:}" && return 0; done; return 1; }

# scan: lists live processes as pid:ppid:born in $all; finds the session's shell (once) and the
# markers of other sessions whose shell is alive.
scan() {
  all= live=
  marks=" $(grep -lxzF "$marker" /proc/[0-9]*/environ 2>/dev/null | tr '\n' ' ') "
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$me" ] && continue
    info "$p" || continue
    case $state in Z|X|x) continue ;; esac
    all="$all $p:$ppid:$born"
    [ "$ppid" = 0 ] && [ "$p" != 1 ] || continue
    s=$(session_of "$p")
    if [ "$s" = "$marker" ] || [ "$p:$born" = "$hint" ]; then
      [ -n "$shell" ] && continue
      shell=$p shell_born=$born
      for f in 0 1 2; do
        t=$(readlink "/proc/$p/fd/$f" 2>/dev/null)
        case $t in /dev/pts/*|pipe:*) term="$term $t" ;; esac
      done
    elif [ -n "$s" ]; then
      live="$live $s"
    fi
  done
}

# choose: sets $set (pid:born words) to what the policy ends, from a fresh scan.
choose() {
  scan
  set= n_kept=0 n_marked=0 n_descendants=0 n_terminal=0 n_reparented=0
  for e in $all; do
    p=${e%%:*} r=${e#*:}; pp=${r%%:*} b=${r#*:}
    case " $keep " in *" $p:$b "*) pick "$p" "$b" kept; continue ;; esac
    if [ "$p:$b" = "$hint" ] && [ "$pp" = 0 ]; then
      pick "$p" "$b" marked
    elif [ "$policy" = shell ]; then
      [ "$pp" = 0 ] && marked "$p" && pick "$p" "$b" marked
    else
      marked "$p" && pick "$p" "$b" marked
    fi
  done
  [ "$policy" = shell ] && return
  descend
  [ -n "$shell_born" ] || return 0
  for e in $all; do
    p=${e%%:*} r=${e#*:}; pp=${r%%:*} b=${r#*:}
    has "$p" || [ "$b" -lt "$shell_born" ] && continue
    if [ "$policy" = strict ] && [ "$pp" = 1 ]; then
      why=reparented
    elif on_terminal "$p"; then
      why=terminal
    else
      continue
    fi
    other_live "$p" || pick "$p" "$b" "$why"
  done
  descend
}
# descend: adds every descendant of the selection.
descend() {
  grew=1
  while [ "$grew" = 1 ]; do
    grew=0
    for e in $all; do
      p=${e%%:*} r=${e#*:}; pp=${r%%:*} b=${r#*:}
      has "$p" || ! has "$pp" || pick "$p" "$b" descendants
    done
  done
}

choose
found=$(count $set)
summary="marked=$n_marked descendants=$n_descendants terminal=$n_terminal reparented=$n_reparented"
later=0
if [ -n "$set" ]; then
  keep=$set sent=$set
  kill -HUP $(pids $set) 2>/dev/null
  waited=0
  while [ "$waited" -lt $((grace * 10)) ] && any_alive $keep; do
    sleep 0.1; waited=$((waited + 1))
  done
  # Freeze what lives of the selection and whatever it started meanwhile, until a scan finds
  # nothing new, so nothing forks away between the last scan and KILL.
  rounds=0
  while [ "$rounds" -lt 20 ]; do
    choose
    new=
    for e in $set; do case " $stopped " in *" $e "*) ;; *) new="$new $e" ;; esac; done
    [ -n "$new" ] || break
    kill -STOP $(pids $new) 2>/dev/null
    stopped="$stopped $new" keep="$keep $new"
    for e in $new; do case " $sent " in *" $e "*) ;; *) sent="$sent $e" later=$((later + 1)) ;; esac; done
    rounds=$((rounds + 1))
  done
  [ -n "$set" ] && kill -KILL $(pids $set) 2>/dev/null
  waited=0
  while [ "$waited" -lt 10 ] && any_alive $set; do sleep 0.1; waited=$((waited + 1)); done
fi
keep=$sent
choose
ended=0
for e in $sent; do alive "${e%%:*}" "${e#*:}" || ended=$((ended + 1)); done
for e in $set; do
  p=${e%%:*} c=
  read -r c 2>/dev/null <"/proc/$p/comm"
  c=$(printf '%s' "$c" | tr -c 'A-Za-z0-9._+:-' '_')
  echo "entry-reap left $p ${c:-?}"
done
found_shell=no; [ -n "$shell" ] && found_shell=yes
echo "entry-reap found=$found $summary later=$later ended=$ended left=$(count $set) shell=$found_shell"
"#;

/// What the script counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    /// Processes selected before HUP, and why: the marker, descent from a selected process,
    /// holding the session's terminal, born during the session and re-parented to init.
    pub found: u32,
    pub marked: u32,
    pub descendants: u32,
    pub terminal: u32,
    pub reparented: u32,
    /// Processes that joined the selection after HUP (started or escaped during the grace).
    pub later: u32,
    /// Selected processes that are gone at the end.
    pub ended: u32,
    /// Processes still alive at the end, as (pid, command name).
    pub left: Vec<(u32, String)>,
    /// Whether the session's shell was found (by its marker, as an exec root).
    pub shell_found: bool,
}

/// What the script reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptReport {
    Counted(Counts),
    NoProc,
}

/// Parses the script's output; `None` when it printed no well-formed summary line.
pub fn parse_report(output: &str) -> Option<ScriptReport> {
    let lines = output.lines().map(str::trim).filter_map(|l| l.strip_prefix("entry-reap "));
    let summary = lines.clone().rfind(|l| !l.starts_with("left "))?;
    if summary == "noproc" {
        return Some(ScriptReport::NoProc);
    }
    let mut counts = Counts::default();
    let mut left_count = None;
    let mut shell = None;
    let mut seen = 0;
    for field in summary.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        if key == "shell" {
            shell = Some(value == "yes");
            continue;
        }
        let value: u32 = value.parse().ok()?;
        let slot = match key {
            "found" => &mut counts.found,
            "marked" => &mut counts.marked,
            "descendants" => &mut counts.descendants,
            "terminal" => &mut counts.terminal,
            "reparented" => &mut counts.reparented,
            "later" => &mut counts.later,
            "ended" => &mut counts.ended,
            "left" => {
                left_count = Some(value);
                continue;
            }
            _ => continue,
        };
        *slot = value;
        seen += 1;
    }
    if seen < 7 {
        return None;
    }
    counts.shell_found = shell?;
    counts.left = lines
        .filter_map(|l| l.strip_prefix("left "))
        .filter_map(|l| {
            let (pid, comm) = l.split_once(' ').unwrap_or((l, "?"));
            Some((pid.parse().ok()?, comm.to_owned()))
        })
        .collect();
    // The count is authoritative; a line lost to the output limit is still a process left.
    let left_count = usize::try_from(left_count?).ok()?;
    while counts.left.len() < left_count {
        counts.left.push((0, "?".into()));
    }
    Some(ScriptReport::Counted(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        let output = "noise\nentry-reap left 64 sleep\nentry-reap left 70 my_job\n\
            entry-reap found=3 marked=1 descendants=1 terminal=1 reparented=0 later=2 ended=3 left=2 shell=yes\n";
        let Some(ScriptReport::Counted(counts)) = parse_report(output) else { panic!("not counted") };
        assert_eq!(
            counts,
            Counts {
                found: 3,
                marked: 1,
                descendants: 1,
                terminal: 1,
                reparented: 0,
                later: 2,
                ended: 3,
                left: vec![(64, "sleep".into()), (70, "my_job".into())],
                shell_found: true,
            }
        );
        let nothing =
            "entry-reap found=0 marked=0 descendants=0 terminal=0 reparented=0 later=0 ended=0 left=0 shell=no";
        let Some(ScriptReport::Counted(counts)) = parse_report(nothing) else { panic!("not counted") };
        assert_eq!((counts.found, counts.left.len(), counts.shell_found), (0, 0, false));
        assert_eq!(parse_report("entry-reap noproc"), Some(ScriptReport::NoProc));
    }

    #[test]
    fn malformed_reports_are_refused() {
        assert_eq!(parse_report("OCI runtime exec failed: exec: \"sh\": executable file not found"), None);
        assert_eq!(parse_report("entry-reap found=x"), None);
        // The old three-field form and a summary without `shell=` are not a report.
        assert_eq!(parse_report("entry-reap found=1 killed=1 left=0"), None);
        assert_eq!(
            parse_report("entry-reap found=1 marked=1 descendants=0 terminal=0 reparented=0 later=0 ended=1 left=0"),
            None
        );
        // Only `left` lines and no summary: not a report.
        assert_eq!(parse_report("entry-reap left 5 sh"), None);
    }

    #[test]
    fn a_lost_left_line_still_counts() {
        let output = "entry-reap found=2 marked=2 descendants=0 terminal=0 reparented=0 later=0 ended=0 left=2 shell=yes\n\
             entry-reap left 9 sh";
        let Some(ScriptReport::Counted(counts)) = parse_report(output) else { panic!("not counted") };
        assert_eq!(counts.left, vec![(9, "sh".into()), (0, "?".into())]);
    }
}
