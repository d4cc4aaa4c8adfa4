//! Training, the default action: start a run (or resume one), show progress, write metrics
//! and checkpoints.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sed_train::device::{DeviceChoice, Devices, pick, pick_gpus};
use sed_train::experiment::Entry;
use sed_train::metrics::Row;
use sed_train::session::{Session, default_dir};

pub use sed_train::session::InputError;

use super::ConfigArgs;

#[derive(Args, Clone, Debug, Default)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Env-steps to train for, over all envs (overrides `train.total_steps`).
    #[arg(long)]
    pub total_steps: Option<u64>,
    /// Where to train: a GPU if there is one (`auto`), `gpu`, `cpu`, or `software-gpu`
    /// (the GPU path on a software driver such as lavapipe, for testing).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
    /// Train one run on several GPUs of this machine: adapters as `--gpu` takes them
    /// (indices of `sed-train devices`, PCI bus ids or names), comma-separated. The envs
    /// are split evenly over them; each steps its share and computes the gradients of its
    /// own samples, which the first sums before its optimizer steps.
    #[arg(long, value_name = "LIST", conflicts_with = "device")]
    pub gpus: Option<String>,
    /// The run directory [default: runs/<UTC time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Run one entry of a sweep's `manifest.jsonl` (see `sed-train sweep`): start it,
    /// resume it from its last checkpoint, or do nothing when it has finished.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["out", "resume"])]
    pub manifest: Option<PathBuf>,
    /// The entry's index [default: from the variable --index-var names].
    #[arg(long, requires = "manifest")]
    pub index: Option<usize>,
    /// The environment variable holding the entry's index (`SLURM_ARRAY_TASK_ID`,
    /// `JOB_COMPLETION_INDEX`, `SED_INDEX` for SkyPilot, ...).
    #[arg(long, default_value = "SLURM_ARRAY_TASK_ID", requires = "manifest")]
    pub index_var: String,
}

/// Runs a sweep entry: starts it, or resumes it with the entry's own config (a run whose
/// settings changed is refused; a finished one just finishes).
pub fn run_entry(entry: &Entry, device: DeviceChoice, gpus: Option<String>) -> Result<()> {
    let resume = entry.dir.join("checkpoints").is_dir();
    run(TrainArgs {
        config: ConfigArgs {
            config: Some(entry.config.clone()),
            overrides: entry.overrides.clone(),
            ..ConfigArgs::default()
        },
        device,
        gpus,
        out: (!resume).then(|| entry.dir.clone()),
        resume: resume.then(|| entry.dir.clone()),
        ..TrainArgs::default()
    })
}

/// The entry `--manifest` names, by `--index` or the index variable.
fn manifest_entry(manifest: &std::path::Path, args: &TrainArgs) -> Result<Entry> {
    let index = match args.index {
        Some(i) => i,
        None => {
            let var = &args.index_var;
            let text = std::env::var(var).map_err(|_| {
                InputError(format!(
                    "--manifest: give --index, or set {var} (the variable --index-var names)"
                ))
            })?;
            text.trim()
                .parse()
                .map_err(|_| InputError(format!("{var}={text:?}: not an entry index")))?
        }
    };
    sed_train::experiment::entry(manifest, index)
}

/// The devices `--device` or `--gpus` asks for.
fn devices(args: &TrainArgs) -> Result<Devices> {
    let (devices, why) = match &args.gpus {
        Some(list) => pick_gpus(list)?,
        None => {
            let (picked, why) = pick(args.device)?;
            (picked.into(), why)
        }
    };
    tracing::info!("device: {why}");
    Ok(devices)
}

fn fmt_opt(row: &Row, key: &str, digits: usize) -> String {
    row.get(key)
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn summary(row: &Row, brackets: usize) -> String {
    let rates: Vec<String> = (0..brackets)
        .map(|b| fmt_opt(row, &format!("principal/rate_{b}"), 2))
        .collect();
    format!(
        "phase {} | return {} | apples/player {} | rates {} | {} agent-steps/s",
        fmt_opt(row, "phase", 0),
        fmt_opt(row, "charts/episodic_return", 2),
        fmt_opt(row, "social/apples_per_player", 1),
        rates.join("/"),
        fmt_opt(row, "perf/agent_steps_per_second", 0),
    )
}

pub fn run(args: TrainArgs) -> Result<()> {
    if let Some(manifest) = &args.manifest {
        if args.config.given() || args.total_steps.is_some() {
            return Err(InputError(
                "--manifest runs its entry's own config; drop --config, --set, --envs, --seed and --total-steps".into(),
            )
            .into());
        }
        let entry = manifest_entry(manifest, &args)?;
        return run_entry(&entry, args.device, args.gpus.clone());
    }
    let mut extra = Vec::new();
    if let Some(steps) = args.total_steps {
        extra.push(format!("train.total_steps={steps}"));
    }
    let mut session = match &args.resume {
        Some(dir) => {
            let requested = if args.config.given() {
                Some(args.config.resolve_with(&extra)?)
            } else {
                None
            };
            Session::resume(dir, devices(&args)?, requested, args.total_steps)?
        }
        None => {
            let run = args.config.resolve_with(&extra)?;
            let dir = args.out.clone().unwrap_or_else(default_dir);
            Session::start(run, devices(&args)?, &dir)?
        }
    };
    let t = &session.trainer;
    let run = t.run();
    let (e, n) = (run.game.num_envs as u64, run.game.game.players as u64);
    tracing::info!("{}", t.describe());
    tracing::info!(
        "run {}: {e} envs x {n} players, {} steps per rollout, {} iterations ({} env-steps); objective {}",
        session.dir.display(),
        run.train.sampling_horizon,
        run.iterations(),
        run.iterations() * run.steps_per_iteration(),
        run.game.vote(),
    );
    let brackets = run.game.game.brackets.len();
    let total = run.iterations() * run.steps_per_iteration();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} env-steps, ETA {eta} | {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_position(t.tick() * e);
        bar.set_message("first rollout");
        bar
    });
    let mut last_log = Instant::now();
    while !session.done() {
        let row = session.step(|steps| {
            if let Some(bar) = &bar {
                bar.inc(steps);
            }
        })?;
        let line = summary(&row, brackets);
        match &bar {
            Some(bar) => bar.set_message(line),
            None => {
                if last_log.elapsed().as_secs_f64() >= 10.0
                    || session.done()
                    || row["iteration"] <= 1.0
                {
                    tracing::info!(
                        "iteration {}/{} | {line}",
                        row["iteration"],
                        session.trainer.run().iterations()
                    );
                    last_log = Instant::now();
                }
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish();
    }
    session.checkpoint()?;
    println!("wrote {}", session.dir.display());
    Ok(())
}
