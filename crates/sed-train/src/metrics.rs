//! Per-iteration metrics: `metrics.csv` and `metrics.jsonl` in the run directory, with
//! CleanRL's names (`charts/*`, `losses/*`) and the project's (`principal/*`, `social/*`,
//! `perf/*`). A value that does not exist in an iteration (no episode ended, the principal
//! is frozen) is an empty CSV cell and absent from the JSON line.
//!
//! `perf/env_seconds` and `perf/inference_seconds` are the host's time in those calls: on
//! the CPU path the work itself, on a GPU mostly the time to queue it (the device runs
//! asynchronously); `sed-train bench` measures the split with syncs.
//!
//! Rows are appended and flushed once per iteration; on resume, rows past the checkpoint
//! are dropped (the file is rewritten atomically) so the files read as one run.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::checkpoint::write_atomic;

/// The columns, in order, before the per-bracket rates.
pub const COLUMNS: &[&str] = &[
    "iteration",
    "global_step",
    "phase",
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/SPS",
    "charts/learning_rate",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/old_approx_kl",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "losses/grad_norm",
    "principal/return",
    "principal/learning_rate",
    "principal/policy_loss",
    "principal/value_loss",
    "principal/entropy",
    "principal/approx_kl",
    "principal/clipfrac",
    "principal/explained_variance",
    "principal/grad_norm",
    "principal/rate_cap",
    "social/apples",
    "social/apples_per_player",
    "social/apples_left",
    "social/equality",
    "social/gini",
    "social/eta",
    "social/welfare",
    "social/welfare_voted",
    "social/tax_revenue",
    "perf/agent_steps_per_second",
    "perf/env_seconds",
    "perf/inference_seconds",
    "perf/update_seconds",
];

/// Every column of a game with `brackets` tax brackets.
#[must_use]
pub fn columns(brackets: usize) -> Vec<String> {
    let mut c: Vec<String> = COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    let at = c
        .iter()
        .position(|s| s == "principal/rate_cap")
        .expect("listed");
    for b in (0..brackets).rev() {
        c.insert(at, format!("principal/rate_{b}"));
    }
    c
}

/// One iteration's values.
pub type Row = BTreeMap<String, f64>;

/// The two metric files of a run.
#[derive(Debug)]
pub struct MetricsWriter {
    csv: PathBuf,
    jsonl: PathBuf,
    columns: Vec<String>,
}

impl MetricsWriter {
    /// Opens (or creates) the files in `dir`, keeping only rows up to `keep_through`
    /// iterations (all of them for a new run: `None`).
    pub fn open(dir: &Path, brackets: usize, keep_through: Option<u64>) -> Result<Self> {
        let w = Self {
            csv: dir.join("metrics.csv"),
            jsonl: dir.join("metrics.jsonl"),
            columns: columns(brackets),
        };
        match keep_through {
            None => {
                write_atomic(&w.csv, format!("{}\n", w.columns.join(",")).as_bytes())?;
                write_atomic(&w.jsonl, b"")?;
            }
            Some(last) => w.truncate(last)?,
        }
        Ok(w)
    }

    fn truncate(&self, last: u64) -> Result<()> {
        let keep = |line: &str, iteration: Option<u64>| {
            iteration.is_some_and(|i| i <= last) && !line.is_empty()
        };
        let csv = std::fs::read_to_string(&self.csv)
            .with_context(|| format!("reading {}", self.csv.display()))?;
        let mut lines = csv.lines();
        let mut out = format!("{}\n", lines.next().unwrap_or_default());
        for line in lines {
            let it = line.split(',').next().and_then(|v| v.parse().ok());
            if keep(line, it) && line.split(',').count() == self.columns.len() {
                out.push_str(line);
                out.push('\n');
            }
        }
        write_atomic(&self.csv, out.as_bytes())?;
        let jsonl = std::fs::read_to_string(&self.jsonl).unwrap_or_default();
        let mut out = String::new();
        for line in jsonl.lines() {
            let it = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("iteration").and_then(serde_json::Value::as_f64))
                .map(|i| i as u64);
            if keep(line, it) {
                out.push_str(line);
                out.push('\n');
            }
        }
        write_atomic(&self.jsonl, out.as_bytes())
    }

    /// Appends one row to both files.
    pub fn append(&self, row: &Row) -> Result<()> {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|c| row.get(c).map(|v| format_value(*v)).unwrap_or_default())
            .collect();
        append_line(&self.csv, &cells.join(","))?;
        let json: serde_json::Map<String, serde_json::Value> = self
            .columns
            .iter()
            .filter_map(|c| {
                row.get(c)
                    .and_then(|&v| serde_json::Number::from_f64(v))
                    .map(|v| (c.clone(), serde_json::Value::Number(v)))
            })
            .collect();
        append_line(&self.jsonl, &serde_json::Value::Object(json).to_string())
    }
}

fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Appends a whole line in one write and flushes it.
fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| f.flush())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a `metrics.csv` back: the header and the rows as maps (empty cells omitted).
pub fn read_csv(path: &Path) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| ((*k).to_owned(), v)))
                .collect()
        })
        .collect())
}
