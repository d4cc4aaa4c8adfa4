//! `sed-train eval`: a run's latest checkpoint against baselines, in fresh envs of the same
//! seed (every policy meets the same worlds and the same noise): the trained principal,
//! no tax, and a fixed tax on every bracket, under the trained players; and uniformly
//! random players. Prints a table and writes the metrics as JSON.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sed_train::checkpoint::write_atomic;
use sed_train::device::{DeviceChoice, pick};
use sed_train::session::InputError;
use sed_train::trainer::{Actor, Trainer};

#[derive(Args)]
pub struct EvalArgs {
    /// The run directory.
    run: PathBuf,
    /// Episodes per env (every env of the run plays them: envs × episodes episodes).
    #[arg(long, default_value_t = 2)]
    episodes: u32,
    /// The fixed tax baseline's rate on every bracket (0, 0.1, ..., 1).
    #[arg(long, default_value_t = 0.3)]
    fixed_rate: f64,
    /// Where to write the JSON [default: RUN/eval.json].
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where to evaluate.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let tenths = args.fixed_rate * 10.0;
    if !(0.0..=1.0).contains(&args.fixed_rate) || (tenths - tenths.round()).abs() > 1e-9 {
        return Err(InputError(format!(
            "--fixed-rate {}: use one of 0, 0.1, ..., 1",
            args.fixed_rate
        ))
        .into());
    }
    if args.episodes == 0 {
        return Err(InputError("--episodes 0: must be at least 1".into()).into());
    }
    let (picked, why) = pick(args.device)?;
    tracing::info!("device: {why}");
    let (trainer, ckpt) = Trainer::resume(&args.run, picked, None)?;
    let envs = trainer.run().game.num_envs;
    println!(
        "checkpoint {} (iteration {}), {envs} envs x {} episodes",
        ckpt.display(),
        trainer.iteration(),
        args.episodes
    );
    println!(
        "{:<30} {:>10} {:>9} {:>9} {:>9} {:>8} {:>6}",
        "players / principal", "apples/pl", "welfare", "voted w", "equality", "left", "rate"
    );
    let fixed_name = format!("trained / fixed {:.0}%", args.fixed_rate * 100.0);
    let mut rows = Vec::new();
    for (name, players, principal) in [
        ("trained / trained", Actor::Trained, Actor::Trained),
        ("trained / no tax", Actor::Trained, Actor::Fixed(0)),
        (
            fixed_name.as_str(),
            Actor::Trained,
            Actor::Fixed(tenths.round() as u32),
        ),
        ("uniform random / trained", Actor::Uniform, Actor::Trained),
        (
            "uniform random / uniform random",
            Actor::Uniform,
            Actor::Uniform,
        ),
    ] {
        let e = trainer.evaluate(args.episodes, players, principal)?;
        println!(
            "{name:<30} {:>10.2} {:>9.2} {:>9.2} {:>9.3} {:>8.1} {:>6.2}",
            e.apples_per_player, e.welfare, e.welfare_voted, e.equality, e.apples_left, e.mean_rate
        );
        rows.push(serde_json::json!({ "policies": name, "metrics": e }));
    }
    let report = serde_json::json!({
        "checkpoint": ckpt.display().to_string(),
        "iteration": trainer.iteration(),
        "envs": envs,
        "episodes_per_env": args.episodes,
        "seed": trainer.run().game.config.seed,
        "fixed_rate": args.fixed_rate,
        "results": rows,
    });
    let path = args
        .json
        .clone()
        .unwrap_or_else(|| args.run.join("eval.json"));
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
