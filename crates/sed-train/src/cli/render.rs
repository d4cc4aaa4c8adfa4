//! `sed-train render`: one env's episode as an animated GIF in Melting Pot's look (or, with
//! `--text`, a few steps as text), played by uniformly random players and principal, or
//! by a run's latest checkpoint.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::TaxSchedule;
use sed_core::render::Pixels;
use sed_train::checkpoint::write_atomic;
use sed_train::device::{DeviceChoice, pick};
use sed_train::replay;
use sed_train::session::InputError;
use sed_train::trainer::{Actor, Trainer};

use super::ConfigArgs;
use super::engine::random_actions;

#[derive(Args)]
pub struct RenderArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// A run directory: its latest checkpoint plays (env 0 of the run's envs is shown).
    /// Without it the players and the principal act uniformly at random with taxes fully
    /// on, on the CPU engine.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Where to write the GIF.
    #[arg(long, default_value = "episode.gif", conflicts_with = "text")]
    out: PathBuf,
    /// Print the steps as text instead of writing a GIF (random play only).
    #[arg(long, conflicts_with = "run")]
    text: bool,
    /// Steps to show [default: one episode; 3 with --text].
    #[arg(long)]
    steps: Option<u32>,
    /// Keep every k-th step as a frame.
    #[arg(long, default_value_t = 1)]
    every: u32,
    /// Milliseconds per frame (GIF delays count in hundredths of a second).
    #[arg(long, default_value_t = 100)]
    delay_ms: u32,
    /// Each picture pixel becomes scale × scale GIF pixels (1..=16).
    #[arg(long, default_value_t = 2)]
    scale: usize,
    /// Where the checkpoint's networks run (with --run).
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(args: RenderArgs) -> Result<()> {
    let refuse = |m: &str| Err(InputError(m.into()).into());
    if args.every == 0 {
        return refuse("--every 0: must be at least 1");
    }
    if args.steps == Some(0) {
        return refuse("--steps 0: must be at least 1");
    }
    if !(1..=16).contains(&args.scale) {
        return refuse(&format!("--scale {}: must be in 1..=16", args.scale));
    }
    let frames = match &args.run {
        Some(run) => trained(&args, run)?,
        None => random(&args)?,
    };
    if args.text {
        return Ok(());
    }
    let bytes = replay::encode_gif(&frames, args.delay_ms, args.scale)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(&args.out, &bytes)?;
    println!(
        "wrote {} ({} frames, {} KiB)",
        args.out.display(),
        frames.len(),
        bytes.len().div_ceil(1024)
    );
    Ok(())
}

/// Random play on the CPU engine, one env.
fn random(args: &RenderArgs) -> Result<Vec<Pixels>> {
    let mut resolved = args.config.resolve()?.game;
    resolved.num_envs = 1;
    let game = &resolved.game;
    let steps = args
        .steps
        .unwrap_or(if args.text { 3 } else { game.episode_len });
    let engine = Engine::new(game.clone(), 1);
    let (mut state, mut out, mut actions) = engine.start()?;
    let welfare = resolved.vote();
    let params = StepParams {
        schedule: if resolved.tax_enabled {
            TaxSchedule::FULL
        } else {
            resolved.schedule(0)
        },
        welfare,
    };
    let layout = engine.layout();
    let objective = replay::objective_label(&welfare);
    let mut frames = Vec::new();
    let mut show = |state: &sed_core::engine::State, rewards: Option<&[f32]>| {
        if args.text {
            if let Some(r) = rewards {
                println!("rewards {r:?}");
            }
            print!("{}", sed_core::render::render(&game.map, &layout, state, 0));
        } else {
            frames.push(replay::frame(game, &layout, state, 0, &objective));
        }
    };
    show(&state, None);
    for step in 0..steps {
        random_actions(&mut actions, resolved.config.seed, step);
        engine.step(&params, &actions, &mut state, &mut out)?;
        if (step + 1) % args.every == 0 {
            show(&state, Some(&out.reward));
        }
    }
    Ok(frames)
}

/// A run's latest checkpoint playing its own envs; env 0 is drawn.
fn trained(args: &RenderArgs, run: &std::path::Path) -> Result<Vec<Pixels>> {
    if args.config.given() {
        return Err(InputError(
            "--run takes the run's own config; drop --config, --set, --envs and --seed".into(),
        )
        .into());
    }
    let (picked, why) = pick(args.device)?;
    tracing::info!("device: {why}");
    let (trainer, ckpt) = Trainer::load(run, picked)?;
    tracing::info!("checkpoint {}", ckpt.display());
    let game = trainer.run().game.game.clone();
    let steps = u64::from(args.steps.unwrap_or(game.episode_len));
    let episodes = steps.div_ceil(u64::from(game.episode_len)) as u32;
    let mut frames = Vec::new();
    trainer.play(
        episodes,
        Actor::Trained,
        Actor::Trained,
        |env, tick, welfare| {
            if tick < steps && (tick + 1) % u64::from(args.every) == 0 {
                let (state, _) = env.snapshot()?;
                frames.push(replay::frame(
                    &game,
                    &env.layout(),
                    &state,
                    0,
                    &welfare.to_string(),
                ));
            }
            Ok(())
        },
    )?;
    Ok(frames)
}
