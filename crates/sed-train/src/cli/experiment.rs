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

use super::plot::{self, PlotArgs};
use super::train;

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
    let plans = sed_train::experiment::plan(&args.files, &args.out, &args.overrides)?;
    for sed_train::experiment::Plan {
        name,
        experiment,
        dir,
        entries,
    } in plans
    {
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
                train::run_entry(entry, args.device, None)?;
            }
        }
        plot::run(PlotArgs {
            runs: vec![dir.clone()],
            out: Some(dir.join("figures.png")),
        })?;
    }
    Ok(())
}

#[derive(Args)]
pub struct SweepArgs {
    /// Experiment files: every arm on every seed becomes an entry.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The sweep's directory: the manifest and scripts, and OUT/<experiment>/<arm>/seed-<seed>.
    #[arg(long, default_value = "runs/sweep")]
    out: PathBuf,
    /// An override for every entry, after the experiment's own (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Slurm tasks at once (`--array=0-(N-1)%W`).
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// GPUs per entry in the scripts: each entry trains one run on all of them (`--gpus`).
    #[arg(long, default_value_t = 1)]
    gpus_per_entry: usize,
    /// Run every entry here, in order, after writing the files.
    #[arg(long)]
    local: bool,
    /// Where to train with --local.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

/// `sed-train sweep`: validates every entry, writes `manifest.jsonl`, `sweep.slurm` and
/// `sweep.sky.yaml`, and with `--local` runs them.
pub fn sweep(args: SweepArgs) -> Result<()> {
    if args.workers == 0 {
        return Err(
            sed_train::session::InputError("--workers 0: must be at least 1".into()).into(),
        );
    }
    if args.gpus_per_entry == 0 {
        return Err(sed_train::session::InputError(
            "--gpus-per-entry 0: must be at least 1".into(),
        )
        .into());
    }
    let entries: Vec<_> = sed_train::experiment::plan(&args.files, &args.out, &args.overrides)?
        .into_iter()
        .flat_map(|p| p.entries)
        .collect();
    if args.gpus_per_entry > 1 {
        for entry in &entries {
            let run = sed_train::config::RunConfig::load(&entry.config, &entry.overrides)?;
            let envs = run.game.num_envs as usize;
            if !envs.is_multiple_of(args.gpus_per_entry) {
                return Err(sed_train::session::InputError(format!(
                    "{}: `env.num_envs` = {envs} does not split evenly over --gpus-per-entry {}",
                    entry.dir.display(),
                    args.gpus_per_entry
                ))
                .into());
            }
        }
    }
    let files =
        sed_train::experiment::write_sweep(&args.out, &entries, args.workers, args.gpus_per_entry)?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!("{} entries", entries.len());
    if args.local {
        for (k, entry) in entries.iter().enumerate() {
            println!("[{}/{}] {}", k + 1, entries.len(), entry.dir.display());
            train::run_entry(entry, args.device, None)?;
        }
    }
    Ok(())
}
