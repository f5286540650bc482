//! `GET /metrics`: the gateway's counters for Prometheus — live sessions, sessions ended by
//! status and refused by reason, bytes relayed, the recorder (queue depth, failures, dropped
//! frames, upload retries), the reaper (sessions reaped, processes ended, processes left alive, failures),
//! authentication failures by reason, final row writes waiting for the store, and
//! connections refused by the connection caps, command rules (loaded, hits by outcome,
//! notifications, reloads).
//!
//! Format: the Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), which every
//! scraper reads; OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`) to a
//! scraper whose `Accept` prefers it, as Prometheus's does. Both are written here from one
//! list of families, so the two can never disagree: counters are `<name>_total` samples
//! (OpenMetrics names the family without the suffix), gauges plain.
//!
//! Guarantees: counters only grow while the process lives; labels come from fixed sets of
//! values (statuses, close reasons, auth failure kinds), never from user input.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::Gateway;
use crate::reaper::{KILLED_PROCESSES, LEFT_PROCESSES, REAP_FAILURES, REAPED_SESSIONS};
use crate::session::counters;

/// Connections closed as soon as accepted: over `gateway.max_connections`, over
/// `gateway.max_connections_per_address`.
static CONNECTIONS_REFUSED: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// Counts a connection closed as soon as it was accepted.
pub(super) fn connection_refused(refused: super::listener::Refused) {
    let i = match refused {
        super::listener::Refused::Total => 0,
        super::listener::Refused::PerAddress => 1,
    };
    CONNECTIONS_REFUSED[i].fetch_add(1, Ordering::Relaxed);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric family: its name (without `_total`), help, kind, and samples with at most
/// one label.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Option<(&'static str, &'static str)>, u64)>,
}

impl Family {
    fn single(name: &'static str, help: &'static str, kind: Kind, value: u64) -> Self {
        Self { name, help, kind, samples: vec![(None, value)] }
    }
}

fn families(gateway: &Gateway) -> Vec<Family> {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let ended = counters::ended().into_iter().map(|(s, n)| (Some(("status", s.as_str())), n)).collect();
    let refused = counters::refused().into_iter().map(|(reason, n)| (Some(("reason", reason.code())), n)).collect();
    let (bytes_in, bytes_out) = counters::relayed_bytes();
    let bytes = vec![(Some(("direction", "in")), bytes_in), (Some(("direction", "out")), bytes_out)];
    let auth = crate::auth::failures().into_iter().map(|(reason, n)| (Some(("reason", reason)), n)).collect();
    let live = u64::try_from(gateway.live().len()).unwrap_or(u64::MAX);
    let [writer, spool, storage, plan_failures] = gateway.plans.as_ref().map_or([0; 4], |plans| plans.builds());
    let hits = crate::rules::counters::hits().into_iter().map(|(o, n)| (Some(("outcome", o)), n)).collect();
    let notified = crate::rules::counters::notifications().into_iter().map(|(r, n)| (Some(("result", r)), n)).collect();
    let (reloaded, reload_refused) = crate::rules::counters::reloads();
    use Kind::{Counter, Gauge};
    vec![
        Family::single("entry_sessions_live", "Sessions running on this gateway", Gauge, live),
        Family { name: "entry_sessions_ended", help: "Sessions ended, by final status", kind: Counter, samples: ended },
        Family {
            name: "entry_sessions_refused",
            help: "Sessions refused before they started, by close reason",
            kind: Counter,
            samples: refused,
        },
        Family {
            name: "entry_connections_refused",
            help: "Connections closed as soon as accepted, by the cap they were over",
            kind: Counter,
            samples: vec![
                (Some(("limit", "max_connections")), load(&CONNECTIONS_REFUSED[0])),
                (Some(("limit", "max_connections_per_address")), load(&CONNECTIONS_REFUSED[1])),
            ],
        },
        Family {
            name: "entry_relayed_bytes",
            help: "Terminal bytes relayed by ended sessions: in is client to shell, out is shell to client",
            kind: Counter,
            samples: bytes,
        },
        Family::single(
            "entry_recording_queue_depth",
            "Frames queued for the recorder and not yet written",
            Gauge,
            crate::recorder::queue_depth(),
        ),
        Family::single("entry_recording_failures", "Recordings that failed", Counter, crate::recorder::failures()),
        Family::single(
            "entry_recording_frames_dropped",
            "Frames the recorder could not keep up with",
            Counter,
            crate::recorder::frames_dropped(),
        ),
        Family::single(
            "entry_manifests_signed",
            "Recordings this gateway sealed with a signed manifest",
            Counter,
            crate::signing::sealer::counts().0,
        ),
        Family::single(
            "entry_manifest_failures",
            "Sealings that failed (the catch-up retries them within a minute)",
            Counter,
            crate::signing::sealer::counts().1,
        ),
        Family::single(
            "entry_recording_upload_retries",
            "Failed S3 calls retried",
            Counter,
            crate::recorder::storage::S3Storage::upload_retries(),
        ),
        Family {
            name: "entry_replay_plans_built",
            help: "Segment plans built: as a recording was written, from the spool of a recording just stored, or from a stored recording",
            kind: Counter,
            samples: vec![
                (Some(("from", "writer")), writer),
                (Some(("from", "spool")), spool),
                (Some(("from", "storage")), storage),
            ],
        },
        Family::single("entry_replay_plan_failures", "Segment plans that could not be built", Counter, plan_failures),
        Family::single(
            "entry_retention_expired",
            "Sessions deleted by this gateway's retention sweeper because they expired",
            Counter,
            crate::retention::expired_total(),
        ),
        Family::single(
            "entry_reaped_sessions",
            "Sessions whose processes the reaper ended",
            Counter,
            load(&REAPED_SESSIONS),
        ),
        Family::single(
            "entry_reaped_processes",
            "Processes of reaped sessions found gone after the reap",
            Counter,
            load(&KILLED_PROCESSES),
        ),
        Family::single(
            "entry_reap_left_processes",
            "Processes of reaped sessions found still alive after KILL",
            Counter,
            load(&LEFT_PROCESSES),
        ),
        Family::single("entry_reap_failures", "Reaps that could not run", Counter, load(&REAP_FAILURES)),
        Family { name: "entry_auth_failures", help: "Credentials refused, by reason", kind: Counter, samples: auth },
        Family::single(
            "entry_store_final_writes_waiting",
            "Sessions whose final row write waits for the store to come back",
            Gauge,
            u64::try_from(gateway.store().waiting_final_writes()).unwrap_or(u64::MAX),
        ),
        Family::single(
            "entry_store_final_writes_caught_up",
            "Final row writes that landed after the store came back",
            Counter,
            crate::store::caught_up_writes(),
        ),
        Family::single(
            "entry_store_final_writes_lost",
            "Final row writes dropped because too many already waited",
            Counter,
            crate::store::writes_not_kept(),
        ),
        Family::single(
            "entry_rules_loaded",
            "Command rules loaded",
            Gauge,
            u64::try_from(gateway.guard().rules().current().len()).unwrap_or(u64::MAX),
        ),
        Family {
            name: "entry_rule_hits",
            help: "Commands that matched a rule, by outcome (a review counts when held and when settled)",
            kind: Counter,
            samples: hits,
        },
        Family {
            name: "entry_rule_notifications",
            help: "Rule hit notifications, by channel and result",
            kind: Counter,
            samples: notified,
        },
        Family {
            name: "entry_rule_reloads",
            help: "Rule reloads on SIGHUP, by result",
            kind: Counter,
            samples: vec![(Some(("result", "loaded")), reloaded), (Some(("result", "refused")), reload_refused)],
        },
    ]
}

/// Renders `families` in the Prometheus text format 0.0.4, or in OpenMetrics 1.0.
fn render(families: &[Family], openmetrics: bool) -> String {
    let mut out = String::new();
    for family in families {
        let (kind, suffix) = match family.kind {
            Kind::Counter => ("counter", "_total"),
            Kind::Gauge => ("gauge", ""),
        };
        // 0.0.4 names the family by its samples' name; OpenMetrics without the suffix.
        let declared = if openmetrics { family.name.to_owned() } else { format!("{}{suffix}", family.name) };
        let _ = writeln!(out, "# HELP {declared} {}", family.help);
        let _ = writeln!(out, "# TYPE {declared} {kind}");
        for (label, value) in &family.samples {
            let labels = label.map(|(name, value)| format!("{{{name}=\"{value}\"}}")).unwrap_or_default();
            let _ = writeln!(out, "{}{suffix}{labels} {value}", family.name);
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// Whether the `Accept` header prefers OpenMetrics to the classic text format (ties go to
/// the classic format, which `*/*` and no header at all get too).
fn prefers_openmetrics(headers: &HeaderMap) -> bool {
    let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let mut any = false;
    for range in accept {
        any = true;
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    any && openmetrics > 0.0 && openmetrics > text
}

pub(super) async fn metrics(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let openmetrics = prefers_openmetrics(&headers);
    let body = render(&families(&gateway), openmetrics);
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        assert!(!prefers_openmetrics(&HeaderMap::new()));
        assert!(!prefers_openmetrics(&accept("*/*")));
        assert!(!prefers_openmetrics(&accept("text/plain;version=0.0.4")));
        // Prometheus 2 and 3 as they ask.
        assert!(prefers_openmetrics(&accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(prefers_openmetrics(&accept(
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
        )));
        assert!(!prefers_openmetrics(&accept("text/plain;version=0.0.4;q=0.5,application/openmetrics-text;q=0.3")));
        assert!(!prefers_openmetrics(&accept("application/openmetrics-text;q=0")));
    }

    #[test]
    fn both_formats_name_counters_as_their_specifications_say() {
        let families = [
            Family::single("entry_x", "An x", Kind::Counter, 3),
            Family { name: "entry_y", help: "A y", kind: Kind::Gauge, samples: vec![(Some(("k", "v")), 2)] },
        ];
        assert_eq!(
            render(&families, false),
            "# HELP entry_x_total An x\n# TYPE entry_x_total counter\nentry_x_total 3\n\
             # HELP entry_y A y\n# TYPE entry_y gauge\nentry_y{k=\"v\"} 2\n"
        );
        assert_eq!(
            render(&families, true),
            "# HELP entry_x An x\n# TYPE entry_x counter\nentry_x_total 3\n\
             # HELP entry_y A y\n# TYPE entry_y gauge\nentry_y{k=\"v\"} 2\n# EOF\n"
        );
    }

    #[test]
    fn help_texts_and_label_values_need_no_escaping() {
        for (status, _) in counters::ended() {
            assert!(status.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        for i in 0..30 {
            let Ok(reason) = crate::wire::protocol::CloseReason::try_from(i) else { continue };
            assert!(reason.code().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", reason.code());
        }
        for (reason, _) in crate::auth::failures() {
            assert!(reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
