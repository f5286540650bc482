//! What one run measures and how much: `ENTRY_BENCH_*` variables (README, "Benchmarks"),
//! `ENTRY_BENCH_QUICK=1` for a short run, and section names as arguments
//! (`cargo bench --bench entry -- latency recording`) to run only those.

use serde_json::{Value, json};

/// Sizes and counts of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub quick: bool,
    /// Output of each throughput session, MiB of base64 text.
    pub mib: usize,
    /// Throughput rounds (variants alternate within each).
    pub rounds: usize,
    /// Measured keystrokes per variant.
    pub echoes: usize,
    /// Idle-session levels, ascending.
    pub sessions: Vec<usize>,
    /// Most sessions per container (dockerd runs them as execs of that container).
    pub per_container: usize,
    /// Seconds over which idle CPU is measured.
    pub idle_secs: u64,
    /// Parallel streaming sessions, and MiB each streams.
    pub streams: usize,
    pub stream_mib: usize,
    /// `ls -lR /` repetitions and top-like redraws of the recording-size sessions.
    pub ls_repeats: usize,
    pub top_iterations: usize,
    /// Starts of the gateway and of `entry enter` measured.
    pub startups: usize,
    /// Output of the replayed session, MiB of base64 text, and replays run at once.
    pub replay_mib: usize,
    pub replay_parallel: usize,
    /// Output the terminal model reads in the search section (MiB), and the search corpus:
    /// sessions and MiB of output text.
    pub model_mib: usize,
    pub search_sessions: usize,
    pub search_mib: usize,
    /// Enters measured per gateway in the rules section, and the rules its rules gateway loads.
    pub rule_enters: usize,
    pub rules: usize,
    /// MiB of output of each session whose replay page is opened (section `replay_page`),
    /// ascending.
    pub page_mib: Vec<usize>,
    /// Sections to run; empty means all.
    sections: Vec<String>,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

impl Config {
    pub fn from_env_and_args() -> Self {
        let quick = std::env::var("ENTRY_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let pick = |full: usize, short: usize| if quick { short } else { full };
        let default_sessions = if quick { "50,100" } else { "100,500,1000" };
        let mut sessions: Vec<usize> = std::env::var("ENTRY_BENCH_SESSIONS")
            .unwrap_or_else(|_| default_sessions.into())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .filter(|&n| n > 0)
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        let default_page_mib = if quick { "20,100" } else { "100,1024" };
        let mut page_mib: Vec<usize> = std::env::var("ENTRY_BENCH_PAGE_MIB")
            .unwrap_or_else(|_| default_page_mib.into())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .filter(|&n| n > 0)
            .collect();
        page_mib.sort_unstable();
        page_mib.dedup();
        // `cargo bench` passes `--bench`; other words name sections.
        let mut sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
        if let Ok(only) = std::env::var("ENTRY_BENCH_ONLY") {
            sections.extend(only.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
        }
        Self {
            quick,
            mib: var("ENTRY_BENCH_MIB", pick(256, 32)).max(1),
            rounds: var("ENTRY_BENCH_ROUNDS", pick(3, 1)).max(1),
            echoes: var("ENTRY_BENCH_ECHOES", pick(2000, 300)).max(10),
            sessions,
            per_container: var("ENTRY_BENCH_PER_CONTAINER", 250).max(1),
            idle_secs: var("ENTRY_BENCH_IDLE_SECS", if quick { 5 } else { 10 }).max(1),
            streams: var("ENTRY_BENCH_STREAMS", pick(100, 20)).max(1),
            stream_mib: var("ENTRY_BENCH_STREAM_MIB", pick(8, 2)).max(1),
            ls_repeats: var("ENTRY_BENCH_LS_REPEATS", pick(4, 1)).max(1),
            top_iterations: var("ENTRY_BENCH_TOP_ITERATIONS", pick(2000, 200)).max(1),
            startups: var("ENTRY_BENCH_STARTUPS", pick(5, 2)).max(1),
            replay_mib: var("ENTRY_BENCH_REPLAY_MIB", pick(1024, 64)).max(1),
            replay_parallel: var("ENTRY_BENCH_REPLAY_PARALLEL", 4).max(1),
            model_mib: var("ENTRY_BENCH_MODEL_MIB", pick(512, 64)).max(1),
            search_sessions: var("ENTRY_BENCH_SEARCH_SESSIONS", pick(10_000, 500)).max(1),
            search_mib: var("ENTRY_BENCH_SEARCH_MIB", pick(1024, 32)).max(1),
            rule_enters: var("ENTRY_BENCH_RULE_ENTERS", pick(200, 100)).max(10),
            rules: var("ENTRY_BENCH_RULES", 100).max(1),
            page_mib,
            sections,
        }
    }

    /// Whether to run the section `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|s| s == name)
    }

    pub fn summary(&self) -> String {
        format!(
            "{}{} MiB x {} rounds, {} echoes, sessions {:?} ({} per container), {} x {} MiB streams",
            if self.quick { "QUICK: " } else { "" },
            self.mib,
            self.rounds,
            self.echoes,
            self.sessions,
            self.per_container,
            self.streams,
            self.stream_mib
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "quick": self.quick,
            "mib": self.mib,
            "rounds": self.rounds,
            "echoes": self.echoes,
            "sessions": self.sessions,
            "per_container": self.per_container,
            "idle_secs": self.idle_secs,
            "streams": self.streams,
            "stream_mib": self.stream_mib,
            "ls_repeats": self.ls_repeats,
            "top_iterations": self.top_iterations,
            "startups": self.startups,
            "replay_mib": self.replay_mib,
            "replay_parallel": self.replay_parallel,
            "model_mib": self.model_mib,
            "search_sessions": self.search_sessions,
            "search_mib": self.search_mib,
            "rule_enters": self.rule_enters,
            "rules": self.rules,
            "page_mib": self.page_mib,
            "sections": self.sections,
        })
    }
}
