//! The GPU path on whatever adapter wgpu finds (Mesa's lavapipe in CI): Burn and the env
//! share the device and its buffers; actions sampled on the device are consumed by the env
//! exactly as the CPU path consumes its own; training runs with a constant number of host
//! reads per iteration, whatever the rollout's length; the per-step code has no readback.

use burn::prelude::{Int, Tensor};
use sed_core::config::Config;
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::{CHOICES, TaxSchedule};
use sed_gpu::{Buf, GpuEngine};
use sed_train::bridge::{flush, tensor_region};
use sed_train::config::RunConfig;
use sed_train::device::{DeviceChoice, Devices, Picked, pick, pick_gpus, shared_gpu};
use sed_train::env::{CpuEnv, GpuEnv, Noise, VecEnv};
use sed_train::features::{push_frame, stack_frames};
use sed_train::nets::flat_params;
use sed_train::policy::sample;
use sed_train::trainer::Trainer;

#[test]
fn burn_reads_observations_and_writes_actions_on_the_device() {
    let envs = 16;
    let steps = 60;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml");
    let config = Config::load(&path, &[]).unwrap();
    let resolved = config.resolve().unwrap();
    let game = resolved.game.clone();
    let params = StepParams {
        schedule: TaxSchedule::FULL,
        welfare: resolved.vote(),
    };

    let (ctx, device) = shared_gpu().expect("a wgpu adapter");
    let mut gpu = GpuEngine::new(ctx, game.clone(), envs).unwrap();
    let l = gpu.layout();
    let n = l.players;
    let words = l.obs_stride / 4;

    // Burn owns the observation and action memory; the env binds it.
    let obs = tensor_region(Tensor::<1, Int>::zeros([envs * n * words], &device)).unwrap();
    gpu.bind_external(Buf::Obs, obs.region.clone()).unwrap();
    gpu.reset().unwrap();

    // The policy stand-in: action = Σ over the window's words of (word & 0xff), mod 7.
    let policy = |o: Tensor<1, Int>| -> Tensor<1, Int> {
        o.reshape([envs * n, words])
            .bitwise_and_scalar(0xff)
            .sum_dim(1)
            .remainder_scalar(7)
            .reshape([envs * n])
    };
    let mut keep = Vec::new();
    for _ in 0..steps {
        let actions = tensor_region(policy(obs.tensor())).unwrap();
        gpu.bind_external(Buf::Actions, actions.region.clone())
            .unwrap();
        flush(&actions).unwrap();
        gpu.step(&params).unwrap();
        keep.push(actions); // alive until the queue has consumed it
    }

    // The same loop on the CPU, with the rule applied to host observations.
    let cpu = Engine::new(game, envs);
    let (mut state, mut out, mut actions) = (cpu.new_state(), cpu.new_outputs(), cpu.new_actions());
    cpu.reset(&mut state, &mut out).unwrap();
    for _ in 0..steps {
        for (a, win) in actions
            .players
            .iter_mut()
            .zip(out.obs.chunks_exact(l.obs_stride))
        {
            *a = win.chunks_exact(4).map(|w| w[0] as u32).sum::<u32>() % 7;
        }
        cpu.step(&params, &actions, &mut state, &mut out).unwrap();
    }

    assert_eq!(
        gpu.read_state().unwrap(),
        state,
        "the GPU consumed Burn's actions like the CPU its own"
    );
    let burn_obs: Vec<i32> = obs.tensor().into_data().try_to_vec().unwrap();
    let cpu_obs: Vec<i32> = out
        .obs
        .chunks_exact(4)
        .map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    assert_eq!(
        burn_obs, cpu_obs,
        "Burn sees the env's observations in its own tensor"
    );
    assert!(
        state.stats.iter().any(|&s| s > 0),
        "the players did something"
    );
}

fn smoke(overrides: &[&str]) -> RunConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml");
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    RunConfig::load(&path, &o).unwrap()
}

#[test]
fn actions_sampled_on_the_device_drive_the_env_as_on_the_cpu() {
    // Uniform policies (zero logits) sampled with each path's own noise: the GPU's noise
    // kernel, Burn's Gumbel-max on the device and the copy of the actions into the env's
    // buffers must reproduce the CPU path's run bit for bit, principal choices included.
    let run = smoke(&["seed=13"]);
    let (ctx, device) = shared_gpu().unwrap();
    let envs = 6;
    let game = run.game.game.clone();
    let mut gpu = GpuEnv::new(ctx, device.clone(), game.clone(), envs).unwrap();
    let mut cpu = CpuEnv::new(game.clone(), envs, burn::prelude::Device::flex());
    let l = cpu.layout();
    let params = StepParams {
        schedule: TaxSchedule::FULL,
        welfare: run.game.vote(),
    };
    for env in [&mut gpu as &mut dyn VecEnv, &mut cpu] {
        env.reset().unwrap();
        let d = env.device().clone();
        for tick in 0..95u32 {
            let noise = env.noise(Noise::Players, tick).unwrap();
            let act = sample(Tensor::zeros([envs * l.players, 7], &d), noise);
            let noise = env.noise(Noise::Principal, tick).unwrap();
            let ch = sample(
                Tensor::zeros([envs * l.brackets, CHOICES as usize], &d),
                noise,
            );
            env.step(act, ch, &params).unwrap();
        }
    }
    let (gs, go) = gpu.snapshot().unwrap();
    let (cs, co) = cpu.snapshot().unwrap();
    assert_eq!(gs, cs, "the same state after two episodes");
    assert_eq!(go, co, "the same outputs");
    assert!(
        cs.rates.iter().any(|&r| r > 0),
        "the principal's choices reached the env"
    );
    assert!(cs.stats.iter().any(|&s| s > 0), "the players did something");
}

fn gpu() -> Picked {
    pick(DeviceChoice::SoftwareGpu).unwrap().0
}

#[test]
fn training_on_the_gpu_path_reads_back_a_constant_amount_per_iteration() {
    let mut reads = Vec::new();
    for horizon in [10, 30] {
        let run = smoke(&[
            &format!("train.sampling_horizon={horizon}"),
            "env.num_envs=4",
            "train.players.hidden=[32]",
            "train.principal.hidden=[16]",
        ]);
        let mut t = Trainer::new(run, gpu()).unwrap();
        let before = t.host_reads();
        let mut rows = Vec::new();
        for _ in 0..2 {
            rows.push(t.iterate(|_| {}).unwrap());
        }
        reads.push(t.host_reads() - before);
        for row in &rows {
            for key in [
                "losses/policy_loss",
                "losses/value_loss",
                "losses/entropy",
                "principal/policy_loss",
            ] {
                assert!(row[key].is_finite(), "{key} = {}", row[key]);
            }
        }
        assert!(rows[1]["losses/approx_kl"] > 0.0, "the policy moved");
        assert_eq!(t.tick(), 2 * horizon as u64);
    }
    assert_eq!(
        reads[0], reads[1],
        "reads do not grow with the rollout's length"
    );
    assert_eq!(
        reads[0], 4,
        "per iteration: the statistics and one batch of metrics"
    );
}

#[test]
fn the_per_step_code_reads_nothing_back() {
    // Every host read of the loop goes through `Trainer::read` or `VecEnv::read_stats`
    // (counted above); the code that runs each step must call none of Burn's readbacks.
    let src = include_str!("../src/trainer.rs");
    let start = src.find("fn collect(").expect("collect");
    let end = start + src[start..].find("\n}\n").expect("end of collect");
    let collect = &src[start..end];
    let env = include_str!("../src/env.rs");
    let gpu_start = env.find("impl VecEnv for GpuEnv").expect("GpuEnv");
    let gpu_env = &env[gpu_start..];
    let gpu_env = &gpu_env[..gpu_env.find("fn read_stats").expect("read_stats")];
    for (name, code) in [
        ("Trainer::collect", collect),
        ("GpuEnv's per-step methods", gpu_env),
    ] {
        for call in [
            "into_data",
            "to_data",
            "into_scalar",
            "try_execute",
            "Transaction",
            "read_stats",
            "snapshot(",
            "argsort",
            "sort(",
            "one_hot",
            "read_state",
            "read_outputs",
            "read(",
        ] {
            assert!(!code.contains(call), "{name} calls `{call}`");
        }
    }
}

/// `--gpus 0,0`: two devices on the first adapter (two lavapipe devices in CI), each
/// stepping half the envs. After K iterations the networks every device uses are the
/// first device's, and equal those of the same run with both halves on one device.
#[test]
fn two_gpu_devices_train_like_one_device_holding_both_halves() {
    let run = || {
        smoke(&[
            "env.num_envs=4",
            "train.sampling_horizon=10",
            "train.principal.minibatches=2",
            "train.players.hidden=[32]",
            "train.principal.hidden=[16]",
        ])
    };
    let (two, why) = pick_gpus("0,0").unwrap();
    assert!(why.starts_with("2 devices (--gpus 0,0)"), "{why}");
    let first = two.0[0].clone();
    let mut a = Trainer::new(run(), two).unwrap();
    let mut b = Trainer::new(run(), Devices(vec![first.clone(), first])).unwrap();
    assert_eq!(a.devices(), 2);
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ra.push(a.iterate(|_| {}).unwrap());
        rb.push(b.iterate(|_| {}).unwrap());
    }
    let close = |x: &[f32], y: &[f32], what: &str| {
        assert_eq!(x.len(), y.len());
        let d = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-5, "{what}: largest difference {d}");
    };
    let players = flat_params(a.players());
    close(&players, &flat_params(b.players()), "players");
    close(
        &flat_params(a.principal()),
        &flat_params(b.principal()),
        "principal",
    );
    assert_eq!(
        players,
        flat_params(&a.players_on(1)),
        "the second device runs the first device's parameters"
    );
    for (x, y) in ra.iter().zip(&rb) {
        for key in ["losses/policy_loss", "losses/approx_kl", "principal/rate_0"] {
            assert!(
                (x[key] - y[key]).abs() < 1e-4,
                "{key}: {} vs {}",
                x[key],
                y[key]
            );
        }
        assert_eq!(x["global_step"], y["global_step"]);
    }
    assert!(ra[2]["losses/approx_kl"] > 0.0, "the policy moved");
}

/// Frame stacking pushes each step's observation into the history before the step: on the
/// GPU the step overwrites the memory an observation tensor reads, and work queued before
/// the step must still see the observation the step acted on.
#[test]
fn a_frame_pushed_before_a_step_keeps_the_observation_the_step_acted_on() {
    let run = smoke(&[]);
    let (ctx, device) = shared_gpu().unwrap();
    let envs = 2;
    let mut env = GpuEnv::new(ctx, device.clone(), run.game.game.clone(), envs).unwrap();
    env.reset().unwrap();
    let l = env.layout();
    let (rows, words) = (envs * l.players, l.obs_stride / 4);
    let ints =
        |t: Tensor<2, Int>| -> Vec<i32> { t.into_data().convert::<i32>().try_into_vec().unwrap() };
    let params = StepParams {
        schedule: TaxSchedule::FULL,
        welfare: run.game.vote(),
    };
    let mut history = Tensor::<3, Int>::zeros([2, rows, words], &device);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let obs = env.obs();
        seen.push(ints(obs.clone()));
        history = push_frame(history, obs);
        let forward = sed_core::types::Action::Forward as i32;
        env.step(
            Tensor::full([rows], forward, &device),
            Tensor::full(
                [envs * l.brackets],
                sed_core::principal::KEEP as i32,
                &device,
            ),
            &params,
        )
        .unwrap();
    }
    assert_ne!(
        seen[1], seen[2],
        "the players moved, so the observations changed"
    );
    let stacked = ints(stack_frames(Some(&history), env.obs()));
    let rows_of = |v: &[i32], r: usize| v[r * words..(r + 1) * words].to_vec();
    let now = ints(env.obs());
    for r in 0..rows {
        let expected = [rows_of(&seen[1], r), rows_of(&seen[2], r), rows_of(&now, r)].concat();
        assert_eq!(
            stacked[r * 3 * words..(r + 1) * 3 * words],
            expected[..],
            "row {r}"
        );
    }
}
