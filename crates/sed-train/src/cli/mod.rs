//! The command line: clap definitions and dispatch. Errors print as one line and exit
//! with status 2 (bad input) or 1 (a failure while running).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use sed_train::config::RunConfig;

mod bench;
mod bench_env;
mod engine;
mod eval;
mod experiment;
mod plot;
mod render;
mod train;

#[derive(Parser)]
#[command(
    name = "sed-train",
    version,
    about = "Train the players and the principal of Social Environment Design (PPO, on a GPU or the CPU)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: train::TrainArgs,
    /// The GPU to use: an index of `sed-train devices`, a PCI bus id (`0000:65:00.0`;
    /// identical GPUs share a name) or part of a name [default: the best adapter].
    /// `CUDA_VISIBLE_DEVICES` does not filter Vulkan adapters; this does.
    #[arg(long, global = true, value_name = "INDEX|PCI_BUS_ID|NAME")]
    gpu: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Train (the default when no subcommand is given).
    Train(train::TrainArgs),
    /// End-to-end training throughput (agent-steps/s) and its split, CPU and GPU; table + CSV.
    Bench(bench::BenchArgs),
    /// Env-steps per second of the CPU and GPU engines over batch sizes; table + CSV.
    BenchEnv(bench_env::BenchArgs),
    /// Evaluate a run's latest checkpoint against random players and a no-tax principal.
    Eval(eval::EvalArgs),
    /// Train every arm of experiments (configs/experiments/) on every seed, then draw the figures.
    Experiment(experiment::ExperimentArgs),
    /// Write a sweep's manifest, Slurm array script and SkyPilot task (and with --local run it).
    Sweep(experiment::SweepArgs),
    /// Learning curves and social metrics of runs (seeds of one setting: mean and spread), one PNG.
    Plot(plot::PlotArgs),
    /// List the wgpu adapters and what `--device auto` picks.
    Devices,
    /// Step many envs with random actions; print throughput and episode statistics.
    Rollout(engine::RolloutArgs),
    /// One env's episode as an animated GIF (random play, or a run's checkpoint); --text prints steps.
    Render(render::RenderArgs),
}

/// The config file and its overrides, shared by every subcommand.
#[derive(Args, Clone, Debug, Default)]
pub struct ConfigArgs {
    /// The config file [default: configs/apple_picking.toml].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config field, e.g. `--set tax.period=25` or `--set train.players.learning_rate=1e-3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Number of envs (overrides `env.num_envs`).
    #[arg(long)]
    pub envs: Option<u32>,
    /// Seed (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl ConfigArgs {
    /// Whether anything about the config was asked for.
    pub fn given(&self) -> bool {
        self.config.is_some()
            || !self.overrides.is_empty()
            || self.envs.is_some()
            || self.seed.is_some()
    }

    /// The overrides, with `--envs` and `--seed` folded in.
    pub fn all_overrides(&self) -> Vec<String> {
        let mut o = self.overrides.clone();
        if let Some(envs) = self.envs {
            o.push(format!("env.num_envs={envs}"));
        }
        if let Some(seed) = self.seed {
            o.push(format!("seed={seed}"));
        }
        o
    }

    /// The resolved run config.
    pub fn resolve(&self) -> Result<RunConfig> {
        self.resolve_with(&[])
    }

    /// The resolved run config with `extra` overrides applied last.
    pub fn resolve_with(&self, extra: &[String]) -> Result<RunConfig> {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("configs/apple_picking.toml"));
        let mut o = self.all_overrides();
        o.extend_from_slice(extra);
        RunConfig::load(&path, &o)
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,wgpu_core=warn,wgpu_hal=warn,naga=warn,cubecl=warn",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    if let Some(gpu) = &cli.gpu {
        let gpus = match &cli.command {
            None => cli.train.gpus.is_some(),
            Some(Command::Train(args)) => args.gpus.is_some(),
            _ => false,
        };
        if gpus {
            eprintln!(
                "error: --gpu {gpu} and --gpus: give one (--gpus lists every GPU of the run)"
            );
            return ExitCode::from(2);
        }
        sed_gpu::set_adapter_choice(sed_gpu::AdapterChoice::parse(gpu));
    }
    let result = match cli.command {
        None => train::run(cli.train),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::BenchEnv(args)) => bench_env::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Devices) => {
            devices();
            Ok(())
        }
        Some(Command::Rollout(args)) => engine::rollout(args),
        Some(Command::Render(args)) => render::run(args),
        Some(Command::Plot(args)) => plot::run(args),
        Some(Command::Experiment(args)) => experiment::run(args),
        Some(Command::Sweep(args)) => experiment::sweep(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = one_line(&e);
            let line: Vec<&str> = message.split_whitespace().collect();
            eprintln!("error: {}", line.join(" "));
            ExitCode::from(if is_input_error(&e) { 2 } else { 1 })
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// already holds (config and I/O errors often repeat their source's text). The caller
/// folds multi-line messages (a TOML parser's snippet) into one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Config errors and refusals of bad arguments are the user's to fix (exit status 2).
fn is_input_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sed_core::config::ConfigError>().is_some()
        || e.downcast_ref::<train::InputError>().is_some()
}

fn devices() {
    let adapters = sed_train::device::list();
    println!("index: name (backend, type, driver) PCI bus id");
    if adapters.is_empty() {
        println!("no wgpu adapter");
    }
    for a in adapters {
        println!("{a}");
    }
    match sed_train::device::pick(sed_train::device::DeviceChoice::Auto) {
        Ok((_, why)) => println!("--device auto: {why}"),
        Err(e) => println!("--device auto: {e:#}"),
    }
}
