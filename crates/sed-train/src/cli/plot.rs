//! `sed-train plot RUN_DIR...`: learning curves and social metrics of runs, as one PNG.
//!
//! Each argument is a run directory (it holds `metrics.csv`) or a directory of runs (a
//! sweep; searched three levels deep). Runs whose resolved configs differ only in the seed
//! form one series: the mean over seeds at each step, shaded from the lowest to the
//! highest seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sed_train::chart::{Chart, Series, write_png};
use sed_train::metrics::{Row, read_csv};
use sed_train::session::InputError;

#[derive(Args)]
pub struct PlotArgs {
    /// Run directories, or directories of runs.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write the PNG [default: plots.png in the first directory given].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The metrics drawn, with their titles; then one chart per bracket's rate.
const METRICS: &[(&str, &str)] = &[
    ("charts/episodic_return", "players' episodic return"),
    ("social/welfare_voted", "welfare under the voted objective"),
    ("social/welfare", "welfare under the run's objective"),
    ("social/apples_per_player", "apples per player per episode"),
    ("social/gini", "Gini of apples (0 = equal)"),
    ("social/apples_left", "apples alive at episode end"),
    ("social/eta", "eta (voted objective)"),
    ("principal/return", "principal's return"),
];

/// Run directories under `dir` (itself included), at most `depth` levels down, sorted.
pub(super) fn find_runs(dir: &Path, depth: u32, found: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("metrics.csv").is_file() {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    if depth == 0 || !dir.is_dir() {
        return Ok(());
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        find_runs(&child, depth - 1, found)?;
    }
    Ok(())
}

/// The settings drawn: a label and the metrics of each seed's run.
type Group = (String, Vec<Vec<Row>>);

/// A run's config without its seed, to group seeds of one setting.
pub(super) fn setting(run: &Path) -> Result<String> {
    let path = run.join("config.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    value.remove("seed");
    Ok(toml::to_string(&value)?)
}

/// Series of `key` against `global_step` for each group: the mean over its runs, banded
/// by the lowest and highest.
fn series(groups: &[Group], key: &str) -> Vec<Series> {
    groups
        .iter()
        .map(|(label, runs)| {
            let mut at: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for rows in runs {
                for row in rows {
                    if let (Some(&x), Some(&y)) = (row.get("global_step"), row.get(key)) {
                        at.entry(x as u64).or_default().push(y);
                    }
                }
            }
            let mut s = Series {
                label: label.clone(),
                ..Series::default()
            };
            for (x, ys) in at {
                let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                s.points.push((x as f64, mean));
                if runs.len() > 1 {
                    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    s.band.push((x as f64, lo, hi));
                }
            }
            s
        })
        .collect()
}

pub fn run(args: PlotArgs) -> Result<()> {
    let mut runs = Vec::new();
    for dir in &args.runs {
        if !dir.exists() {
            return Err(InputError(format!("{}: no such directory", dir.display())).into());
        }
        find_runs(dir, 3, &mut runs)?;
    }
    if runs.is_empty() {
        return Err(InputError(format!(
            "no run (a directory with metrics.csv) in {}",
            args.runs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    // Group by setting, in the order first seen.
    // (setting, name, runs)
    let mut groups: Vec<(String, String, Vec<Vec<Row>>)> = Vec::new();
    for run in &runs {
        let key = setting(run)?;
        let rows = read_csv(&run.join("metrics.csv"))?;
        // A run named `seed-N` (an experiment's) goes by its arm, the directory above.
        let name_of = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut name = name_of(run);
        if name.starts_with("seed-") {
            name = run.parent().map(name_of).unwrap_or(name);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.2.push(rows),
            None => groups.push((key, name, vec![rows])),
        }
    }
    let labelled: Vec<Group> = groups
        .into_iter()
        .map(|(_, name, rows)| {
            let label = if rows.len() > 1 {
                format!("{name} ({} seeds)", rows.len())
            } else {
                name
            };
            (label, rows)
        })
        .collect();
    let brackets = labelled
        .iter()
        .flat_map(|(_, runs)| runs.iter().flatten())
        .flat_map(|row| row.keys())
        .filter_map(|k| k.strip_prefix("principal/rate_")?.parse::<usize>().ok())
        .max()
        .map_or(0, |b| b + 1);
    let mut charts: Vec<Chart> = METRICS
        .iter()
        .map(|&(key, title)| Chart {
            title: title.into(),
            x_label: "env-steps".into(),
            y_label: key.into(),
            series: series(&labelled, key),
            ..Chart::default()
        })
        .collect();
    for b in 0..brackets {
        let key = format!("principal/rate_{b}");
        charts.push(Chart {
            title: format!("tax rate, bracket {}", b + 1),
            x_label: "env-steps".into(),
            y_label: key.clone(),
            series: series(&labelled, &key),
            ..Chart::default()
        });
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.runs[0].join("plots.png"));
    write_png(&out, &charts, 3, (520, 360))?;
    println!(
        "{} runs in {} series, {} charts: wrote {}",
        runs.len(),
        labelled.len(),
        charts.len(),
        out.display()
    );
    Ok(())
}
