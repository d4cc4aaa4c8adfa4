//! A training run on disk: its directory, the resolved config beside the outputs, the
//! metric files, checkpoints at the configured interval and at the end, and resuming.
//!
//! A run directory holds `config.toml` (the resolved config, `[train]` included),
//! `metrics.csv`, `metrics.jsonl` and `checkpoints/`. A new run never writes into a
//! directory that already has files; a resumed run continues its own directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::checkpoint::{self, write_atomic};
use crate::config::RunConfig;
use crate::device::Devices;
use crate::metrics::{MetricsWriter, Row};
use crate::trainer::Trainer;

/// A problem with what the user asked for (as opposed to a failure while running).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// A run in progress.
pub struct Session {
    /// The run directory.
    pub dir: PathBuf,
    /// The trainer.
    pub trainer: Trainer,
    metrics: MetricsWriter,
    last_saved: Option<u64>,
}

/// A fresh run directory name under `runs/`: the UTC time, with a suffix if taken.
#[must_use]
pub fn default_dir() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let base = PathBuf::from("runs").join(&stamp);
    let mut dir = base.clone();
    let mut k = 2;
    while dir.exists() {
        dir = PathBuf::from("runs").join(format!("{stamp}-{k}"));
        k += 1;
    }
    dir
}

fn is_nonempty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// The dotted keys whose values differ between two TOML tables.
fn differing_keys(a: &toml::Table, b: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                differing_keys(x, y, &path, out);
            }
            (x, y) if x != y => out.push(path),
            _ => {}
        }
    }
}

impl Session {
    /// Starts a new run in `dir`, which must not exist or be empty.
    pub fn start(run: RunConfig, devices: impl Into<Devices>, dir: &Path) -> Result<Self> {
        if dir.is_file() || is_nonempty_dir(dir) {
            return Err(InputError(format!(
                "--out {}: the directory already exists and is not empty; pass `--resume {}` to continue that run, or choose another --out",
                dir.display(),
                dir.display()
            ))
            .into());
        }
        let text = run.to_toml();
        let brackets = run.game.game.brackets.len();
        let trainer = Trainer::new(run, devices)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_atomic(&dir.join("config.toml"), text.as_bytes())?;
        let metrics = MetricsWriter::open(dir, brackets, None)?;
        Ok(Self {
            dir: dir.to_owned(),
            trainer,
            metrics,
            last_saved: None,
        })
    }

    /// Continues the run in `dir` from its latest checkpoint. `requested`, when the user
    /// gave a config, must resolve to the run's own (only `train.total_steps` may differ);
    /// `total_steps` extends the run.
    pub fn resume(
        dir: &Path,
        devices: impl Into<Devices>,
        requested: Option<RunConfig>,
        total_steps: Option<u64>,
    ) -> Result<Self> {
        if !dir.is_dir() {
            return Err(
                InputError(format!("--resume {}: no such run directory", dir.display())).into(),
            );
        }
        if checkpoint::latest(dir)?.is_none() {
            return Err(InputError(format!(
                "--resume {}: it holds no checkpoint (checkpoints/latest is missing)",
                dir.display()
            ))
            .into());
        }
        let total_steps = total_steps.or(requested.as_ref().map(|r| r.train.total_steps));
        let (trainer, ckpt) = match Trainer::resume(dir, devices, total_steps) {
            Ok(t) => t,
            Err(e) => return Err(InputError(format!("{e:#}")).into()),
        };
        if let Some(req) = requested {
            let parse = |s: &str| {
                s.parse::<toml::Table>()
                    .expect("a config serialises to TOML")
            };
            let mut a = parse(&trainer.run().to_toml());
            let mut b = parse(&req.to_toml());
            for t in [&mut a, &mut b] {
                if let Some(toml::Value::Table(train)) = t.get_mut("train") {
                    train.remove("total_steps");
                }
            }
            let mut diff = Vec::new();
            differing_keys(&a, &b, "", &mut diff);
            if !diff.is_empty() {
                return Err(InputError(format!(
                    "--resume {}: the run was trained with another config ({} differ{}); resume without --config/--set, or start a new run",
                    dir.display(),
                    diff.join(", "),
                    if diff.len() == 1 { "s" } else { "" }
                ))
                .into());
            }
        }
        let iteration = trainer.iteration();
        tracing::info!(checkpoint = %ckpt.display(), iteration, "resuming");
        let brackets = trainer.run().game.game.brackets.len();
        let metrics = MetricsWriter::open(dir, brackets, Some(iteration))?;
        write_atomic(&dir.join("config.toml"), trainer.run().to_toml().as_bytes())?;
        Ok(Self {
            dir: dir.to_owned(),
            trainer,
            metrics,
            last_saved: Some(iteration),
        })
    }

    /// Whether every iteration of the run is done.
    #[must_use]
    pub fn done(&self) -> bool {
        self.trainer.iteration() >= self.trainer.run().iterations()
    }

    /// One iteration: train, append the metrics, checkpoint when due (and at the end).
    pub fn step(&mut self, progress: impl FnMut(u64)) -> Result<Row> {
        let row = self.trainer.iterate(progress)?;
        self.metrics.append(&row)?;
        let it = self.trainer.iteration();
        if it.is_multiple_of(self.trainer.run().train.checkpoint_interval as u64) || self.done() {
            self.checkpoint()?;
        }
        Ok(row)
    }

    /// Writes a checkpoint now (unless one of this iteration exists).
    pub fn checkpoint(&mut self) -> Result<()> {
        let it = self.trainer.iteration();
        if self.last_saved != Some(it) {
            let dir = self.trainer.save(&self.dir)?;
            tracing::debug!(checkpoint = %dir.display(), "saved");
            self.last_saved = Some(it);
        }
        Ok(())
    }
}
