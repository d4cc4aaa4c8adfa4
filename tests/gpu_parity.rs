//! CPU vs GPU: the WGSL engine must be exactly `sed-core`'s game. Same seeds, same random
//! actions, every buffer compared bit for bit after every step, over at least two full
//! episodes (resets, tax settlements and vote boundaries included), for several configs and
//! batch sizes. Runs on whatever adapter wgpu finds (Mesa lavapipe in CI).

mod common;

use std::sync::OnceLock;

use common::{Sim, resolved};
use sed_core::engine::{Outputs, State};
use sed_core::principal::TaxSchedule;
use sed_core::reward::exact_f32_bits;
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

/// Runs both engines for `steps` steps of random actions and compares everything. Returns
/// the largest reward numerator magnitude the CPU produced.
/// [`compare`] of the CPU simulation against the GPU engine's buffers, read back now.
fn compare_with(gpu: &GpuEngine, step: i64, l: &sed_core::engine::Layout, cpu: &Sim) {
    compare(
        step,
        l,
        &cpu.state,
        &cpu.out,
        &gpu.read_state().unwrap(),
        &gpu.read_outputs().unwrap(),
    );
}

fn parity(file: &str, overrides: &[&str], envs: usize, steps: u32, schedule: TaxSchedule) -> f64 {
    let r = resolved(file, overrides);
    let mut cpu = Sim::new(r, envs);
    cpu.params.schedule = schedule;
    let gpu = GpuEngine::new(context(), cpu.resolved.game.clone(), envs).expect("GPU engine");
    gpu.reset().unwrap();
    let l = cpu.engine.layout();
    compare_with(&gpu, -1, &l, &cpu);
    let mut rng = 0x5eed_u32 ^ envs as u32;
    let mut episode_ends = 0;
    let game = &cpu.resolved.game;
    let denominator = game.reward_form.denominator(game.players);
    let mut largest = 0.0f64;
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
        compare_with(&gpu, step as i64, &l, &cpu);
        episode_ends += (cpu.out.truncated[0] == 1) as u32;
        for &r in &cpu.out.reward {
            largest = largest.max((r as f64 * denominator).abs());
        }
    }
    assert!(
        episode_ends >= 2,
        "the run must cover two episode ends, saw {episode_ends}"
    );
    largest
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
fn a_thousand_players_in_one_env_with_numerators_beyond_32_bits() {
    let map = common::crowd_map_override();
    let mut largest = Vec::new();
    for form in ["paper", "released_code"] {
        let form = format!("reward.form=\"{form}\"");
        largest.push(parity(
            "apple_picking.toml",
            &[
                &map,
                &form,
                "env.players=1024",
                "env.episode_len=6",
                "tax.period=3",
                "vote.welfare_of=\"post_tax_income\"",
            ],
            2,
            13,
            TaxSchedule::FULL,
        ));
    }
    // At 1,024 players the released code's social term alone (in units of 1/(256² · 102400)
    // apple) needs more than 32 bits.
    assert!(
        largest[1] > u32::MAX as f64,
        "largest numerators {largest:?}"
    );
}

#[test]
fn two_thousand_players_on_a_tiled_crowd_map() {
    // 2 × 2 copies of the crowd map (78 × 78 cells, 6,264 apple cells, 4,864 spawn cells),
    // with fast regrowth so that apples are eaten, regrow and grow under players.
    let map = common::crowd_map_override();
    parity(
        "apple_picking.toml",
        &[
            &map,
            "env.map_tiles=[2, 2]",
            "env.players=2000",
            "env.episode_len=8",
            "tax.period=4",
            "env.regrowth_probabilities=[0.2, 0.3, 0.4, 0.5]",
        ],
        2,
        17,
        TaxSchedule::FULL,
    );
}

/// Cases for the 64-bit WGSL helpers: `(a, b, k)` with `a · k` inside `i64`.
fn int64_cases() -> Vec<(i64, i64, i32)> {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut cases = vec![
        (0, 0, 0),
        (1, -1, -1),
        (-1, 1, i32::MIN + 1),
        (i64::MAX, i64::MIN, 1),
        (i64::MIN + 1, i64::MAX, -1),
        ((1 << 24) + 1, (1 << 32) - 1, 1 << 16),
        (1 << 32, -(1 << 32), 65_535),
        ((1 << 40) + (1 << 16), (1 << 40) + (3 << 15), -7),
    ];
    for _ in 0..4096 {
        let (x, y, z) = (next(), next(), next());
        let k = (z as i32) >> (z >> 59); // 0 to 31 bits
        let room = 62 - (32 - k.unsigned_abs().leading_zeros());
        let a = (x as i64) >> (63 - (y % (room as u64 + 1)) as u32);
        let b = (y as i64) >> (x >> 58);
        cases.push((a, b, k));
    }
    cases
}

#[test]
fn the_wgsl_64_bit_arithmetic_and_rounding_match_rust() {
    use wgpu::util::DeviceExt;
    let cases = int64_cases();
    let words = |v: i64| [v as u32, (v >> 32) as u32];
    let mut input = Vec::new();
    for &(a, b, k) in &cases {
        input.extend(words(a));
        input.extend(words(b));
        input.extend([k as u32, 0, 0, 0]);
    }
    let source = format!(
        "{}\n{}",
        sed_gpu::kernels::INT64,
        r"
@group(0) @binding(0) var<storage, read> input: array<u32>;
@group(0) @binding(1) var<storage, read_write> output: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&input) / 8u) {
        return;
    }
    let a = vec2<u32>(input[8u * i], input[8u * i + 1u]);
    let b = vec2<u32>(input[8u * i + 2u], input[8u * i + 3u]);
    let k = bitcast<i32>(input[8u * i + 4u]);
    let sum = i64_add(a, b);
    let diff = i64_sub(a, b);
    let product = i64_mul(a, k);
    let wide = u32_mul_wide(a.x, b.x);
    let out = 10u * i;
    output[out] = bitcast<u32>(exact_f32(a));
    output[out + 1u] = bitcast<u32>(exact_f32(b));
    output[out + 2u] = sum.x;
    output[out + 3u] = sum.y;
    output[out + 4u] = diff.x;
    output[out + 5u] = diff.y;
    output[out + 6u] = product.x;
    output[out + 7u] = product.y;
    output[out + 8u] = wide.x;
    output[out + 9u] = wide.y;
}
"
    );
    let ctx = context();
    let device = &ctx.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("int64 test"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("int64 test"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bytes = |w: &[u32]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("int64 input"),
        contents: &bytes(&input),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let size = (cases.len() * 10 * 4) as u64;
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("int64 output"),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("int64 staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("int64 test"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: output.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups((cases.len() as u32).div_ceil(64), 1, 1);
    }
    encoder.copy_buffer_to_buffer(&output, 0, &staging, 0, size);
    ctx.queue.submit([encoder.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let got: Vec<u32> = staging
        .slice(..)
        .get_mapped_range()
        .expect("mapped")
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for (i, &(a, b, k)) in cases.iter().enumerate() {
        let product = a.checked_mul(k as i64).expect("cases stay inside i64");
        let wide = (a as u32 as u64) * (b as u32 as u64);
        let expected = [
            [exact_f32_bits(a), exact_f32_bits(b)],
            words(a.wrapping_add(b)),
            words(a.wrapping_sub(b)),
            words(product),
            words(wide as i64),
        ]
        .concat();
        assert_eq!(
            got[10 * i..10 * i + 10],
            expected[..],
            "a = {a}, b = {b}, k = {k}: [f32(a), f32(b), a+b, a-b, a*k, lo(a)*lo(b)]"
        );
        assert_eq!(exact_f32_bits(a), (a as f32).to_bits());
    }
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
    compare_with(&gpu, 1, &l, &cpu);
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

#[test]
fn a_timed_step_times_each_kernel_and_steps_like_any_other() {
    let mut cpu = Sim::new(resolved("smoke.toml", &[]), 4);
    let gpu = GpuEngine::new(context(), cpu.resolved.game.clone(), 4).expect("GPU engine");
    gpu.reset().unwrap();
    let l = cpu.engine.layout();
    let supported = context()
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY);
    for step in 0..3u32 {
        for (i, a) in cpu.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(step << 16 ^ i as u32) % 7;
        }
        gpu.write_actions(&cpu.actions);
        cpu.step();
        match gpu.step_timed(&cpu.params).unwrap() {
            Some(times) => {
                assert!(supported);
                let names: Vec<&str> = times.iter().map(|t| t.0).collect();
                let expected: Vec<&str> = sed_gpu::kernels::STEP.iter().map(|k| k.name).collect();
                assert_eq!(names, expected);
                assert!(
                    times.iter().all(|t| t.1.is_finite() && t.1 >= 0.0),
                    "{times:?}"
                );
                assert!(times.iter().map(|t| t.1).sum::<f64>() > 0.0, "{times:?}");
            }
            None => {
                // Without timestamp queries the call takes no step: take it plainly.
                assert!(!supported);
                gpu.step(&cpu.params).unwrap();
            }
        }
        compare_with(&gpu, step as i64, &l, &cpu);
    }
    eprintln!("timestamp queries on {}: {supported}", context().describe());
}
