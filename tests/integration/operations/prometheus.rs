//! Scrapes `/metrics` the way Prometheus does (OpenMetrics preferred) and the way a plain
//! client does (no Accept: the 0.0.4 text format), checks each body's content type, and
//! parses both with the Prometheus project's Python parsers (`prometheus_client`, strict
//! about each format), which must agree.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// What Prometheus 2 sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as classic
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
parse = openmetrics if sys.argv[1] == "openmetrics" else classic
samples, types = {}, {}
for family in parse(sys.stdin.read()):
    types[family.name] = family.type
    for sample in family.samples:
        labels = "".join("{%s=%s}" % pair for pair in sorted(sample.labels.items()))
        samples[sample.name + labels] = sample.value
print(json.dumps({"samples": samples, "types": types}))
"#;

/// One scrape: sample values by `name{label=value}`, and family types.
#[derive(Debug, PartialEq)]
pub struct Scrape {
    pub samples: BTreeMap<String, f64>,
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    /// The value of a sample; panics when it is missing.
    pub fn value(&self, name: &str) -> f64 {
        *self.samples.get(name).unwrap_or_else(|| panic!("no sample {name} in {:?}", self.samples.keys()))
    }
}

fn parse(body: &str, format: &str) -> Scrape {
    let mut child = Command::new("python3")
        .args(["-c", PARSE, format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus-client from PyPI, which .ci/run installs)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{format} parser refused:\n{}\n{body}", String::from_utf8_lossy(&output.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let samples = parsed["samples"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap()));
    let types = parsed["types"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()));
    Scrape { samples: samples.collect(), types: types.collect() }
}

/// Scrapes `base/metrics` in both formats; checks both parse, agree, and type the families.
pub async fn scrape(base: &str) -> Scrape {
    let http = reqwest::Client::new();
    let get = |accept: Option<&str>| {
        let mut request = http.get(format!("{base}/metrics"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            (content_type, response.text().await.unwrap())
        }
    };
    let (classic_type, classic_body) = get(None).await;
    assert_eq!(classic_type, "text/plain; version=0.0.4; charset=utf-8");
    let (om_type, om_body) = get(Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(om_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(om_body.ends_with("# EOF\n") && !classic_body.contains("# EOF"));
    let classic = parse(&classic_body, "classic");
    let openmetrics = parse(&om_body, "openmetrics");
    // Between the two scrapes nothing ran, so the values agree.
    assert_eq!(classic.samples, openmetrics.samples, "the two formats disagree");
    for (family, kind) in [
        ("entry_sessions_live", "gauge"),
        ("entry_sessions_ended", "counter"),
        ("entry_relayed_bytes", "counter"),
        ("entry_recording_queue_depth", "gauge"),
        ("entry_auth_failures", "counter"),
        ("entry_reap_failures", "counter"),
    ] {
        assert_eq!(classic.types.get(family).map(String::as_str), Some(kind), "{family} in {:?}", classic.types);
        assert_eq!(openmetrics.types.get(family).map(String::as_str), Some(kind), "{family}");
    }
    classic
}
