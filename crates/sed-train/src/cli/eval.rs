//! `sed-train eval`: a run's latest checkpoint against baselines, in fresh envs of the same
//! seed (every policy meets the same worlds and the same noise): the trained principal,
//! no tax, and a fixed tax on every bracket, under the trained players; and uniformly
//! random players. Prints a table and writes the metrics as JSON.
//!
//! Given a directory of runs (a sweep), it evaluates each run, then writes `eval.json` in
//! that directory with each setting's mean, lowest and highest over its seeds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sed_core::principal::rate_tenths;
use sed_train::checkpoint::write_atomic;
use sed_train::device::{DeviceChoice, pick};
use sed_train::session::InputError;
use sed_train::trainer::{Actor, Trainer};

#[derive(Args)]
pub struct EvalArgs {
    /// The run directory, or a directory of runs (a sweep).
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
    if rate_tenths(args.fixed_rate).is_none() {
        return Err(InputError(format!(
            "--fixed-rate {}: use one of 0, 0.1, ..., 1",
            args.fixed_rate
        ))
        .into());
    }
    if args.episodes == 0 {
        return Err(InputError("--episodes 0: must be at least 1".into()).into());
    }
    if args.run.join("checkpoints").is_dir() {
        return run_one(&args, &args.run).map(|_| ());
    }
    let mut runs = Vec::new();
    super::plot::find_runs(&args.run, 3, &mut runs)?;
    runs.retain(|r| r.join("checkpoints").is_dir());
    if runs.is_empty() {
        return Err(InputError(format!(
            "{}: no run with a checkpoint in it or below it",
            args.run.display()
        ))
        .into());
    }
    // Per setting (runs that differ only in the seed): its first run's path, its runs,
    // and per policy pair and metric the values of its seeds.
    let mut settings: Vec<(String, String, Vec<String>, Values)> = Vec::new();
    for run in &runs {
        println!("== {}", run.display());
        let report = run_one(&args, run)?;
        let key = super::plot::setting(run)?;
        let name = run
            .strip_prefix(&args.run)
            .unwrap_or(run)
            .display()
            .to_string();
        let idx = match settings.iter().position(|s| s.0 == key) {
            Some(i) => i,
            None => {
                settings.push((key, name.clone(), Vec::new(), Values::new()));
                settings.len() - 1
            }
        };
        let (_, _, members, values) = &mut settings[idx];
        members.push(name);
        for row in report["results"].as_array().into_iter().flatten() {
            let policies = row["policies"].as_str().unwrap_or_default().to_owned();
            for (metric, v) in row["metrics"].as_object().into_iter().flatten() {
                if let Some(v) = v.as_f64() {
                    values
                        .entry(policies.clone())
                        .or_default()
                        .entry(metric.clone())
                        .or_default()
                        .push(v);
                }
            }
        }
    }
    let spread = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        serde_json::json!({ "mean": mean, "min": lo, "max": hi })
    };
    let summary: Vec<serde_json::Value> = settings
        .iter()
        .map(|(_, first, members, values)| {
            let policies: serde_json::Map<String, serde_json::Value> = values
                .iter()
                .map(|(policy, metrics)| {
                    let m: serde_json::Map<String, serde_json::Value> = metrics
                        .iter()
                        .map(|(k, v)| (k.clone(), spread(v)))
                        .collect();
                    (policy.clone(), serde_json::Value::Object(m))
                })
                .collect();
            serde_json::json!({ "setting": first, "runs": members, "policies": policies })
        })
        .collect();
    let path = args
        .json
        .clone()
        .unwrap_or_else(|| args.run.join("eval.json"));
    let report = serde_json::json!({ "settings": summary });
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "{} runs in {} settings: wrote {}",
        runs.len(),
        settings.len(),
        path.display()
    );
    Ok(())
}

/// Per policy pair, per metric: the values of a setting's seeds.
type Values = BTreeMap<String, BTreeMap<String, Vec<f64>>>;

/// Evaluates one run; writes its report (`RUN/eval.json`, or `--json` for a single run)
/// and returns it.
fn run_one(args: &EvalArgs, run: &std::path::Path) -> Result<serde_json::Value> {
    let fixed_choice = rate_tenths(args.fixed_rate).unwrap_or_default();
    let (picked, why) = pick(args.device)?;
    tracing::info!("device: {why}");
    let (trainer, ckpt) = Trainer::load(run, picked)?;
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
            Actor::Fixed(fixed_choice),
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
    let path = if run == args.run {
        args.json.clone().unwrap_or_else(|| run.join("eval.json"))
    } else {
        run.join("eval.json")
    };
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(report)
}
