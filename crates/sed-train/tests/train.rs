//! The trainer on the CPU path: it learns (players beat the random policy where eating
//! fast pays; the principal learns to tax where taxes raise its objective), runs are
//! reproducible, resume continues as an uninterrupted run would, non-finite values stop
//! the run without touching the last checkpoint, and the binary writes every output file
//! and refuses bad input with one clear line.

use std::path::{Path, PathBuf};
use std::process::Command;

use sed_train::config::RunConfig;
use sed_train::device::{Devices, Picked};
use sed_train::metrics::{Row, read_csv};
use sed_train::nets::flat_params as params;
use sed_train::session::Session;
use sed_train::trainer::{Actor, Trainer};

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml")
}

fn run_config(overrides: &[&str]) -> RunConfig {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    RunConfig::load(&smoke(), &o).expect("config")
}

/// A small, quick learner on the smoke map.
const SMALL: &[&str] = &[
    "env.num_envs=32",
    "train.total_steps=10000000",
    "train.sampling_horizon=40",
    "train.players.hidden=[64, 64]",
    "train.principal.hidden=[64]",
    "train.players.learning_rate=1e-3",
];

fn with(base: &[&str], more: &[&str]) -> Vec<String> {
    base.iter().chain(more).map(|s| s.to_string()).collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sed-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn players_learn_to_harvest_well_above_the_random_policy() {
    // Selfish players, no tax, 40-step episodes on a small map with quick regrowth: eating
    // fast pays, so a working learner must clearly beat uniformly random actions.
    let o = with(
        SMALL,
        &["tax.enabled=false", "reward.selfishness=[1.0, 1.0, 1.0]"],
    );
    let run = RunConfig::load(&smoke(), &o).unwrap();
    let mut t = Trainer::new(run, Picked::Cpu).unwrap();
    let random = t.evaluate(4, Actor::Uniform, Actor::Uniform).unwrap();
    for _ in 0..60 {
        t.iterate(|_| {}).unwrap();
    }
    let trained = t.evaluate(4, Actor::Trained, Actor::Uniform).unwrap();
    eprintln!("apples per player per episode: random {random:?}, trained {trained:?}");
    assert!(
        random.apples_per_player > 1.0,
        "the random baseline eats: {random:?}"
    );
    assert!(
        trained.apples_per_player >= 2.0 * random.apples_per_player,
        "trained players eat {:.2} apples per episode, random ones {:.2}: not twice as many",
        trained.apples_per_player,
        random.apples_per_player
    );
}

#[test]
fn the_principal_learns_to_tax_where_taxes_raise_its_objective() {
    // Egalitarian welfare over post-tax income with equal redistribution: with players of
    // unequal luck and reach, taxing every bracket fully makes everyone's income the mean,
    // so high rates strictly raise the objective. The principal must find that.
    let o = with(
        SMALL,
        &[
            "reward.selfishness=[1.0, 1.0, 1.0]",
            "vote.welfare_of=\"post_tax_income\"",
            "vote.round_periods=4",
            "vote.social_choice={ kind = \"fixed\", welfare = { kind = \"egalitarian\" } }",
            "train.principal.learning_rate=1e-3",
            "train.principal.anneal_lr=false",
        ],
    );
    let run = RunConfig::load(&smoke(), &o).unwrap();
    let mut t = Trainer::new(run, Picked::Cpu).unwrap();
    let before = params(t.principal());
    let untrained = t.evaluate(2, Actor::Uniform, Actor::Trained).unwrap();
    for _ in 0..100 {
        t.iterate(|_| {}).unwrap();
    }
    assert_ne!(
        before,
        params(t.principal()),
        "the principal's parameters change"
    );
    let trained = t.evaluate(2, Actor::Trained, Actor::Trained).unwrap();
    let no_tax = t.evaluate(2, Actor::Trained, Actor::Fixed(0)).unwrap();
    let random = t.evaluate(2, Actor::Trained, Actor::Uniform).unwrap();
    eprintln!(
        "untrained {untrained:?}\ntrained {trained:?}\nno tax {no_tax:?}\nrandom principal {random:?}"
    );
    assert!(
        trained.mean_rate >= untrained.mean_rate + 0.15,
        "rates rise: {:.2} after training vs {:.2} before",
        trained.mean_rate,
        untrained.mean_rate
    );
    assert!(
        trained.welfare >= 1.25 * no_tax.welfare,
        "welfare {:.2} with the trained principal vs {:.2} without tax",
        trained.welfare,
        no_tax.welfare
    );
    assert!(
        trained.welfare >= 1.1 * random.welfare,
        "welfare {:.2} with the trained principal vs {:.2} with random rates",
        trained.welfare,
        random.welfare
    );
}

/// A row without the wall-clock columns.
fn timeless(mut row: Row) -> Row {
    row.retain(|k, _| !k.starts_with("perf/") && k != "charts/SPS");
    row
}

/// The rows of a run's `metrics.csv`, without the wall-clock columns.
fn timeless_rows(metrics: &Path) -> Vec<Row> {
    read_csv(metrics)
        .unwrap()
        .into_iter()
        .map(timeless)
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_run_on_the_cpu() {
    let go = |seed: &str| {
        let mut t = Trainer::new(
            run_config(&[
                seed,
                "train.sampling_horizon=20",
                "train.players.hidden=[32]",
                "train.principal.hidden=[16]",
            ]),
            Picked::Cpu,
        )
        .unwrap();
        (0..3)
            .map(|_| timeless(t.iterate(|_| {}).unwrap()))
            .collect::<Vec<_>>()
    };
    let a = go("seed=5");
    assert_eq!(a, go("seed=5"), "same seed, same metrics");
    assert_ne!(a, go("seed=6"), "another seed, another run");
}

/// Runs 5 iterations uninterrupted and interrupted after 3 (resumed from the checkpoint
/// of iteration 2) on `devices()`; the metrics must agree.
fn resume_matches(devices: impl Fn() -> Devices, tag: &str, extra: &[&str]) {
    let base = [
        "train.sampling_horizon=20",
        "train.total_steps=800",
        "train.checkpoint_interval=2",
        "train.players.hidden=[32]",
        "train.principal.hidden=[16]",
    ];
    let o: Vec<&str> = base.iter().chain(extra).copied().collect();
    // Uninterrupted: 5 iterations (800 / (8 envs x 20 steps)).
    let a_dir = temp_dir(&format!("uninterrupted-{tag}"));
    let mut a = Session::start(run_config(&o), devices(), &a_dir).unwrap();
    while !a.done() {
        a.step(|_| {}).unwrap();
    }
    // Interrupted after iteration 3, past the checkpoint of iteration 2.
    let b_dir = temp_dir(&format!("interrupted-{tag}"));
    let mut b = Session::start(run_config(&o), devices(), &b_dir).unwrap();
    for _ in 0..3 {
        b.step(|_| {}).unwrap();
    }
    drop(b);
    assert_eq!(read_csv(&b_dir.join("metrics.csv")).unwrap().len(), 3);
    let mut b = Session::resume(&b_dir, devices(), None, None).unwrap();
    assert_eq!(
        b.trainer.iteration(),
        2,
        "resumed from the checkpoint of iteration 2"
    );
    while !b.done() {
        b.step(|_| {}).unwrap();
    }
    let rows = |d: &Path| timeless_rows(&d.join("metrics.csv"));
    let (ra, rb) = (rows(&a_dir), rows(&b_dir));
    assert_eq!(ra.len(), 5);
    assert_eq!(
        ra, rb,
        "the resumed run's metrics equal the uninterrupted run's"
    );
    let jsonl = std::fs::read_to_string(b_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(
        jsonl.lines().count(),
        5,
        "rows past the checkpoint were dropped before resuming"
    );
    for d in [a_dir, b_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn resume_continues_as_an_uninterrupted_run() {
    resume_matches(|| Picked::Cpu.into(), "one", &[]);
    // With stacked frames, the frames of the episode in progress are in the checkpoint.
    // (10-step rollouts: the checkpoint of iteration 2 falls inside a 40-step episode.)
    resume_matches(
        || Picked::Cpu.into(),
        "frames",
        &[
            "train.frame_stack=3",
            "train.sampling_horizon=10",
            "train.total_steps=400",
        ],
    );
}

/// Two devices (both the CPU here; `gpu_path.rs` has two GPU devices) split the envs; a
/// checkpoint holds each one's envs and shuffling generator, so resuming matches too, and
/// resuming on another number of devices is refused.
#[test]
fn a_run_on_two_devices_resumes_as_an_uninterrupted_run() {
    let two = || Devices(vec![Picked::Cpu, Picked::Cpu]);
    resume_matches(two, "two", &[]);

    let dir = temp_dir("two-devices");
    let o = ["train.sampling_horizon=20", "train.players.hidden=[16]"];
    let mut s = Session::start(run_config(&o), two(), &dir).unwrap();
    assert_eq!(s.trainer.devices(), 2);
    assert!(
        s.trainer.describe().starts_with("2 devices, 4 envs each"),
        "{}",
        s.trainer.describe()
    );
    let row = s.step(|_| {}).unwrap();
    assert_eq!(row["global_step"], 8.0 * 20.0, "both devices' envs count");
    s.checkpoint().unwrap();
    drop(s);
    let ckpt = dir.join("checkpoints/iter_00000001");
    assert!(ckpt.join("env.bin").is_file() && ckpt.join("env.1.bin").is_file());
    let err = Session::resume(&dir, Picked::Cpu, None, None)
        .err()
        .expect("one device cannot resume a run of two")
        .to_string();
    assert!(
        err.contains("2 device(s)") && err.contains("--gpus"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Envs must split evenly.
    let odd = run_config(&["env.num_envs=3"]);
    let err = Trainer::new(odd, two()).err().unwrap().to_string();
    assert!(
        err.contains("`env.num_envs`") && err.contains("multiple of 2"),
        "{err}"
    );
}

/// All files under `dir` with their bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_non_finite_value_stops_the_run_and_leaves_the_last_checkpoint_intact() {
    let dir = temp_dir("nan");
    let o = [
        "train.sampling_horizon=20",
        "train.checkpoint_interval=1",
        "train.players.hidden=[32]",
    ];
    let mut s = Session::start(run_config(&o), Picked::Cpu, &dir).unwrap();
    s.step(|_| {}).unwrap();
    drop(s);
    // Corrupt the optimizer state of the checkpoint: every first moment becomes NaN, so
    // the next update writes NaN into the parameters.
    let ckpt = dir.join("checkpoints/iter_00000001");
    let path = ckpt.join("players.adam");
    let mut bytes = std::fs::read(&path).unwrap();
    let count = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let mut at = 24;
    for _ in 0..count {
        let len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        at += 16;
        for k in 0..len {
            bytes[at + 4 * k..at + 4 * k + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        }
        at += 8 * len;
    }
    std::fs::write(&path, &bytes).unwrap();
    let before = snapshot(&dir);
    let mut s = Session::resume(&dir, Picked::Cpu, None, None).unwrap();
    let err = s.step(|_| {}).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    assert!(
        err.contains("losses/") || err.contains("parameter players."),
        "the error says where: {err}"
    );
    assert!(err.contains("iteration 2"), "{err}");
    drop(s);
    let after = snapshot(&dir);
    let files = |s: &[(PathBuf, Vec<u8>)]| s.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        files(&before),
        files(&after),
        "no checkpoint or file was added"
    );
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        if p.file_name()
            .is_some_and(|n| n == "config.toml" || n.to_string_lossy().starts_with("metrics"))
        {
            continue;
        }
        assert_eq!(a, b, "{} was rewritten", p.display());
    }
    assert_eq!(
        read_csv(&dir.join("metrics.csv")).unwrap().len(),
        1,
        "no row for the failed iteration"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn sed_train(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sed-train"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("the binary runs")
}

/// Runs the binary and asserts that it succeeded, showing its stderr if not.
fn sed_train_ok(args: &[&str]) -> std::process::Output {
    let out = sed_train(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes an experiment file over `configs/smoke.toml` asking `question`, with `body`
/// (seeds, overrides, arms) after it.
fn smoke_experiment(path: &Path, question: &str, body: &str) {
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml");
    let text = format!(
        "question = {question:?}\nconfig = {:?}\n{body}",
        smoke.display().to_string()
    );
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_binary_trains_on_the_smoke_config_and_writes_every_output() {
    let dir = temp_dir("binary");
    let out = sed_train(&[
        "--config",
        "configs/smoke.toml",
        "--total-steps",
        "480",
        "--set",
        "train.sampling_horizon=20",
        "--set",
        "train.checkpoint_interval=2",
        "--device",
        "cpu",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("device: CPU"),
        "says which device: {stderr}"
    );
    // The resolved config stands alone and resolves to the same run.
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let again = RunConfig::parse(&text, &[], "config.toml", None).unwrap();
    assert_eq!(again.train.sampling_horizon, 20);
    assert_eq!(again.iterations(), 3);
    let rows = read_csv(&dir.join("metrics.csv")).unwrap();
    assert_eq!(rows.len(), 3);
    for key in [
        "charts/SPS",
        "losses/policy_loss",
        "losses/value_loss",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
        "principal/rate_0",
        "principal/policy_loss",
        "social/eta",
        "perf/env_seconds",
        "perf/inference_seconds",
        "perf/update_seconds",
    ] {
        assert!(
            rows.iter().all(|r| r.contains_key(key)),
            "{key} in every row"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.contains_key("charts/episodic_return"))
    );
    assert!(rows.iter().any(|r| r.contains_key("social/apples")));
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).unwrap();
    assert_eq!(latest.trim(), "iter_00000003");
    for f in [
        "players.bpk",
        "principal.bpk",
        "players.adam",
        "principal.adam",
        "env.bin",
        "trainer.json",
    ] {
        assert!(
            dir.join("checkpoints")
                .join(latest.trim())
                .join(f)
                .is_file(),
            "{f}"
        );
    }
    assert!(dir.join("checkpoints/iter_00000002").is_dir());

    // Resuming a finished run with more steps continues it.
    sed_train_ok(&[
        "--resume",
        dir.to_str().unwrap(),
        "--total-steps",
        "640",
        "--device",
        "cpu",
    ]);
    assert_eq!(read_csv(&dir.join("metrics.csv")).unwrap().len(), 4);

    // The checkpoint against the baselines, on the same worlds: a JSON of five rows.
    sed_train_ok(&[
        "eval",
        dir.to_str().unwrap(),
        "--episodes",
        "1",
        "--device",
        "cpu",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("eval.json")).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["policies"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "trained / trained",
            "trained / no tax",
            "trained / fixed 30%",
            "uniform random / trained",
            "uniform random / uniform random"
        ]
    );
    let metric = |row: usize, key: &str| results[row]["metrics"][key].as_f64().unwrap();
    // No tax leaves every rate at 0; the fixed tax sets them all to 0.3 (the smoke game
    // has no curriculum).
    assert_eq!(metric(1, "mean_rate"), 0.0);
    assert!((metric(2, "mean_rate") - 0.3).abs() < 1e-6);
    assert!(metric(0, "apples_per_player") > 0.0);
    std::fs::remove_file(dir.join("eval.json")).unwrap();

    // The checkpoint plays an episode into a GIF: one frame per 2 steps.
    let gif = dir.join("replay/episode.gif");
    sed_train_ok(&[
        "render",
        "--run",
        dir.to_str().unwrap(),
        "--steps",
        "8",
        "--every",
        "2",
        "--device",
        "cpu",
        "--out",
        gif.to_str().unwrap(),
    ]);
    assert_eq!(gif_frames(&gif), 4);
    std::fs::remove_dir_all(dir.join("replay")).unwrap();

    // Resuming with another config is refused, and the run is left alone.
    let before = snapshot(&dir);
    let out = sed_train(&[
        "--resume",
        dir.to_str().unwrap(),
        "--config",
        "configs/smoke.toml",
        "--set",
        "seed=99",
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("seed") && stderr.contains("another config"),
        "{stderr}"
    );
    // A new run into the same directory is refused too.
    let out = sed_train(&[
        "--config",
        "configs/smoke.toml",
        "--out",
        dir.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(before, snapshot(&dir), "the run directory is untouched");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn plot_draws_runs_and_groups_the_seeds_of_one_setting() {
    let dir = temp_dir("plot");
    for (name, seed) in [("a-s1", "1"), ("a-s2", "2"), ("b", "1")] {
        let mut args = vec![
            "--config",
            "configs/smoke.toml",
            "--total-steps",
            "320",
            "--set",
            "train.sampling_horizon=20",
            "--seed",
            seed,
            "--device",
            "cpu",
        ];
        if name == "b" {
            args.extend_from_slice(&["--set", "tax.enabled=false"]);
        }
        let out_dir = dir.join("sweep").join(name);
        args.extend_from_slice(&["--out", out_dir.to_str().unwrap()]);
        let out = sed_train(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let png = dir.join("plots.png");
    let out = sed_train(&[
        "plot",
        dir.join("sweep").to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Eight metrics and three brackets' rates, three charts to a row of 520 x 360 each.
    assert!(stdout.contains("3 runs in 2 series, 11 charts"), "{stdout}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (3 * 520, 4 * 360));
    let out = sed_train(&["plot", dir.join("nothing-here").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such directory"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_experiment_trains_every_arm_and_seed_then_draws_its_figures() {
    let dir = temp_dir("experiment");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tiny.toml");
    smoke_experiment(
        &file,
        "Does a flat tax change anything?",
        "seeds = [1, 2]\n\
         set = [\"train.total_steps=160\", \"train.sampling_horizon=20\"]\n\
         [[arm]]\nname = \"learned\"\n\
         [[arm]]\nname = \"fixed-30\"\nset = [\"train.fixed_rate=0.3\"]\n",
    );
    let out_dir = dir.join("out");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "experiment",
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        sed_train(&args)
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("tiny: Does a flat tax change anything?"),
        "{stdout}"
    );
    assert!(stdout.contains("4 runs in 2 series"), "{stdout}");
    for arm in ["learned", "fixed-30"] {
        for seed in [1, 2] {
            let run_dir = out_dir.join(format!("tiny/{arm}/seed-{seed}"));
            let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
            assert!(config.contains(&format!("seed = {seed}")), "{config}");
            assert_eq!(config.contains("fixed_rate = 0.3"), arm == "fixed-30");
        }
    }
    assert!(out_dir.join("tiny/figures.png").is_file());
    // Run again: every run is finished, so nothing trains and the figures are redrawn.
    let rows = |arm: &str| {
        read_csv(&out_dir.join(format!("tiny/{arm}/seed-1/metrics.csv")))
            .unwrap()
            .len()
    };
    let before = rows("learned");
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows("learned"), before);
    // A changed setting is refused for runs already there, and leaves them alone.
    let out = run(&["--set", "tax.period=20"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tax.period") && stderr.contains("another config"),
        "{stderr}"
    );
    assert_eq!(rows("learned"), before);
    // A bad override is refused before anything trains.
    let out = run(&["--set", "train.fixed_rate=0.35"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("train.fixed_rate") && stderr.contains("0.35"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bench_env_sweeps_players_and_writes_csv_and_charts() {
    let dir = temp_dir("bench-env");
    let (csv, png) = (dir.join("engines.csv"), dir.join("engines.png"));
    let out = sed_train(&[
        "bench-env",
        "--config",
        "configs/smoke.toml",
        "--cpu-only",
        "--sizes",
        "1,4",
        "--players",
        "2,3",
        "--seconds",
        "0.05",
        "--max-agents",
        "8",
        "--train",
        "--train-iterations",
        "1",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 3 players x 4 envs = 12 agents, over --max-agents 8: skipped, and said so.
    assert!(
        stdout.contains("skipped: 12 agents exceed --max-agents 8"),
        "{stdout}"
    );
    let rows = read_csv_text(&csv);
    // Each point: the CPU engine, then end-to-end training on the CPU path.
    assert_eq!(rows.len(), 6, "{rows:?}");
    let engines: Vec<&str> = rows.iter().map(|r| r["engine"].as_str()).collect();
    assert_eq!(
        engines,
        ["cpu", "train-cpu", "cpu", "train-cpu", "cpu", "train-cpu"]
    );
    let points = [(2, 1), (2, 1), (2, 4), (2, 4), (3, 1), (3, 1)];
    for (row, (players, envs)) in rows.iter().zip(points) {
        assert_eq!(
            (
                row["players"].parse::<u32>().unwrap(),
                row["envs"].parse::<u32>().unwrap()
            ),
            (players, envs)
        );
        let (env_rate, agent_rate): (f64, f64) = (
            row["env_steps_per_second"].parse().unwrap(),
            row["agent_steps_per_second"].parse().unwrap(),
        );
        assert!(env_rate > 0.0);
        assert!(
            (agent_rate - env_rate * f64::from(players)).abs() <= f64::from(players),
            "{row:?}"
        );
        assert_eq!(row["map"], "7x12");
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!(
        (info.width, info.height),
        (2 * 640, 440),
        "two charts side by side"
    );

    // Over map sizes: the smoke map, and two copies of its interior one above the other.
    let args = |tiles: &str| {
        sed_train(&[
            "bench-env",
            "--config",
            "configs/smoke.toml",
            "--cpu-only",
            "--sizes",
            "2",
            "--seconds",
            "0.02",
            "--map-tiles",
            tiles,
            "--csv",
            csv.to_str().unwrap(),
            "--plot",
            png.to_str().unwrap(),
        ])
    };
    assert!(args("1x1,2x1").status.success());
    let maps: Vec<String> = read_csv_text(&csv)
        .iter()
        .map(|r| r["map"].clone())
        .collect();
    assert_eq!(maps, ["7x12", "12x12"]);
    let out = args("2");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--map-tiles \"2\": give DOWNxACROSS"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A CSV file's rows as maps from column to text (no quoted commas outside the device).
fn read_csv_text(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|line| {
            // The device is quoted and may hold commas: take it out first.
            let (before, rest) = line.split_once(",\"").unwrap();
            let (device, after) = rest.split_once("\",").unwrap();
            let fields: Vec<&str> = std::iter::once(before)
                .chain(std::iter::once(device))
                .chain(after.split(','))
                .collect();
            header
                .iter()
                .cloned()
                .zip(fields.into_iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn the_trainer_runs_a_large_economy_on_a_tiled_map_with_a_pooled_principal() {
    // The tiny map 4 x 4 times (22 x 42 cells, 80 spawn cells) with 60 players; the
    // principal sees 6 x 11 blocks of 4 x 4 cells.
    let dir = temp_dir("tiled");
    let out = sed_train(&[
        "--config",
        "configs/smoke.toml",
        "--set",
        "env.map_tiles=[4, 4]",
        "--set",
        "env.players=60",
        "--envs",
        "2",
        "--set",
        "train.principal_pool=4",
        "--set",
        "train.sampling_horizon=20",
        "--total-steps",
        "80",
        "--device",
        "cpu",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&dir.join("metrics.csv")).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["perf/agent_steps_per_second"] > 0.0));
    let run = RunConfig::parse(
        &std::fs::read_to_string(dir.join("config.toml")).unwrap(),
        &[],
        "config.toml",
        None,
    )
    .unwrap();
    let map = &run.game.game.map;
    assert_eq!((map.rows, map.cols, run.game.game.players), (22, 42, 60));
    // A block larger than the map is refused, naming the field and the range.
    let out = sed_train(&[
        "--config",
        "configs/smoke.toml",
        "--set",
        "train.principal_pool=13",
        "--device",
        "cpu",
        "--out",
        dir.join("never").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("train.principal_pool") && stderr.contains("13 is outside 1..=12"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn devices_lists_adapters_by_index_and_gpu_picks_one() {
    let out = sed_train(&["devices"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    // At least one adapter (lavapipe without a GPU), with its index and PCI bus id.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("0: ") && l.contains(" PCI ")),
        "{stdout}"
    );
    let dir = temp_dir("gpu-choice");
    let csv = dir.join("engines.csv");
    let bench = |gpu: &str| {
        sed_train(&[
            "bench-env",
            "--gpu",
            gpu,
            "--config",
            "configs/smoke.toml",
            "--gpu-only",
            "--sizes",
            "1",
            "--seconds",
            "0.01",
            "--csv",
            csv.to_str().unwrap(),
            "--plot",
            dir.join("engines.png").to_str().unwrap(),
        ])
    };
    let out = bench("0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&csv).unwrap().contains("\ngpu,"));
    let out = bench("99");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("--gpu 99: there are"), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing adapter is a usage error"
    );
    let stderr = String::from_utf8_lossy(&bench("no-such-gpu").stderr).into_owned();
    assert!(
        stderr.contains("--gpu \"no-such-gpu\": no adapter name contains it"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a sweep's Slurm script with stand-ins for `sed-train` and `nvidia-smi` (which
/// prints one bus id a GPU asked for); returns, for `CUDA_VISIBLE_DEVICES` (`None`: no
/// `nvidia-smi` either), the arguments the script passed and those `nvidia-smi` got
/// (`-` when it did not run).
fn slurm_task_args(script: &Path, scratch: &Path) -> impl Fn(Option<&str>) -> String + use<> {
    let bin = scratch.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = scratch.join("fake.log");
    let write_exe = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut perm = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&path, perm).unwrap();
    };
    let log_s = log.display().to_string();
    write_exe("sed-train", &format!("echo \"$*\" > {log_s}.args"));
    write_exe(
        "nvidia-smi",
        &format!(
            "echo \"$*\" > {log_s}.smi\nfor g in $(echo \"$CUDA_VISIBLE_DEVICES\" | tr , ' '); do echo 00000000:3B:00.$g; done"
        ),
    );
    let script = script.to_owned();
    let empty = scratch.join("empty");
    move |visible: Option<&str>| {
        let _ = std::fs::remove_file(format!("{log_s}.smi"));
        // By its path: the script runs with a PATH that may hold nothing.
        let mut c = Command::new("/bin/bash");
        c.arg(&script)
            .env("SED_TRAIN", bin.join("sed-train"))
            .env_remove("CUDA_VISIBLE_DEVICES");
        match visible {
            Some(v) => {
                let path = std::env::var("PATH").unwrap_or_default();
                c.env("PATH", format!("{}:{path}", bin.display()))
                    .env("CUDA_VISIBLE_DEVICES", v);
            }
            // No nvidia-smi anywhere on the path.
            None => {
                c.env("PATH", &empty);
            }
        }
        let status = c.status().unwrap();
        assert!(status.success(), "{}", script.display());
        let args = std::fs::read_to_string(format!("{log_s}.args")).unwrap();
        let smi = std::fs::read_to_string(format!("{log_s}.smi")).unwrap_or("-".into());
        format!("{} | {}", args.trim(), smi.trim())
    }
}

#[test]
fn a_sweep_writes_its_manifest_and_scripts_and_each_entry_runs_once() {
    let dir = temp_dir("sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = dir.join("tiny.toml");
    smoke_experiment(
        &file,
        "q",
        "seeds = [1, 2]\n\
         set = [\"train.total_steps=160\", \"train.sampling_horizon=20\"]\n\
         [[arm]]\nname = \"a\"\n[[arm]]\nname = \"b\"\nset = [\"tax.enabled=false\"]\n",
    );
    let out_dir = dir.join("out");
    sed_train_ok(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--workers",
        "3",
    ]);
    let manifest = out_dir.join("manifest.jsonl");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dirs: Vec<String> = lines
        .iter()
        .map(|l| l["dir"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = ["a/seed-1", "a/seed-2", "b/seed-1", "b/seed-2"]
        .iter()
        .map(|d| out_dir.join("tiny").join(d).display().to_string())
        .collect();
    assert_eq!(dirs, expected);
    let slurm = std::fs::read_to_string(out_dir.join("sweep.slurm")).unwrap();
    assert!(
        slurm.contains("#SBATCH --array=0-3%3")
            && slurm.contains("--index-var SLURM_ARRAY_TASK_ID"),
        "{slurm}"
    );
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(out_dir.join("sweep.slurm"))
        .status()
        .unwrap();
    assert!(syntax.success(), "bash -n sweep.slurm");
    let args_of = slurm_task_args(&out_dir.join("sweep.slurm"), &dir);
    assert_eq!(
        args_of(Some("3")),
        format!(
            "--manifest {} --index-var SLURM_ARRAY_TASK_ID --gpus 00000000:3B:00.3 | --query-gpu=pci.bus_id --format=csv,noheader -i 3",
            manifest.display()
        ),
        "the task's GPU by PCI bus id"
    );
    assert!(
        args_of(None).ends_with("--index-var SLURM_ARRAY_TASK_ID --device gpu | -"),
        "without nvidia-smi: the best GPU"
    );
    // Two GPUs an entry: one run on both.
    let two_dir = dir.join("two");
    let sweep_two = |gpus: &str| {
        sed_train(&[
            "sweep",
            file.to_str().unwrap(),
            "--out",
            two_dir.to_str().unwrap(),
            "--gpus-per-entry",
            gpus,
        ])
    };
    assert!(sweep_two("2").status.success());
    let two_script = two_dir.join("sweep.slurm");
    assert!(
        std::fs::read_to_string(&two_script)
            .unwrap()
            .contains("#SBATCH --gpus=2\n")
    );
    let args_of = slurm_task_args(&two_script, &dir);
    assert!(
        args_of(Some("1,4")).ends_with(
            "--gpus 00000000:3B:00.1,00000000:3B:00.4 | --query-gpu=pci.bus_id --format=csv,noheader -i 1,4"
        ),
        "{}",
        args_of(Some("1,4"))
    );
    assert!(args_of(None).ends_with("--gpus 0,1 | -"));
    let out = sweep_two("3");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`env.num_envs` = 8 does not split evenly over --gpus-per-entry 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The SkyPilot task parses as YAML with the fields SkyPilot reads.
    let sky = std::fs::read_to_string(out_dir.join("sweep.sky.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&sky).expect("valid YAML");
    let task = &docs[0];
    assert_eq!(task["name"].as_str(), Some("sed-sweep"));
    assert_eq!(task["resources"]["use_spot"].as_bool(), Some(true));
    assert_eq!(task["resources"]["job_recovery"].as_str(), Some("FAILOVER"));
    assert_eq!(task["envs"]["SED_INDEX"].as_i64(), Some(0));
    assert!(task["setup"].as_str().unwrap().contains("libvulkan1"));
    let run_line = task["run"].as_str().unwrap();
    assert!(
        run_line.contains(&format!("--manifest {}", manifest.display()))
            && run_line.contains("--index-var SED_INDEX"),
        "{run_line}"
    );
    assert!(
        sky.contains("use_spot: true") && sky.contains("--index-var SED_INDEX"),
        "{sky}"
    );

    let m = manifest.to_str().unwrap();
    let entry = |args: &[&str], var: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sed-train"));
        c.args(["--manifest", m, "--device", "cpu"])
            .args(args)
            .current_dir(&root);
        c.env_remove("SLURM_ARRAY_TASK_ID");
        if let Some(v) = var {
            c.env("SLURM_ARRAY_TASK_ID", v);
        }
        c.output().unwrap()
    };
    // Index 2 from the Slurm variable, then again: the finished run is not retrained.
    let out = entry(&[], Some("2"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = out_dir.join("tiny/b/seed-1/metrics.csv");
    let rows = read_csv(&csv).unwrap().len();
    assert_eq!(rows, 1);
    let out = entry(&["--index", "2"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_csv(&csv).unwrap().len(), rows);
    assert!(
        !out_dir.join("tiny/a/seed-1").exists(),
        "only the entry asked for ran"
    );
    for (args, var, expected) in [
        (&["--index", "4"][..], None, "--index 4: the manifest"),
        (&[][..], None, "give --index, or set SLURM_ARRAY_TASK_ID"),
        (
            &[][..],
            Some("x"),
            "SLURM_ARRAY_TASK_ID=\"x\": not an entry index",
        ),
    ] {
        let out = entry(args, var);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    // --local runs the rest; the finished entry stays as it was.
    sed_train_ok(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--local",
        "--device",
        "cpu",
    ]);
    for d in &expected {
        assert_eq!(
            read_csv(&Path::new(d).join("metrics.csv")).unwrap().len(),
            1,
            "{d}"
        );
    }
    // eval over the whole sweep: each arm's two seeds as mean, lowest and highest.
    let tiny = out_dir.join("tiny");
    sed_train_ok(&[
        "eval",
        tiny.to_str().unwrap(),
        "--episodes",
        "1",
        "--device",
        "cpu",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("eval.json")).unwrap()).unwrap();
    let settings = report["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 2);
    for (s, arm) in settings.iter().zip(["a", "b"]) {
        assert_eq!(s["runs"].as_array().unwrap().len(), 2, "{s}");
        assert!(s["setting"].as_str().unwrap().starts_with(arm));
        let apples = &s["policies"]["trained / trained"]["apples_per_player"];
        let (lo, mean, hi) = (
            apples["min"].as_f64().unwrap(),
            apples["mean"].as_f64().unwrap(),
            apples["max"].as_f64().unwrap(),
        );
        assert!(lo <= mean && mean <= hi && hi > 0.0, "{apples}");
    }
    assert!(tiny.join("a/seed-1/eval.json").is_file());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sweep_entry_killed_mid_run_resumes_and_ends_like_an_uninterrupted_one() {
    let dir = temp_dir("kill9");
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = dir.join("long.toml");
    smoke_experiment(
        &file,
        "q",
        "seeds = [5]\n\
         set = [\"train.total_steps=4800\", \"train.sampling_horizon=20\", \"train.checkpoint_interval=1\"]\n\
         [[arm]]\nname = \"a\"\n",
    );
    let run_entry = |out: &Path| {
        let status = Command::new(env!("CARGO_BIN_EXE_sed-train"))
            .args([
                "sweep",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(status.status.success());
        Command::new(env!("CARGO_BIN_EXE_sed-train"))
            .args([
                "--manifest",
                out.join("manifest.jsonl").to_str().unwrap(),
                "--index",
                "0",
                "--device",
                "cpu",
            ])
            .current_dir(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Uninterrupted.
    let whole = dir.join("whole");
    assert!(run_entry(&whole).wait().unwrap().success());
    // Killed with SIGKILL once a few checkpoints exist, then resubmitted.
    let killed = dir.join("killed");
    let mut child = run_entry(&killed);
    let run = killed.join("long/a/seed-5");
    let started = std::time::Instant::now();
    loop {
        let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap_or_default();
        if latest.trim() >= "iter_00000010" {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed().as_secs() < 300, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = read_csv(&run.join("metrics.csv")).unwrap().len();
    assert!(
        before < 30,
        "killed before the end: {before} of 30 iterations"
    );
    assert!(run_entry(&killed).wait().unwrap().success());
    let rows = |d: &Path| timeless_rows(&d.join("long/a/seed-5/metrics.csv"));
    let (a, b) = (rows(&whole), rows(&killed));
    assert_eq!(a.len(), 30);
    assert_eq!(
        a, b,
        "the resumed run's metrics equal the uninterrupted run's"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The frames of a GIF file, each checked to be the file's size.
fn gif_frames(path: &Path) -> usize {
    let file = std::fs::File::open(path).expect("the GIF exists");
    let mut decoder = gif::DecodeOptions::new().read_info(file).expect("a GIF");
    let (w, h) = (decoder.width(), decoder.height());
    let mut frames = 0;
    while let Some(f) = decoder.read_next_frame().expect("a frame") {
        assert_eq!((f.width, f.height), (w, h));
        frames += 1;
    }
    frames
}

#[test]
fn render_writes_a_gif_of_random_play_or_prints_text() {
    let dir = temp_dir("render");
    let gif = dir.join("episode.gif");
    sed_train_ok(&[
        "render",
        "--config",
        "configs/smoke.toml",
        "--steps",
        "5",
        "--scale",
        "1",
        "--out",
        gif.to_str().unwrap(),
    ]);
    // The reset and each of 5 steps; the smoke map is 7 x 12 cells of 8 pixels, beside
    // a 128-pixel panel.
    assert_eq!(gif_frames(&gif), 6);
    let decoder = gif::DecodeOptions::new()
        .read_info(std::fs::File::open(&gif).unwrap())
        .unwrap();
    assert_eq!(decoder.width(), 12 * 8 + 128);
    let out = sed_train(&[
        "render",
        "--config",
        "configs/smoke.toml",
        "--text",
        "--steps",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(stdout.matches("t=").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("rewards").count(), 2, "{stdout}");
    for (args, expected) in [
        (&["--every", "0"][..], "--every 0: must be at least 1"),
        (&["--scale", "17"][..], "--scale 17: must be in 1..=16"),
        (&["--steps", "0"][..], "--steps 0: must be at least 1"),
    ] {
        let mut all = vec![
            "render",
            "--config",
            "configs/smoke.toml",
            "--out",
            gif.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let out = sed_train(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_gets_one_clear_line() {
    let dir = temp_dir("never-written");
    let d = dir.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--config",
                "configs/smoke.toml",
                "--envs",
                "0",
                "--out",
                d,
                "--device",
                "cpu",
            ],
            "env.num_envs",
        ),
        (
            &[
                "--config",
                "configs/smoke.toml",
                "--set",
                "train.nope=1",
                "--out",
                d,
                "--device",
                "cpu",
            ],
            "nope",
        ),
        (
            &[
                "--config",
                "configs/smoke.toml",
                "--set",
                "train.sampling_horizon=15",
                "--out",
                d,
                "--device",
                "cpu",
            ],
            "train.sampling_horizon",
        ),
        (
            &[
                "--config",
                "configs/smoke.toml",
                "--set",
                "train.players.gamma=1.5",
                "--out",
                d,
                "--device",
                "cpu",
            ],
            "train.players.gamma",
        ),
        (
            &[
                "--config",
                "configs/smoke.toml",
                "--envs",
                "100000000",
                "--out",
                d,
                "--device",
                "cpu",
            ],
            "env.num_envs",
        ),
        (&["--resume", d, "--device", "cpu"], "no such run directory"),
        (
            &[
                "--config",
                "configs/none.toml",
                "--out",
                d,
                "--device",
                "cpu",
            ],
            "configs/none.toml",
        ),
    ];
    for (args, needle) in cases {
        let out = sed_train(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "{args:?}: {stderr}"
        );
        // Said once: no cause repeats the text before it.
        let parts: Vec<&str> = last.split(": ").filter(|p| p.len() > 12).collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                !parts[..i].iter().any(|q| q.contains(p)),
                "{args:?} repeats itself: {last}"
            );
        }
        assert!(!dir.exists(), "{args:?} created the run directory");
    }
    // `--device gpu` on a machine without a GPU (CI has only the software driver).
    let adapters = sed_train::device::list();
    if adapters.iter().all(|a| a.contains("[software]")) {
        let out = sed_train(&[
            "--config",
            "configs/smoke.toml",
            "--device",
            "gpu",
            "--out",
            d,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("--device gpu"), "{stderr}");
        assert!(!dir.exists());
    }
}

/// `--gpus 0,0`: one run on two devices of the first adapter (lavapipe in CI) writes each
/// device's envs into its checkpoint; `bench --gpus` measures one device against both;
/// bad lists get one clear line.
#[test]
fn gpus_trains_one_run_on_two_devices_and_bench_measures_its_scaling() {
    let dir = temp_dir("gpus");
    let out_dir = dir.join("run");
    let small = [
        "--set",
        "train.principal.minibatches=1",
        "--set",
        "train.sampling_horizon=10",
        "--set",
        "train.players.hidden=[16]",
        "--set",
        "train.principal.hidden=[16]",
    ];
    let mut args = vec![
        "--gpus",
        "0,0",
        "--config",
        "configs/smoke.toml",
        "--envs",
        "2",
        "--total-steps",
        "40",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend(small);
    let out = sed_train_ok(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 devices (--gpus 0,0)"), "{stderr}");
    let ckpt = out_dir.join("checkpoints/iter_00000002");
    assert!(ckpt.join("env.1.bin").is_file(), "{stderr}");
    // Evaluating and rendering a run of two devices play fresh envs on one.
    let run = out_dir.to_str().unwrap();
    sed_train_ok(&["eval", run, "--episodes", "1", "--device", "cpu"]);
    assert!(out_dir.join("eval.json").is_file());
    let gif = dir.join("two.gif");
    let gif_path = gif.to_str().unwrap();
    sed_train_ok(&[
        "render", "--run", run, "--steps", "2", "--device", "cpu", "--out", gif_path,
    ]);
    assert!(gif.is_file());

    let csv = dir.join("scaling.csv");
    let mut args = vec![
        "bench",
        "--gpus",
        "0,0",
        "--config",
        "configs/smoke.toml",
        "--envs",
        "1",
        "--iterations",
        "1",
        "--csv",
        csv.to_str().unwrap(),
    ];
    args.extend(small);
    let out = sed_train_ok(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("scaling efficiency on 2 devices"),
        "{stdout}"
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    let devices: Vec<&str> = rows
        .lines()
        .skip(1)
        .map(|l| l.split(',').rev().nth(12).unwrap())
        .collect();
    assert_eq!(devices, ["1", "2"], "{rows}");

    for (args, expected) in [
        (&["--gpus", "0,", "--total-steps", "1"][..], "--gpus \"0,\""),
        (
            &[
                "--gpus",
                "0,0",
                "--envs",
                "4",
                "--set",
                "train.sampling_horizon=10",
                "--config",
                "configs/smoke.toml",
            ][..],
            "`train.principal.minibatches`: 4 minibatches but each of the 2 devices has only 2 principal decisions per rollout",
        ),
        (&["--gpu", "0", "--gpus", "0,0"][..], "--gpu 0 and --gpus"),
        (
            &["--gpus", "0,99"][..],
            "--gpus 99: no such GPU: --gpu 99: there are",
        ),
        (
            &[
                "--gpus",
                "0,0",
                "--envs",
                "3",
                "--config",
                "configs/smoke.toml",
            ][..],
            "`env.num_envs`: 3 envs do not split evenly over 2 devices",
        ),
    ] {
        let out = sed_train(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each players' torso trains: the symbolic MLP and CNN, and the CNN on RGB windows
/// (SPEC §3's fidelity option) rendered on the device; with stacked frames too.
#[test]
fn every_players_torso_trains() {
    // The released code's fidelity setting is RGB with 4 frames.
    for (torso, frames) in [("mlp", 1), ("cnn", 1), ("rgb", 1), ("mlp", 3), ("rgb", 4)] {
        let run = run_config(&[
            &format!("train.torso=\"{torso}\""),
            &format!("train.frame_stack={frames}"),
            "env.num_envs=2",
            "train.sampling_horizon=10",
            "train.players.minibatches=2",
            "train.principal.minibatches=1",
            "train.players.update_epochs=1",
            "train.players.hidden=[16]",
            "train.principal.hidden=[16]",
        ]);
        let mut t = Trainer::new(run, Picked::Cpu).unwrap();
        let before = params(t.players());
        let row = t.iterate(|_| {}).unwrap();
        let after = params(t.players());
        assert_eq!(before.len(), after.len());
        assert_ne!(before, after, "{torso}: the players' network changed");
        for key in ["losses/policy_loss", "losses/value_loss", "losses/entropy"] {
            assert!(row[key].is_finite(), "{torso}: {key} = {}", row[key]);
        }
        if torso == "rgb" && frames == 1 {
            // conv 3·32·8·8 + 32 → … → dense (64·7·7 + extras)·512: the released code's shapes.
            assert!(before.len() > 64 * 7 * 7 * 512, "{}", before.len());
        }
    }
}
