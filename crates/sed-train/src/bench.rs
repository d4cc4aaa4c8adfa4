//! `sed-train bench`: end-to-end training throughput (agent-steps per second: player rows
//! through env, inference and update) on each requested device for the same config, and
//! where the time goes (env, inference, update forward+backward, optimizer).
//!
//! With `--gpus LIST` it measures data-parallel scaling instead: the run on the first GPU
//! alone, then on all of them with `--envs` envs on each (weak scaling), the scaling
//! efficiency (N-GPU agent-steps/s ÷ N × 1-GPU) and the time spent forking the networks
//! and moving gradients.
//!
//! Per device: one warm-up iteration (kernel compilation), then `--iterations` timed
//! iterations without syncs, then one iteration with a device sync around each part for
//! the split. Prints a table and writes CSV (and optionally Markdown) with the device name
//! and the date.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::checkpoint::write_atomic;
use crate::config::RunConfig;
use crate::device::{DeviceChoice, Devices, pick, pick_gpus};
use crate::trainer::Trainer;

/// Arguments of `sed-train bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The config file.
    #[arg(long, default_value = "configs/apple_picking.toml")]
    pub config: PathBuf,
    /// Override a config field (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Number of envs (overrides `env.num_envs`).
    #[arg(long, default_value_t = 4096)]
    pub envs: u32,
    /// Devices to measure, comma-separated (`cpu`, `gpu`, `software-gpu`, `auto`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cpu,gpu")]
    pub devices: Vec<DeviceChoice>,
    /// Measure data-parallel scaling on these GPUs (as `--gpus` of training takes them)
    /// instead of `--devices`: the first alone, then all, `--envs` envs on each.
    #[arg(long, value_name = "LIST", conflicts_with = "devices")]
    pub gpus: Option<String>,
    /// Timed iterations per device (after one warm-up iteration).
    #[arg(long, default_value_t = 3)]
    pub iterations: u32,
    /// Where to write the CSV.
    #[arg(long, default_value = "runs/bench/train.csv")]
    pub csv: PathBuf,
    /// Also write the table as Markdown here.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// One device's measurement.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// `cpu` or `gpu`.
    pub kind: &'static str,
    /// The device, in words.
    pub device: String,
    /// Devices the envs were split over.
    pub devices: usize,
    /// Envs over all devices.
    pub envs: u32,
    /// Players per env.
    pub players: u32,
    /// Steps per rollout.
    pub horizon: u32,
    /// Timed iterations.
    pub iterations: u32,
    /// Their seconds.
    pub seconds: f64,
    /// Player rows per second, end to end.
    pub agent_steps_per_second: f64,
    /// The profiled iteration's split, in seconds.
    pub split: crate::trainer::Profile,
    /// The profiled iteration's seconds.
    pub profiled_seconds: f64,
}

/// Measures one device.
pub fn measure(
    run: RunConfig,
    devices: impl Into<Devices>,
    iterations: u32,
) -> Result<Measurement> {
    let devices = devices.into();
    let kind = devices.0[0].kind();
    let (envs, players, horizon) = (
        run.game.num_envs,
        run.game.game.players,
        run.train.sampling_horizon,
    );
    let mut t = Trainer::new(run, devices)?;
    let device = t.describe();
    let devices = t.devices();
    t.iterate(|_| {})?;
    let start = Instant::now();
    for _ in 0..iterations {
        t.iterate(|_| {})?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rows = iterations as f64 * envs as f64 * players as f64 * horizon as f64;
    t.set_profile(true);
    let start = Instant::now();
    t.iterate(|_| {})?;
    let profiled_seconds = start.elapsed().as_secs_f64();
    Ok(Measurement {
        kind,
        device,
        devices,
        envs,
        players,
        horizon,
        iterations,
        seconds,
        agent_steps_per_second: rows / seconds,
        split: t.profile().unwrap_or_default(),
        profiled_seconds,
    })
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> Result<()> {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut overrides = args.overrides.clone();
    overrides.push(format!("env.num_envs={}", args.envs));
    let mut results = Vec::new();
    if let Some(list) = &args.gpus {
        let (all, why) = pick_gpus(list)?;
        println!("--gpus {list}: {why}");
        let n = all.0.len();
        for devices in [Devices(vec![all.0[0].clone()]), all] {
            let mut overrides = args.overrides.clone();
            overrides.push(format!(
                "env.num_envs={}",
                args.envs as usize * devices.0.len()
            ));
            let run = RunConfig::load(&args.config, &overrides)?;
            let k = devices.0.len();
            results.push(
                measure(run, devices, args.iterations)
                    .with_context(|| format!("benchmarking {k} of the {n} GPUs"))?,
            );
        }
    }
    let choices = if args.gpus.is_some() {
        &[][..]
    } else {
        &args.devices[..]
    };
    for &choice in choices {
        let run = RunConfig::load(&args.config, &overrides)?;
        let picked = match pick(choice) {
            Ok((p, why)) => {
                println!("{choice:?}: {why}");
                p
            }
            Err(e) => {
                println!("{choice:?}: skipped ({e:#})");
                continue;
            }
        };
        let m = measure(run, picked, args.iterations)
            .with_context(|| format!("benchmarking {choice:?}"))?;
        results.push(m);
    }
    let pct = |part: f64, m: &Measurement| 100.0 * part / m.profiled_seconds;
    let mut table = String::from(
        "| date | device | devices | envs × players | horizon | agent-steps/s | env | inference | update fwd+bwd | optimizer | transfer |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut csv = String::from(
        "date,kind,device,devices,envs,players,horizon,iterations,seconds,agent_steps_per_second,profiled_seconds,env_seconds,inference_seconds,backward_seconds,optimizer_seconds,transfer_seconds\n",
    );
    for m in &results {
        let s = m.split;
        writeln!(
            table,
            "| {date} | {} | {} | {} × {} | {} | {:.0} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | {:.0}% |",
            m.device,
            m.devices,
            m.envs,
            m.players,
            m.horizon,
            m.agent_steps_per_second,
            pct(s.env, m),
            pct(s.inference, m),
            pct(s.backward, m),
            pct(s.optimizer, m),
            pct(s.transfer, m)
        )?;
        writeln!(
            csv,
            "{date},{},\"{}\",{},{},{},{},{},{:.4},{:.1},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
            m.kind,
            m.device.replace('"', "'"),
            m.devices,
            m.envs,
            m.players,
            m.horizon,
            m.iterations,
            m.seconds,
            m.agent_steps_per_second,
            m.profiled_seconds,
            s.env,
            s.inference,
            s.backward,
            s.optimizer,
            s.transfer
        )?;
    }
    if let [one, many] = results.as_slice()
        && args.gpus.is_some()
    {
        writeln!(
            table,
            "\nscaling efficiency on {} devices: {:.2} (agent-steps/s {:.0} ÷ ({} × {:.0})); forking and moving gradients: {:.0}% of the profiled iteration",
            many.devices,
            many.agent_steps_per_second / (many.devices as f64 * one.agent_steps_per_second),
            many.agent_steps_per_second,
            many.devices,
            one.agent_steps_per_second,
            pct(many.split.transfer, many)
        )?;
    }
    if let (Some(c), Some(g)) = (
        results.iter().find(|m| m.kind == "cpu"),
        results.iter().find(|m| m.kind == "gpu"),
    ) {
        writeln!(
            table,
            "\nGPU path / CPU path: {:.2}×",
            g.agent_steps_per_second / c.agent_steps_per_second
        )?;
    }
    print!("{table}");
    for path in std::iter::once(&args.csv).chain(&args.markdown) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    write_atomic(&args.csv, csv.as_bytes())?;
    println!("wrote {}", args.csv.display());
    if let Some(md) = &args.markdown {
        write_atomic(md, table.as_bytes())?;
        println!("wrote {}", md.display());
    }
    Ok(())
}
