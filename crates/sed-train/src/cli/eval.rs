//! `sed-train eval`: a run's latest checkpoint against baselines, in fresh envs of the same
//! seed (every policy meets the same world and the same noise).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sed_train::device::{DeviceChoice, pick};
use sed_train::trainer::{Actor, Trainer};

#[derive(Args)]
pub struct EvalArgs {
    /// The run directory.
    run: PathBuf,
    /// Episodes per env.
    #[arg(long, default_value_t = 2)]
    episodes: u32,
    /// Where to evaluate.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let (picked, why) = pick(args.device)?;
    tracing::info!("device: {why}");
    let (trainer, ckpt) = Trainer::resume(&args.run, picked, None)?;
    println!(
        "checkpoint {} (iteration {})",
        ckpt.display(),
        trainer.iteration()
    );
    println!(
        "{:<34} {:>18} {:>10} {:>10} {:>10}",
        "players / principal", "apples per player", "welfare", "equality", "mean rate"
    );
    for (name, players, principal) in [
        ("trained / trained", Actor::Trained, Actor::Trained),
        ("trained / no tax", Actor::Trained, Actor::Fixed(0)),
        ("uniform random / trained", Actor::Uniform, Actor::Trained),
        (
            "uniform random / uniform random",
            Actor::Uniform,
            Actor::Uniform,
        ),
    ] {
        let e = trainer.evaluate(args.episodes, players, principal)?;
        println!(
            "{name:<34} {:>18.2} {:>10.2} {:>10.3} {:>10.2}",
            e.apples_per_player, e.welfare, e.equality, e.mean_rate
        );
    }
    Ok(())
}
