//! Section 7, search: what the command index costs and how fast it answers.
//!
//! (a) The terminal model's CPU per GiB of output, on one thread of this process (the gateway
//! runs the same code on one of its threads per session), for `ls -lR`-like coloured text; the
//! gateway's whole CPU per GiB with recording and the index together is section 1's
//! `gateway CPU per GiB, fs`, against the 10.1 s/GiB recording alone cost before the index.
//! (b) Search latency, p50 and p95, over a corpus of `ENTRY_BENCH_SEARCH_SESSIONS` sessions and
//! `ENTRY_BENCH_SEARCH_MIB` of output text written through the store's own tables and indexes,
//! on SQLite and, when `ENTRY_BENCH_POSTGRES` (or `ENTRY_TEST_POSTGRES`) names a server,
//! PostgreSQL: rare words, paths, common words, commands, nothing, and a user filter.

use std::time::Instant;

use anyhow::{Context, Result};
use entry::index::model::{OutputCaps, TerminalModel};
use entry::store::{IndexKind, SearchFilter, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Bench;
use crate::report::Goal;
use crate::sys::percentile;

const SECTION: &str = "7. search";
/// Words of the generated output.
const WORDS: &[&str] = &[
    "total",
    "root",
    "drwxr-xr-x",
    "-rw-r--r--",
    "nginx",
    "postgres",
    "cache",
    "error",
    "warning",
    "info",
    "GET",
    "POST",
    "200",
    "404",
    "500",
    "request",
    "user",
    "session",
    "index",
    "backup",
    "deploy",
    "config",
    "shop",
    "orders",
    "payment",
    "timeout",
    "connection",
    "refused",
    "started",
    "stopped",
    "worker",
    "queue",
    "job",
];
/// Rows per multi-row INSERT of the corpus.
const BATCH: usize = 500;
/// Times each query runs.
const REPEATS: usize = 10;

pub async fn run(bench: &mut Bench) -> Result<()> {
    model_cpu(bench)?;
    let sessions = bench.config.search_sessions;
    let mib = bench.config.search_mib;
    let dir = bench.root.path().join("search");
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}/corpus.db?mode=rwc", dir.display());
    corpus_and_queries(bench, "sqlite", &sqlite, sessions, mib).await.context("search on SQLite")?;
    let postgres = std::env::var("ENTRY_BENCH_POSTGRES").or_else(|_| std::env::var("ENTRY_TEST_POSTGRES"));
    match postgres {
        Ok(admin) => {
            let url = fresh_postgres(&admin).await?;
            corpus_and_queries(bench, "postgres", &url, sessions, mib).await.context("search on PostgreSQL")?;
        }
        Err(_) => bench.report.note("search on PostgreSQL not measured: set ENTRY_BENCH_POSTGRES"),
    }
    Ok(())
}

/// One line of `ls -l`-like output, with colour.
fn line(rng: &mut StdRng) -> String {
    let word = WORDS[rng.random_range(0..WORDS.len())];
    let size: u32 = rng.random_range(0..1_000_000);
    format!(
        "-rw-r--r-- 1 root root {size:>8} Dec  2 17:{:02} \x1b[01;34m{word}-{}\x1b[0m /var/lib/{word}/{}.log\r\n",
        rng.random_range(0..60),
        rng.random_range(0..10_000),
        rng.random_range(0..1_000)
    )
}

fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// (a): the terminal model reading `ENTRY_BENCH_MODEL_MIB` of output in 64 KiB chunks (the
/// gateway's model task joins the output queued behind a message, up to 256 KiB).
fn model_cpu(bench: &mut Bench) -> Result<()> {
    let mib = bench.config.model_mib;
    let mut rng = StdRng::seed_from_u64(7);
    let mut text = String::new();
    while text.len() < 4 << 20 {
        text.push_str(&line(&mut rng));
    }
    let chunks: Vec<&str> = text.as_bytes().chunks(64 * 1024).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    let total = mib << 20;
    let (seconds, fed) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let caps = OutputCaps { head: 8 << 20, tail: 1 << 20 };
                let mut model = TerminalModel::new(120, 40, true, caps);
                let start = thread_cpu_seconds();
                let mut fed = 0usize;
                let mut at = 0.0;
                while fed < total {
                    for chunk in &chunks {
                        model.output(at, chunk);
                        fed += chunk.len();
                        at += 0.001;
                    }
                    model.tick(at);
                    let _ = model.take_output();
                }
                model.finish(at);
                (thread_cpu_seconds() - start, fed)
            })
            .join()
    })
    .map_err(|_| anyhow::anyhow!("the model thread panicked"))?;
    let per_gib = seconds * (1u64 << 30) as f64 / fed as f64;
    let report = &mut bench.report;
    report.add(
        SECTION,
        "search_model_cpu_s_per_gib",
        "terminal model CPU per GiB of output (one thread)",
        per_gib,
        "s",
    );
    report.add(
        SECTION,
        "search_model_mib_per_s",
        "terminal model speed",
        fed as f64 / (1 << 20) as f64 / seconds,
        "MiB/s",
    );
    Ok(())
}

async fn fresh_postgres(admin: &str) -> Result<String> {
    let store = Store::connect(admin).await?;
    let name = format!("entry_bench_search_{}", std::process::id());
    store.execute_raw(&format!("DROP DATABASE IF EXISTS {name}")).await?;
    store.execute_raw(&format!("CREATE DATABASE {name}")).await?;
    store.close().await;
    let (base, _) = admin.rsplit_once('/').context("a PostgreSQL URL with a database")?;
    Ok(format!("{base}/{name}"))
}

/// (b): writes the corpus, then runs each query [`REPEATS`] times.
async fn corpus_and_queries(
    bench: &mut Bench,
    backend: &'static str,
    url: &str,
    sessions: usize,
    mib: usize,
) -> Result<()> {
    let store = Store::open(url).await?;
    let mut rng = StdRng::seed_from_u64(11);
    let per_session = (mib << 20) / sessions.max(1);
    let started = Instant::now();
    let mut bytes = 0usize;
    let mut rows = 0usize;
    let day = 86_400_000i64;
    let base = 1_780_000_000_000i64;
    let mut statements = Vec::new();
    for session in 0..sessions {
        let id = format!("00000000-0000-7000-8000-{session:012}");
        let user = format!("user{}", session % 50);
        let started_at = base + (session as i64 * 30 * day) / sessions.max(1) as i64;
        statements.push(format!(
            "INSERT INTO sessions (id, user_name, role, source_addr, client_kind, container_id, container_name, \
             container_image, command, tty, node_id, exec_id, started_at, status, bytes_in, bytes_out) VALUES \
             ('{id}', '{user}', 'developer', '127.0.0.1:1', 'cli', 'c{}', 'shop.web.{}', 'img', '[\"bash\"]', 1, \
             'bench', '', {started_at}, 'ended', 0, 0)",
            session % 40,
            session % 40
        ));
        let mut values = Vec::new();
        let mut size = 0;
        let mut seq = 0;
        while size < per_session {
            let mut text = line(&mut rng).replace("\x1b[01;34m", "").replace("\x1b[0m", "").trim_end().to_owned();
            // A rare word in 5 sessions, a path in 1 %, a command in 10 %.
            if seq == 7 && session % (sessions / 5).max(1) == 3 {
                text.push_str(" needle-7f3a9");
            }
            if seq == 11 && session % 100 == 5 {
                text = "tail -f /var/log/nginx/access.log".to_owned();
            }
            if seq == 13 && session % 10 == 1 {
                text = "rm -rf /var/cache/shop".to_owned();
            }
            size += text.len();
            let at_ms = seq * 100;
            let abs_ms = started_at + at_ms;
            values.push(format!("('{id}', {seq}, {at_ms}, {abs_ms}, '{user}', '{}')", text.replace('\'', "''")));
            seq += 1;
            if values.len() == BATCH {
                statements.push(insert(&values));
                values.clear();
            }
        }
        if !values.is_empty() {
            statements.push(insert(&values));
        }
        bytes += size;
        rows += seq as usize;
        if statements.len() >= 64 {
            flush(&store, &mut statements).await?;
        }
    }
    flush(&store, &mut statements).await?;
    let load = started.elapsed().as_secs_f64();
    let report = &mut bench.report;
    let key = |name: &str| format!("search_{backend}_{name}");
    report.add(SECTION, &key("corpus_sessions"), &format!("{backend}: corpus sessions"), sessions as f64, "");
    report.add(SECTION, &key("corpus_mib"), &format!("{backend}: corpus output text"), bytes as f64 / 1048576.0, "MiB");
    report.add(SECTION, &key("corpus_rows"), &format!("{backend}: corpus output lines"), rows as f64, "");
    report.add(SECTION, &key("corpus_load_s"), &format!("{backend}: corpus written and indexed in"), load, "s");
    if store.is_postgres() {
        store.execute_raw("ANALYZE").await?;
    }
    let queries: [(&str, Option<&str>); 7] = [
        ("needle-7f3a9", None),
        ("/var/log/nginx/access.log", None),
        ("rm -rf /var/cache", None),
        ("payment", None),
        ("refused", Some("user7")),
        ("zzqx-nothing-here", None),
        ("404", None),
    ];
    let mut times = Vec::new();
    for (text, user) in queries {
        let filter = SearchFilter { text: text.into(), user: user.map(Into::into), limit: 50, ..Default::default() };
        let mut mine = Vec::new();
        for _ in 0..REPEATS {
            let started = Instant::now();
            let hits = store.search(IndexKind::Output, &filter).await?;
            mine.push(started.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(hits);
        }
        let label = format!("{backend}: {text:?}{} p50", user.map(|u| format!(" user={u}")).unwrap_or_default());
        report.add(SECTION, &key(&format!("q_{}", text.len())), &label, percentile(&mine, 50.0), "ms");
        times.extend(mine);
    }
    report.add(SECTION, &key("p50_ms"), &format!("{backend}: search p50"), percentile(&times, 50.0), "ms");
    let label = format!("{backend}: search p95 (limit 50, newest first)");
    report.target(SECTION, &key("p95_ms"), &label, percentile(&times, 95.0), "ms", Goal::AtMost(100.0));
    store.close().await;
    Ok(())
}

fn insert(values: &[String]) -> String {
    format!("INSERT INTO session_output (session_id, seq, at_ms, abs_ms, user_name, text) VALUES {}", values.join(", "))
}

async fn flush(store: &Store, statements: &mut Vec<String>) -> Result<()> {
    for statement in statements.drain(..) {
        store.execute_raw(&statement).await?;
    }
    Ok(())
}
