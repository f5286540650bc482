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
        self.rows.push(Row { section, label: label.to_owned(), value: trim(value), unit, target: None });
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
        self.rows.push(Row { section, label: label.to_owned(), value: trim(value), unit, target: Some((goal, pass)) });
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
            let target = match row.target {
                Some((goal, pass)) => format!("  target {:<10} {}", goal.text(), if pass { "PASS" } else { "FAIL" }),
                None => String::new(),
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

fn round(value: f64) -> f64 {
    if value.abs() >= 100.0 { (value * 10.0).round() / 10.0 } else { (value * 1000.0).round() / 1000.0 }
}

fn trim(value: f64) -> String {
    let text = if value.abs() >= 100.0 { format!("{value:.1}") } else { format!("{value:.3}") };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}
