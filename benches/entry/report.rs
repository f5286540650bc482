//! The results of one run: every figure under a stable JSON key, the targets with PASS/FAIL,
//! printed as one table and written to `bench-results.json` at the repository root.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

/// How a figure is compared with its target.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn passes(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(t) => value >= t,
            Goal::AtMost(t) => value <= t,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtLeast(t) => format!(">= {}", trim(t)),
            Goal::AtMost(t) => format!("<= {}", trim(t)),
        }
    }
}

struct Row {
    section: &'static str,
    label: String,
    value: String,
    unit: &'static str,
    target: Option<(Goal, bool)>,
    /// Printed in place of a target: why a figure is missing.
    remark: Option<String>,
}

/// Figures of one run.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    values: Map<String, Value>,
    targets: Map<String, Value>,
    notes: Vec<String>,
}

impl Report {
    /// A measured figure.
    pub fn add(&mut self, section: &'static str, key: &str, label: &str, value: f64, unit: &'static str) {
        self.values.insert(key.to_owned(), json!(round(value)));
        self.rows.push(Row { section, label: label.to_owned(), value: trim(value), unit, target: None, remark: None });
    }

    /// A measured figure with a target.
    pub fn target(
        &mut self,
        section: &'static str,
        key: &str,
        label: &str,
        value: f64,
        unit: &'static str,
        goal: Goal,
    ) {
        let pass = goal.passes(value);
        self.values.insert(key.to_owned(), json!(round(value)));
        self.targets.insert(
            key.to_owned(),
            json!({ "value": round(value), "target": goal.text(), "pass": pass, "label": label }),
        );
        let target = Some((goal, pass));
        self.rows.push(Row { section, label: label.to_owned(), value: trim(value), unit, target, remark: None });
    }

    /// A figure that was not measured, with why: a row saying so, the text under `key` in the
    /// JSON.
    pub fn remark(&mut self, section: &'static str, key: &str, label: &str, why: &str) {
        self.values.insert(key.to_owned(), json!(why));
        let remark = Some(why.to_owned());
        self.rows.push(Row { section, label: label.to_owned(), value: "-".into(), unit: "", target: None, remark });
    }

    /// A value that is not a number (a command, a failure).
    pub fn info(&mut self, key: &str, value: Value) {
        self.values.insert(key.to_owned(), value);
    }

    /// A line printed under the table and kept in the JSON.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("note: {text}");
        self.notes.push(text);
    }

    pub fn failed_targets(&self) -> usize {
        self.rows.iter().filter(|r| matches!(r.target, Some((_, false)))).count()
    }

    /// The table, as printed.
    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|r| r.label.len()).max().unwrap_or(10).max(10);
        let value_width = self.rows.iter().map(|r| r.value.len()).max().unwrap_or(5).max(5);
        let mut out = String::new();
        let mut section = "";
        for row in &self.rows {
            if row.section != section {
                section = row.section;
                let _ = writeln!(out, "\n== {section}");
            }
            let target = match (row.target, &row.remark) {
                (Some((goal, pass)), _) => {
                    format!("  target {:<10} {}", goal.text(), if pass { "PASS" } else { "FAIL" })
                }
                (None, Some(remark)) => format!("  {remark}"),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "  {:<width$}  {:>value_width$} {:<8}{target}", row.label, row.value, row.unit);
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// The JSON document: every figure at the top level, plus `targets` and `notes`.
    pub fn json(&self) -> Value {
        let mut document = self.values.clone();
        document.insert("targets".into(), Value::Object(self.targets.clone()));
        document.insert("notes".into(), json!(self.notes));
        Value::Object(document)
    }
}

/// Decimals kept: 1 from 100 up, 3 below, and 3 significant digits under 0.1 (a ratio of
/// 0.00017 is not 0).
fn decimals(value: f64) -> usize {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        1
    } else if magnitude >= 0.1 || magnitude == 0.0 || !magnitude.is_finite() {
        3
    } else {
        (2 - magnitude.log10().floor() as i64).clamp(3, 9) as usize
    }
}

fn round(value: f64) -> f64 {
    let scale = 10f64.powi(decimals(value) as i32);
    (value * scale).round() / scale
}

fn trim(value: f64) -> String {
    let text = format!("{value:.*}", decimals(value));
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}
