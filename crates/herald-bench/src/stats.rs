//! Results: latency samples with percentiles, and the report each scenario prints as a table and
//! writes as JSON so runs can be compared.

use std::path::Path;

use serde_json::{Map, Value, json};

/// Latency samples in microseconds.
#[derive(Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    /// Add one sample.
    pub fn push(&mut self, micros: u64) {
        self.0.push(micros);
    }

    /// Add many.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// p50, p99 and max in milliseconds (zeros without samples).
    pub fn summary(&mut self) -> (f64, f64, f64) {
        if self.0.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        (at(0.50), at(0.99), at(1.0))
    }
}

/// What one scenario measured.
pub struct Report {
    scenario: String,
    params: Map<String, Value>,
    rows: Vec<(String, Value, &'static str)>,
}

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str) -> Self {
        Self { scenario: scenario.to_owned(), params: Map::new(), rows: Vec::new() }
    }

    /// The same report under another scenario name (a scenario run in another setting).
    pub fn renamed(mut self, scenario: &str) -> Self {
        scenario.clone_into(&mut self.scenario);
        self
    }

    /// Record a parameter of the run.
    pub fn param(&mut self, name: &str, value: impl Into<Value>) {
        self.params.insert(name.to_owned(), value.into());
    }

    /// Record a measurement.
    pub fn row(&mut self, name: &str, value: impl Into<Value>, unit: &'static str) {
        self.rows.push((name.to_owned(), value.into(), unit));
    }

    /// Record p50, p99 and max of some latencies.
    pub fn latencies(&mut self, name: &str, samples: &mut Latencies) {
        let (p50, p99, max) = samples.summary();
        self.row(&format!("{name} p50"), round(p50, 3), "ms");
        self.row(&format!("{name} p99"), round(p99, 3), "ms");
        self.row(&format!("{name} max"), round(max, 3), "ms");
    }

    /// The value of a row, if it was recorded and is a number.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|(row, ..)| row == name).and_then(|(_, value, _)| value.as_f64())
    }

    /// Print the table.
    pub fn print(&self) {
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("\n== {} ({})", self.scenario, params.join(", "));
        let width = self.rows.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
        for (name, value, unit) in &self.rows {
            println!("  {name:<width$}  {value:>14} {unit}");
        }
    }

    /// Write the report as JSON into `dir`.
    pub fn save(&self, dir: &Path, machine: &Value) -> anyhow::Result<std::path::PathBuf> {
        std::fs::create_dir_all(dir)?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let path = dir.join(format!("{}-{stamp}.json", self.scenario));
        let results: Map<String, Value> =
            self.rows.iter().map(|(name, value, unit)| (name.clone(), json!({"value": value, "unit": unit}))).collect();
        let document = json!({"scenario": self.scenario, "params": self.params, "results": results, "machine": machine, "unix_time": stamp});
        std::fs::write(&path, serde_json::to_string_pretty(&document)?)?;
        Ok(path)
    }
}

/// Round to `digits` decimals for display.
pub fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}
