//! CPU vs GPU: the WGSL engine must be exactly `sed-core`'s game. Same seeds, same random
//! actions, every buffer compared bit for bit after every step, over at least two full
//! episodes (resets, tax settlements and vote boundaries included), for several configs and
//! batch sizes. Runs on whatever adapter wgpu finds (Mesa lavapipe in CI).

mod common;

use std::sync::OnceLock;

use common::{Sim, resolved};
use sed_core::engine::{Outputs, State};
use sed_core::principal::TaxSchedule;
use sed_gpu::{GpuContext, GpuEngine};

fn context() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx =
            GpuContext::new().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
        eprintln!("GPU parity on {}", ctx.describe());
        ctx
    })
}

/// The first differing element of one buffer, as "env E, field[i]: cpu vs gpu".
fn first_diff<T: Copy + std::fmt::Debug>(
    name: &str,
    per_env: usize,
    cpu: &[T],
    gpu: &[T],
    bits: impl Fn(T) -> u32,
) -> Option<String> {
    if cpu.len() != gpu.len() {
        return Some(format!("{name}: length {} vs {}", cpu.len(), gpu.len()));
    }
    let i = cpu
        .iter()
        .zip(gpu)
        .position(|(&a, &b)| bits(a) != bits(b))?;
    Some(format!(
        "env {}, {name}[{}]: cpu {:?} vs gpu {:?}",
        i / per_env.max(1),
        i % per_env.max(1),
        cpu[i],
        gpu[i]
    ))
}

fn compare(
    step: i64,
    l: &sed_core::engine::Layout,
    cs: &State,
    co: &Outputs,
    gs: &State,
    go: &Outputs,
) {
    let n = l.players;
    let u = |x: u32| x;
    let f = |x: f32| x.to_bits();
    let b = |x: u8| x as u32;
    let diffs = [
        first_diff("tick", 1, &cs.tick, &gs.tick, u),
        first_diff("t", 1, &cs.t, &gs.t, u),
        first_diff("pose", n, &cs.pose, &gs.pose, u),
        first_diff("apples", l.apple_words, &cs.apples, &gs.apples, u),
        first_diff(
            "apples_prev",
            l.apple_words,
            &cs.apples_prev,
            &gs.apples_prev,
            u,
        ),
        first_diff("period_income", n, &cs.period_income, &gs.period_income, u),
        first_diff("period_net", n, &cs.period_net, &gs.period_net, |x: i32| {
            x as u32
        }),
        first_diff("round_apples", n, &cs.round_apples, &gs.round_apples, u),
        first_diff("round_net", n, &cs.round_net, &gs.round_net, |x: i32| {
            x as u32
        }),
        first_diff("rates", l.brackets, &cs.rates, &gs.rates, u),
        first_diff("stats", l.stats, &cs.stats, &gs.stats, u),
        first_diff("obs", n * l.obs_stride, &co.obs, &go.obs, b),
        first_diff(
            "final_obs",
            n * l.obs_stride,
            &co.final_obs,
            &go.final_obs,
            b,
        ),
        first_diff(
            "principal_map",
            l.map_stride,
            &co.principal_map,
            &go.principal_map,
            b,
        ),
        first_diff(
            "principal_features",
            l.principal_features,
            &co.principal_features,
            &go.principal_features,
            f,
        ),
        first_diff("reward", n, &co.reward, &go.reward, f),
        first_diff(
            "principal_reward",
            1,
            &co.principal_reward,
            &go.principal_reward,
            f,
        ),
        first_diff("terminated", 1, &co.terminated, &go.terminated, u),
        first_diff("truncated", 1, &co.truncated, &go.truncated, u),
        first_diff("flags", 1, &co.flags, &go.flags, u),
    ];
    if let Some(d) = diffs.into_iter().flatten().next() {
        panic!("CPU and GPU differ after step {step}: {d}");
    }
}

/// Runs both engines for `steps` steps of random actions and compares everything.
fn parity(file: &str, overrides: &[&str], envs: usize, steps: u32, schedule: TaxSchedule) {
    let r = resolved(file, overrides);
    let mut cpu = Sim::new(r, envs);
    cpu.params.schedule = schedule;
    let gpu = GpuEngine::new(context(), cpu.resolved.game.clone(), envs).expect("GPU engine");
    gpu.reset().unwrap();
    let l = cpu.engine.layout();
    compare(
        -1,
        &l,
        &cpu.state,
        &cpu.out,
        &gpu.read_state().unwrap(),
        &gpu.read_outputs().unwrap(),
    );
    let mut rng = 0x5eed_u32 ^ envs as u32;
    let mut episode_ends = 0;
    for step in 0..steps {
        for a in cpu.actions.players.iter_mut() {
            rng = sed_core::rng::mix(rng.wrapping_add(0x9e37_79b9));
            *a = rng % 7;
        }
        for a in cpu.actions.principal.iter_mut() {
            rng = sed_core::rng::mix(rng.wrapping_add(0x9e37_79b9));
            *a = rng % 12;
        }
        gpu.write_actions(&cpu.actions);
        cpu.step();
        gpu.step(&cpu.params).unwrap();
        compare(
            step as i64,
            &l,
            &cpu.state,
            &cpu.out,
            &gpu.read_state().unwrap(),
            &gpu.read_outputs().unwrap(),
        );
        episode_ends += (cpu.out.truncated[0] == 1) as u32;
    }
    assert!(
        episode_ends >= 2,
        "the run must cover two episode ends, saw {episode_ends}"
    );
}

#[test]
fn smoke_paper_form_with_tax() {
    parity("smoke.toml", &[], 5, 90, TaxSchedule::FULL);
}

#[test]
fn smoke_released_code_form_with_multiplier() {
    let mut s = TaxSchedule::FULL;
    s.multiplier_tenths = 4;
    s.rate_cap_tenths = 6;
    parity(
        "smoke.toml",
        &[
            "reward.form=\"released_code\"",
            "tax.max_rate_change=0.3",
            "seed=99",
        ],
        33,
        85,
        s,
    );
}

#[test]
fn smoke_tax_off_rates_reset_and_fixed_egalitarian_objective() {
    parity(
        "smoke.toml",
        &[
            "tax.reset_rates_each_episode=true",
            "vote.social_choice={ kind = \"fixed\", welfare = { kind = \"egalitarian\" } }",
            "seed=3",
        ],
        64,
        81,
        TaxSchedule::OFF,
    );
}

#[test]
fn smoke_post_tax_welfare_with_the_mean_vote() {
    parity(
        "smoke.toml",
        &["vote.welfare_of=\"post_tax_income\"", "seed=11"],
        9,
        90,
        TaxSchedule::FULL,
    );
}

#[test]
fn default_game_two_full_episodes() {
    parity("apple_picking.toml", &[], 3, 2000, TaxSchedule::FULL);
}

#[test]
fn default_game_larger_batch() {
    // Enough envs for several workgroups per kernel, and a round that spans episodes.
    parity(
        "apple_picking.toml",
        &["vote.round_periods=3", "env.episode_len=100", "seed=5"],
        300,
        210,
        TaxSchedule::FULL,
    );
}

#[test]
fn non_default_map_with_more_players() {
    parity(
        "apple_picking.toml",
        &[
            "env.map_file=\"maps/tiny.txt\"",
            "env.players=5",
            "env.episode_len=60",
            "tax.period=20",
            "vote.round_periods=2",
        ],
        17,
        130,
        TaxSchedule::FULL,
    );
}

#[test]
fn nonlinear_welfare_is_refused_on_the_gpu() {
    let r = resolved(
        "smoke.toml",
        &["vote.social_choice={ kind = \"fixed\", welfare = { kind = \"nash\" } }"],
    );
    let gpu = GpuEngine::new(context(), r.game.clone(), 2).unwrap();
    let params = sed_core::engine::StepParams {
        schedule: TaxSchedule::FULL,
        welfare: r.vote(),
    };
    let err = gpu.step(&params).unwrap_err().to_string();
    assert!(err.contains("linear welfare"), "{err}");
}

#[test]
fn sixty_five_thousand_envs_use_two_dimensional_dispatch() {
    // 65,536 envs x 108 map words = 110,592 workgroups for the map kernels: past the
    // 65,535-per-dimension limit, so they spill into a second dimension.
    let envs = 65_536;
    let r = resolved("apple_picking.toml", &[]);
    let mut cpu = Sim::new(r, envs);
    let gpu = GpuEngine::new(context(), cpu.resolved.game.clone(), envs).expect("GPU engine");
    gpu.reset().unwrap();
    let l = cpu.engine.layout();
    for step in 0..2u32 {
        for (i, a) in cpu.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(step ^ (i as u32).wrapping_mul(0x2545_f491)) % 7;
        }
        gpu.write_actions(&cpu.actions);
        cpu.step();
        gpu.step(&cpu.params).unwrap();
    }
    compare(
        1,
        &l,
        &cpu.state,
        &cpu.out,
        &gpu.read_state().unwrap(),
        &gpu.read_outputs().unwrap(),
    );
}

#[test]
fn a_batch_beyond_the_device_limits_is_a_clear_error() {
    let ctx = context();
    let r = resolved("apple_picking.toml", &[]);
    let per_env = 7 * sed_core::obs::OBS_STRIDE as u64;
    let limit = ctx
        .device
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.device.limits().max_buffer_size);
    let envs = (limit / per_env + 1) as usize;
    match GpuEngine::new(ctx, r.game.clone(), envs) {
        Err(sed_gpu::GpuError::Limit {
            limit,
            needed,
            available,
        }) => {
            assert!(limit.starts_with("max_"), "{limit}");
            assert!(needed > available);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("{envs} envs fit a device whose limit is {limit} bytes"),
    }
}

#[test]
fn external_regions_are_checked_before_binding() {
    let r = resolved("smoke.toml", &[]);
    let mut gpu = GpuEngine::new(context(), r.game.clone(), 4).unwrap();
    let own = gpu.region(sed_gpu::Buf::Obs).clone();
    let small = sed_gpu::Region {
        size: own.size - 4,
        ..own.clone()
    };
    assert!(matches!(
        gpu.bind_external(sed_gpu::Buf::Obs, small),
        Err(sed_gpu::GpuError::Region { .. })
    ));
    let buffer = context().device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: own.size + 1024,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let shifted = sed_gpu::Region {
        buffer,
        offset: 4,
        size: own.size,
    };
    assert!(matches!(
        gpu.bind_external(sed_gpu::Buf::Obs, shifted),
        Err(sed_gpu::GpuError::Misaligned { .. })
    ));
}

#[test]
fn sampling_noise_matches_the_cpu_bit_for_bit() {
    let r = resolved("smoke.toml", &["seed=21"]);
    let gpu = GpuEngine::new(context(), r.game.clone(), 2).unwrap();
    let (rows, cols) = (70u32, 7u32);
    let buffer = context().device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4 * (rows * cols) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let region = sed_gpu::Region {
        buffer,
        offset: 0,
        size: 4 * (rows * cols) as u64,
    };
    let target = gpu.noise_target(region.clone(), rows, cols).unwrap();
    for (stream, tick) in [
        (sed_core::rng::stream::PLAYER_ACTION, 0),
        (sed_core::rng::stream::PRINCIPAL_CHOICE, 12_345),
    ] {
        gpu.fill_noise(&target, stream, tick);
        let got: Vec<f32> = gpu.read_region(&region).unwrap();
        for (i, &u) in got.iter().enumerate() {
            let (row, col) = (i as u32 / cols, i as u32 % cols);
            let want = sed_core::rng::policy_uniform(r.game.run_key, stream, row, tick, col);
            assert_eq!(u.to_bits(), want.to_bits(), "row {row}, col {col}");
            assert!(u > 0.0 && u < 1.0);
        }
    }
}
