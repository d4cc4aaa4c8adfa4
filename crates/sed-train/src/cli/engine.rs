//! `sed-train rollout` steps N envs of the CPU engine with uniformly random player and
//! principal actions, prints throughput and episode statistics, and writes the resolved
//! config and a summary into the output directory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use sed_core::engine::{Actions, Engine, StepParams, flags};
use sed_core::principal::CHOICES;
use sed_core::rng::{self, Stream};
use sed_core::types::Action;
use sed_train::checkpoint::write_atomic;

use super::ConfigArgs;

#[derive(Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Steps to take (default: two episodes).
    #[arg(long)]
    steps: Option<u32>,
    /// Directory for the resolved config and the summary.
    #[arg(long, default_value = "runs/rollout")]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Fills the action buffers with uniform random actions drawn from the project RNG under
/// a key of its own, so rollouts are reproducible.
pub(super) fn random_actions(actions: &mut Actions, seed: u64, step: u32) {
    let stream = Stream::new(rng::tick_key(rng::run_key(seed) ^ 0xac71_0e5a, 0, step), 0);
    for (i, a) in actions.players.iter_mut().enumerate() {
        *a = stream.below(i as u32, Action::COUNT);
    }
    let offset = actions.players.len() as u32;
    for (i, a) in actions.principal.iter_mut().enumerate() {
        *a = stream.below(offset + i as u32, CHOICES);
    }
}

pub fn rollout(args: RolloutArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    let resolved = args.config.resolve()?.game;
    let game = &resolved.game;
    let steps = args.steps.unwrap_or(2 * game.episode_len);
    let engine = Engine::new(game.clone(), resolved.num_envs as usize);
    let (mut state, mut out, mut actions) = engine.start()?;
    let welfare = resolved.vote();
    let schedule = resolved.schedule(0);
    println!(
        "{} envs x {} players, map {}x{}, {} steps; objective {welfare}; taxes {} (rate cap {}/10, transfer multiplier {}/10)",
        resolved.num_envs,
        game.players,
        game.map.rows,
        game.map.cols,
        steps,
        if schedule.tax_enabled {
            "on"
        } else {
            "off (curriculum phase 1)"
        },
        schedule.rate_cap_tenths,
        schedule.multiplier_tenths,
    );
    let mut engine_secs = 0.0;
    let mut period_rewards = 0.0f64;
    let mut episodes = 0u64;
    for step in 0..steps {
        random_actions(&mut actions, resolved.config.seed, step);
        let params = StepParams {
            schedule: resolved.schedule(episodes),
            welfare,
        };
        let start = Instant::now();
        engine.step(&params, &actions, &mut state, &mut out)?;
        engine_secs += start.elapsed().as_secs_f64();
        period_rewards += out.principal_reward.iter().map(|&r| r as f64).sum::<f64>();
        if out.flags[0] & flags::EPISODE_END != 0 {
            episodes += 1;
        }
    }
    let env_steps = steps as f64 * resolved.num_envs as f64;
    let summary = sed_core::stats::summarise(&state.stats, game.players as usize);
    println!(
        "engine: {:.0} env-steps/s ({env_steps:.0} env-steps in {engine_secs:.2} s, {} threads)",
        env_steps / engine_secs,
        rayon::current_num_threads()
    );
    println!(
        "episodes: {} per env; apples {:.1}, equality {:.3}, tax revenue {:.2}, apples left {:.1} (means of the last episode)",
        episodes, summary.apples, summary.equality, summary.tax_revenue, summary.apples_left
    );
    println!(
        "principal: mean reward per env {:.3}",
        period_rewards / resolved.num_envs as f64
    );

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_atomic(
        &args.out.join("config.toml"),
        resolved.config.to_toml().as_bytes(),
    )?;
    let report = serde_json::json!({
        "env_steps": env_steps,
        "engine_seconds": engine_secs,
        "env_steps_per_second": env_steps / engine_secs,
        "threads": rayon::current_num_threads(),
        "summary": summary,
    });
    write_atomic(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    println!("wrote {}", args.out.display());
    Ok(())
}
