//! `sed-train experiment FILE...`: trains every arm of each experiment on every seed (on
//! this machine, one run after another) and draws its figures: mean and spread over seeds
//! of each arm, in `OUT/<experiment>/figures.png`.
//!
//! A run directory that holds a checkpoint is resumed (a finished run just finishes), so
//! an interrupted experiment continues where it stopped; a run whose settings differ from
//! the experiment's now is refused, as `--resume` with another config is.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sed_train::device::DeviceChoice;
use sed_train::experiment::Experiment;

use super::ConfigArgs;
use super::plot::{self, PlotArgs};
use super::train::{self, TrainArgs};

#[derive(Args)]
pub struct ExperimentArgs {
    /// Experiment files (see configs/experiments/).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where the runs and figures go: OUT/<experiment>/<arm>/seed-<seed>.
    #[arg(long, default_value = "runs/experiments")]
    out: PathBuf,
    /// An override for every run, after the experiment's own (repeatable), e.g. a budget.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Where to train.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    /// Draw the figures of the runs already there; train nothing.
    #[arg(long)]
    plot_only: bool,
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    // Every file and every run's config first, so that nothing trains before all are valid.
    let mut plans = Vec::new();
    for file in &args.files {
        let experiment = Experiment::load(file)?;
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into());
        let dir = args.out.join(&name);
        let entries = experiment.entries(&dir, &args.overrides)?;
        plans.push((name, experiment, dir, entries));
    }
    for (name, experiment, dir, entries) in plans {
        println!("{name}: {}", experiment.question.trim());
        if !args.plot_only {
            for (k, entry) in entries.iter().enumerate() {
                println!(
                    "[{}/{}] {} seed {} -> {}",
                    k + 1,
                    entries.len(),
                    entry.arm,
                    entry.seed,
                    entry.dir.display()
                );
                // Resuming with the entry's config refuses a run whose settings changed.
                let resume = entry.dir.join("checkpoints").is_dir();
                train::run(TrainArgs {
                    config: ConfigArgs {
                        config: Some(entry.config.clone()),
                        overrides: entry.overrides.clone(),
                        ..ConfigArgs::default()
                    },
                    device: args.device,
                    out: (!resume).then(|| entry.dir.clone()),
                    resume: resume.then(|| entry.dir.clone()),
                    ..TrainArgs::default()
                })?;
            }
        }
        plot::run(PlotArgs {
            runs: vec![dir.clone()],
            out: Some(dir.join("figures.png")),
        })?;
    }
    Ok(())
}
