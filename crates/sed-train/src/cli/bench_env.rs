//! `sed-train bench-env`: env-steps per second of the CPU and GPU engines over batch sizes, every
//! player's observation written. Prints a table and writes CSV.
//!
//! Actions are random but not timed: the CPU cycles 8 precomputed tables; the GPU binds
//! one of 8 tables uploaded beforehand, so no host-to-device copy happens in the loop.
//! The GPU is timed from the first submit to the device going idle.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::TaxSchedule;
use sed_core::rng;
use sed_gpu::{Buf, GpuContext, GpuEngine, Region};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// Batch sizes to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,64,1024,4096,16384,65536"
    )]
    pub sizes: Vec<usize>,
    /// Seconds to measure each engine at each size (at least 5 steps).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Skip the CPU engine.
    #[arg(long)]
    pub gpu_only: bool,
    /// Skip the GPU engine.
    #[arg(long)]
    pub cpu_only: bool,
    /// Where to write the CSV.
    #[arg(long, default_value = "runs/bench/engines.csv")]
    pub csv: PathBuf,
}

const TABLES: usize = 8;

fn action_tables(len: usize) -> Vec<Vec<u32>> {
    (0..TABLES as u32)
        .map(|k| {
            (0..len as u32)
                .map(|i| rng::mix(k << 24 ^ i.wrapping_mul(0x2545_f491)) % 7)
                .collect()
        })
        .collect()
}

/// Steps `step` until `seconds` have passed (at least 5 times); returns (steps, seconds).
fn time(
    seconds: f64,
    mut step: impl FnMut(usize) -> Result<()>,
    finish: impl Fn() -> Result<()>,
) -> Result<(usize, f64)> {
    for k in 0..2 {
        step(k)?; // warm-up: pipeline compilation, caches
    }
    finish()?;
    let start = Instant::now();
    let mut n = 0;
    while n < 5 || start.elapsed().as_secs_f64() < seconds {
        step(n)?;
        n += 1;
        if n % 16 == 0 {
            finish()?;
        }
    }
    finish()?;
    Ok((n, start.elapsed().as_secs_f64()))
}

pub fn run(args: BenchArgs) -> Result<()> {
    let resolved = args.config.resolve()?.game;
    let game = &resolved.game;
    let params = StepParams {
        schedule: TaxSchedule::FULL,
        welfare: resolved.vote(),
    };
    let cpu_name = format!("CPU, {} threads", rayon::current_num_threads());
    let ctx = if args.cpu_only {
        None
    } else {
        Some(GpuContext::new()?)
    };
    let gpu_name = ctx.as_ref().map(GpuContext::describe).unwrap_or_default();
    let mut rows = Vec::new();
    println!(
        "{:>8} {:>16} {:>16} {:>9}",
        "envs", "cpu env-steps/s", "gpu env-steps/s", "gpu/cpu"
    );
    for &envs in &args.sizes {
        let mut cpu_rate = None;
        if !args.gpu_only {
            let engine = Engine::new(game.clone(), envs);
            let (mut state, mut out, mut actions) = (
                engine.new_state(),
                engine.new_outputs(),
                engine.new_actions(),
            );
            engine.reset(&mut state, &mut out)?;
            let tables = action_tables(actions.players.len());
            let (steps, secs) = time(
                args.seconds,
                |k| {
                    actions.players.copy_from_slice(&tables[k % TABLES]);
                    Ok(engine.step(&params, &actions, &mut state, &mut out)?)
                },
                || Ok(()),
            )?;
            let rate = (steps * envs) as f64 / secs;
            rows.push(("cpu", cpu_name.clone(), envs, steps, secs, rate));
            cpu_rate = Some(rate);
        }
        let mut gpu_rate = None;
        if let Some(ctx) = &ctx {
            let mut engine = GpuEngine::new(ctx, game.clone(), envs)
                .with_context(|| format!("{envs} envs on the GPU"))?;
            let per_table = engine.region(Buf::Actions).size;
            let align = ctx.device.limits().min_storage_buffer_offset_alignment as u64;
            let stride = per_table.next_multiple_of(align);
            let all = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench actions"),
                size: stride * TABLES as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            for (k, t) in action_tables(envs * game.players as usize)
                .iter()
                .enumerate()
            {
                ctx.queue
                    .write_buffer(&all, k as u64 * stride, bytemuck::cast_slice(t));
            }
            engine.reset()?;
            let (steps, secs) = time(
                args.seconds,
                |k| {
                    let region = Region {
                        buffer: all.clone(),
                        offset: (k % TABLES) as u64 * stride,
                        size: per_table,
                    };
                    engine.bind_external(Buf::Actions, region)?;
                    Ok(engine.step(&params)?)
                },
                || {
                    ctx.device.poll(wgpu::PollType::wait_indefinitely())?;
                    Ok(())
                },
            )?;
            let rate = (steps * envs) as f64 / secs;
            rows.push(("gpu", gpu_name.clone(), envs, steps, secs, rate));
            gpu_rate = Some(rate);
        }
        let fmt = |r: Option<f64>| r.map(|r| format!("{r:.0}")).unwrap_or_else(|| "-".into());
        let ratio = match (cpu_rate, gpu_rate) {
            (Some(c), Some(g)) => format!("{:.2}", g / c),
            _ => "-".into(),
        };
        println!(
            "{envs:>8} {:>16} {:>16} {ratio:>9}",
            fmt(cpu_rate),
            fmt(gpu_rate)
        );
    }
    if !gpu_name.is_empty() {
        println!("gpu: {gpu_name}");
    }
    let mut csv = String::from("engine,device,envs,steps,seconds,env_steps_per_second\n");
    for (engine, device, envs, steps, secs, rate) in rows {
        writeln!(
            csv,
            "{engine},\"{device}\",{envs},{steps},{secs:.4},{rate:.0}"
        )?;
    }
    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    sed_train::checkpoint::write_atomic(&args.csv, csv.as_bytes())?;
    println!("wrote {}", args.csv.display());
    Ok(())
}
