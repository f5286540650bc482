//! The sign-in page's `?next=`: only a path on the gateway's own origin is followed. The
//! page's own module (player/src/lib/next.js, bundled into the sign-in page) is run by node
//! over values an attacker would put in a link.

use std::process::Command;

const ORIGIN: &str = "https://entry.example:8443";

/// `sameOriginPath(value, ORIGIN)` for each value, as node computes it (`null` when refused).
fn verdicts(values: &[&str]) -> Vec<Option<String>> {
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/player/src/lib/next.js");
    let script = format!(
        "import {{ sameOriginPath }} from {module:?};\n\
         const values = JSON.parse(process.argv[1]);\n\
         console.log(JSON.stringify(values.map((v) => sameOriginPath(v, {ORIGIN:?}))));"
    );
    let output = Command::new("node")
        .args(["--input-type=module", "-e", &script, &serde_json::to_string(values).unwrap()])
        .output()
        .expect("node");
    assert!(output.status.success(), "node: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON from node")
}

#[test]
fn next_accepts_only_a_same_origin_path() {
    let refused = [
        "",
        "sessions",
        "//evil.example",
        "//evil.example/sessions",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "/%09/evil.example",
        "/\t/evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/sessions\\..\\..\\evil",
        "/ses\nsions",
        "/ses\u{0}sions",
        "/ses\u{7f}sions",
        "/%0d%0aSet-Cookie:x",
        "/%E0%A4%A",
        "https://evil.example/",
        "https://entry.example:8443/sessions",
        "javascript:alert(1)",
        " /sessions",
    ];
    for (value, verdict) in refused.iter().zip(verdicts(&refused)) {
        assert_eq!(verdict, None, "{value:?} was followed");
    }
    let followed = ["/sessions", "/sessions/0192?x=1#top", "/audit", "/replay/abc%20def"];
    let expected: Vec<_> = followed.iter().map(|v| Some((*v).to_owned())).collect();
    assert_eq!(verdicts(&followed), expected);
}
