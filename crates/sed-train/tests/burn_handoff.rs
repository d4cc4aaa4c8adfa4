//! The GPU hand-off, proven before the trainer exists: Burn, on the env's own device,
//! reads the observation buffer as a tensor and computes an action tensor that the next env
//! step consumes, with no host copy in between. The CPU engine, driven by the same rule on
//! its own observations, must end in the same state.

use burn::prelude::{Int, Tensor};
use sed_core::config::Config;
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::TaxSchedule;
use sed_gpu::{Buf, GpuContext, GpuEngine};
use sed_train::bridge::{burn_device, flush, tensor_region};

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

    let ctx = GpuContext::new().expect("a wgpu adapter");
    let device = burn_device(&ctx).unwrap();
    let mut gpu = GpuEngine::new(&ctx, game.clone(), envs).unwrap();
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
