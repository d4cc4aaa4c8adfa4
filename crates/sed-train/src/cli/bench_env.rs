//! `sed-train bench-env`: env-steps and agent-steps per second of the CPU and GPU engines
//! over batch sizes and players per env, every player's observation written. Prints a
//! table and writes CSV (with the device, commit and date).
//!
//! Actions are random but not timed: the CPU cycles 8 precomputed tables; the GPU binds
//! one of 8 tables uploaded beforehand, so no host-to-device copy happens in the loop.
//! The GPU is timed from the first submit to the device going idle.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use sed_core::config::Game;
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::TaxSchedule;
use sed_core::rng;
use sed_gpu::{Buf, GpuContext, GpuEngine, Region};
use sed_train::chart::{Chart, Series, write_png};
use sed_train::device::{DeviceChoice, pick};

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
    /// Players per env to measure (each resolved like `--set env.players=N`; give
    /// `--set env.map_tiles=[down,across]` for room) [default: the config's].
    #[arg(long, value_delimiter = ',')]
    pub players: Vec<u32>,
    /// Map tilings to measure, `DOWNxACROSS` each (each resolved like `--set
    /// env.map_tiles=[DOWN, ACROSS]`) [default: the config's map].
    #[arg(long, value_delimiter = ',', value_name = "DxA")]
    pub map_tiles: Vec<String>,
    /// Skip a players × envs point with more agents than this (memory: the observations
    /// take 124 bytes per agent, twice).
    #[arg(long, default_value_t = 1 << 24)]
    pub max_agents: usize,
    /// Also measure end-to-end training at each point (both learners' rollouts and PPO
    /// updates, as `sed-train bench`), on the CPU path and, without --cpu-only, the GPU
    /// path; rows `train-cpu` and `train-gpu`.
    #[arg(long)]
    pub train: bool,
    /// Training iterations timed per point with --train (after one warm-up iteration).
    #[arg(long, default_value_t = 2)]
    pub train_iterations: u32,
    /// Where to write the CSV.
    #[arg(long, default_value = "runs/bench/engines.csv")]
    pub csv: PathBuf,
    /// Where to draw the charts (PNG): env-steps/s against envs and, over several
    /// `--players`, agent-steps/s against players; log axes.
    #[arg(long, default_value = "runs/bench/engines.png")]
    pub plot: PathBuf,
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

/// The commit of the working tree, if `git` can tell.
fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Env-steps per second of the CPU engine at `envs` envs.
fn cpu_rate(game: &Game, params: &StepParams, envs: usize, seconds: f64) -> Result<(usize, f64)> {
    let engine = Engine::new(game.clone(), envs);
    let (mut state, mut out, mut actions) = engine.start()?;
    let tables = action_tables(actions.players.len());
    time(
        seconds,
        |k| {
            actions.players.copy_from_slice(&tables[k % TABLES]);
            Ok(engine.step(params, &actions, &mut state, &mut out)?)
        },
        || Ok(()),
    )
}

/// Each step kernel's name and mean GPU time in nanoseconds.
type KernelTimes = Vec<(&'static str, f64)>;

/// Timed steps per point for the per-kernel times.
const TIMED_STEPS: usize = 10;

/// Env-steps per second of the GPU engine at `envs` envs, and each kernel's mean time in
/// nanoseconds over [`TIMED_STEPS`] steps with timestamps (`None` without timestamp
/// queries).
fn gpu_rate(
    ctx: &GpuContext,
    game: &Game,
    params: &StepParams,
    envs: usize,
    seconds: f64,
) -> Result<((usize, f64), Option<KernelTimes>)> {
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
    let bind = |engine: &mut GpuEngine, k: usize| {
        let region = Region {
            buffer: all.clone(),
            offset: (k % TABLES) as u64 * stride,
            size: per_table,
        };
        engine.bind_external(Buf::Actions, region)
    };
    let rate = time(
        seconds,
        |k| {
            bind(&mut engine, k)?;
            Ok(engine.step(params)?)
        },
        || {
            ctx.device.poll(wgpu::PollType::wait_indefinitely())?;
            Ok(())
        },
    )?;
    let mut sums: Option<KernelTimes> = None;
    for k in 0..TIMED_STEPS {
        bind(&mut engine, k)?;
        let Some(times) = engine.step_timed(params)? else {
            return Ok((rate, None));
        };
        match &mut sums {
            None => sums = Some(times),
            Some(s) => s.iter_mut().zip(times).for_each(|(a, b)| a.1 += b.1),
        }
    }
    let means = sums.map(|s| {
        s.into_iter()
            .map(|(k, ns)| (k, ns / TIMED_STEPS as f64))
            .collect()
    });
    Ok((rate, means))
}

pub fn run(args: BenchArgs) -> Result<()> {
    let base = args.config.resolve()?.game;
    let players = if args.players.is_empty() {
        vec![base.game.players]
    } else {
        args.players.clone()
    };
    let cpu_name = format!("CPU, {} threads", rayon::current_num_threads());
    let ctx = if args.cpu_only {
        None
    } else {
        Some(GpuContext::new().map_err(sed_train::device::gpu_error)?)
    };
    let gpu_name = ctx.as_ref().map(GpuContext::describe).unwrap_or_default();
    let (commit, date) = (commit(), chrono::Utc::now().format("%Y-%m-%d").to_string());
    // Each tiling as overrides (none: the config's map).
    let mut tilings: Vec<Vec<String>> = Vec::new();
    for t in &args.map_tiles {
        let parsed = t.split_once(['x', 'X']).and_then(|(d, a)| {
            Some((d.trim().parse::<u32>().ok()?, a.trim().parse::<u32>().ok()?))
        });
        let Some((down, across)) = parsed else {
            return Err(sed_train::session::InputError(format!(
                "--map-tiles {t:?}: give DOWNxACROSS, e.g. `--map-tiles 1x1,2x2,4x4`"
            ))
            .into());
        };
        tilings.push(vec![format!("env.map_tiles=[{down}, {across}]")]);
    }
    if tilings.is_empty() {
        tilings.push(Vec::new());
    }
    let mut csv = String::from(
        "engine,device,players,map,envs,steps,seconds,env_steps_per_second,agent_steps_per_second,commit,date\n",
    );
    let mut measured: Vec<Measured> = Vec::new();
    let mut kernel_csv = String::from("device,players,map,envs,kernel,mean_us,share,commit,date\n");
    let mut kernel_lines = Vec::new();
    let mut no_timestamps = false;
    for tiling in &tilings {
        for &n in &players {
            let mut overrides = tiling.clone();
            overrides.push(format!("env.players={n}"));
            let resolved = args
                .config
                .resolve_with(&overrides)
                .with_context(|| format!("--players {n}"))?
                .game;
            let game = &resolved.game;
            let map = &game.map;
            let map_size = format!("{}x{}", map.rows, map.cols);
            if n == players[0] {
                println!(
                    "map {map_size} ({} apple cells, {} spawn cells); rates in env-steps/s (agent-steps/s = env-steps/s x players)",
                    map.apples(),
                    map.spawn_capacity()
                );
                println!(
                    "{:>7} {:>8} {:>14} {:>14} {:>14} {:>14} {:>8}",
                    "players",
                    "envs",
                    "cpu env-st/s",
                    "cpu agent-st/s",
                    "gpu env-st/s",
                    "gpu agent-st/s",
                    "gpu/cpu"
                );
            }
            let params = StepParams {
                schedule: TaxSchedule::FULL,
                welfare: resolved.vote(),
            };
            for &envs in &args.sizes {
                if envs * n as usize > args.max_agents {
                    println!(
                        "{n:>7} {envs:>8}   skipped: {} agents exceed --max-agents {}",
                        envs * n as usize,
                        args.max_agents
                    );
                    continue;
                }
                let mut rates = [None, None];
                let engines = [
                    (!args.gpu_only).then_some(("cpu", cpu_name.as_str())),
                    ctx.as_ref().map(|_| ("gpu", gpu_name.as_str())),
                ];
                for (slot, engine) in engines.into_iter().enumerate() {
                    let Some((engine, device)) = engine else {
                        continue;
                    };
                    let (steps, secs) = match &ctx {
                        Some(ctx) if engine == "gpu" => {
                            let (rate, times) = gpu_rate(ctx, game, &params, envs, args.seconds)?;
                            match times {
                                Some(times) => {
                                    let total: f64 = times.iter().map(|t| t.1).sum();
                                    for &(kernel, ns) in &times {
                                        writeln!(
                                            kernel_csv,
                                            "\"{device}\",{n},{map_size},{envs},{kernel},{:.3},{:.4},{commit},{date}",
                                            ns / 1e3,
                                            ns / total
                                        )?;
                                    }
                                    kernel_lines.push(format!(
                                        "{n:>7} {envs:>8}   {}",
                                        times
                                            .iter()
                                            .map(|(k, ns)| format!(
                                                "{k} {:.0}%",
                                                100.0 * ns / total
                                            ))
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ));
                                }
                                None => no_timestamps = true,
                            }
                            rate
                        }
                        _ => cpu_rate(game, &params, envs, args.seconds)?,
                    };
                    let rate = (steps * envs) as f64 / secs;
                    let agents = rate * f64::from(n);
                    writeln!(
                        csv,
                        "{engine},\"{device}\",{n},{map_size},{envs},{steps},{secs:.4},{rate:.0},{agents:.0},{commit},{date}"
                    )?;
                    rates[slot] = Some(rate);
                    measured.push((engine, n, envs, map.cells(), rate));
                }
                let fmt = |r: Option<f64>, k: f64| {
                    r.map(|r| format!("{:.0}", r * k))
                        .unwrap_or_else(|| "-".into())
                };
                let ratio = match rates {
                    [Some(c), Some(g)] => format!("{:.2}", g / c),
                    _ => "-".into(),
                };
                let k = f64::from(n);
                println!(
                    "{n:>7} {envs:>8} {:>14} {:>14} {:>14} {:>14} {ratio:>8}",
                    fmt(rates[0], 1.0),
                    fmt(rates[0], k),
                    fmt(rates[1], 1.0),
                    fmt(rates[1], k)
                );
                if args.train {
                    let paths = [
                        (!args.gpu_only).then_some(("train-cpu", DeviceChoice::Cpu)),
                        (!args.cpu_only).then_some(("train-gpu", DeviceChoice::SoftwareGpu)),
                    ];
                    for (engine, choice) in paths.into_iter().flatten() {
                        let mut train_overrides = overrides.clone();
                        train_overrides.push(format!("env.num_envs={envs}"));
                        let run = args.config.resolve_with(&train_overrides)?;
                        let horizon = run.train.sampling_horizon as usize;
                        let (picked, _) = pick(choice)?;
                        let m = sed_train::bench::measure(run, picked, args.train_iterations)?;
                        let rate = m.agent_steps_per_second / f64::from(n);
                        writeln!(
                            csv,
                            "{engine},\"{}\",{n},{map_size},{envs},{},{:.4},{rate:.0},{:.0},{commit},{date}",
                            m.device,
                            args.train_iterations as usize * horizon,
                            m.seconds,
                            m.agent_steps_per_second
                        )?;
                        measured.push((engine, n, envs, map.cells(), rate));
                        println!(
                            "{n:>7} {envs:>8}   {engine}: {:.0} agent-steps/s ({rate:.0} env-steps/s)",
                            m.agent_steps_per_second
                        );
                    }
                }
            }
        }
    }
    if !gpu_name.is_empty() {
        println!("gpu: {gpu_name}");
        if no_timestamps {
            println!("per-kernel times: the adapter has no timestamp queries");
        } else {
            println!(
                "share of GPU time per kernel (mean of {TIMED_STEPS} steps, each kernel in its own pass):"
            );
            for line in &kernel_lines {
                println!("{line}");
            }
            let path = args.csv.with_file_name("kernels.csv");
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            sed_train::checkpoint::write_atomic(&path, kernel_csv.as_bytes())?;
            println!("wrote {}", path.display());
        }
    }
    if let Some(dir) = args.csv.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    sed_train::checkpoint::write_atomic(&args.csv, csv.as_bytes())?;
    println!("wrote {}", args.csv.display());
    let maps = tilings.len() > 1;
    // Map sizes in the labels only when they vary.
    let cells = |c: usize| {
        if maps {
            format!(", {c} cells")
        } else {
            String::new()
        }
    };
    let log_log = |title: &str, x_label: &str, y_label: &str, series| Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        log_x: true,
        log_y: true,
        series,
    };
    let mut charts = vec![log_log(
        "engine throughput",
        "envs",
        "env-steps/s",
        lines(
            &measured,
            |&(e, n, _, c, _)| (e, (n, c)),
            |&(_, _, envs, _, rate)| (envs as f64, rate),
            |(e, (n, c))| format!("{e}, {n} players{}", cells(c)),
        ),
    )];
    if players.len() > 1 {
        charts.push(log_log(
            "cost against players per env",
            "players per env",
            "agent-steps/s",
            lines(
                &measured,
                |&(e, _, envs, c, _)| (e, (envs, c)),
                |&(_, n, _, _, rate)| (f64::from(n), rate * f64::from(n)),
                |(e, (envs, c))| format!("{e}, {envs} envs{}", cells(c)),
            ),
        ));
    }
    if maps {
        charts.push(log_log(
            "cost against map size",
            "map cells",
            "env-steps/s",
            lines(
                &measured,
                |&(e, n, envs, _, _)| (e, (n, envs)),
                |&(_, _, _, c, rate)| (c as f64, rate),
                |(e, (n, envs))| format!("{e}, {n} players, {envs} envs"),
            ),
        ));
    }
    write_png(&args.plot, &charts, charts.len(), (640, 440))?;
    println!("wrote {}", args.plot.display());
    Ok(())
}

/// One measurement: engine, players per env, envs, map cells, env-steps/s.
type Measured = (&'static str, u32, usize, usize, f64);

/// One series per `key` of the measured points, each point `(x, y)` from `point`.
fn lines<K: PartialEq + Copy>(
    measured: &[Measured],
    key: impl Fn(&Measured) -> (&'static str, K),
    point: impl Fn(&Measured) -> (f64, f64),
    label: impl Fn((&str, K)) -> String,
) -> Vec<Series> {
    let mut keys: Vec<(&str, K)> = Vec::new();
    for m in measured {
        let k = key(m);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| {
            let mut points: Vec<(f64, f64)> = measured
                .iter()
                .filter(|m| key(m) == k)
                .map(&point)
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                label: label(k),
                points,
                band: Vec::new(),
            }
        })
        .collect()
}
