//! Throughput of the batched CPU engine (observations written): on the default game over
//! batch sizes (`cpu_engine_step`), and over players per env on the default map tiled
//! 15 × 11 times (`cpu_engine_players`, 16 envs, throughput in agent-steps).
//!
//! `cargo bench --bench cpu_engine` reports time per batch step; criterion's throughput
//! line gives env-steps (agent-steps) per second. Results live in `benches/results/cpu.md`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sed_core::config::{Config, Resolved};
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::TaxSchedule;
use sed_core::rng;

/// Steps `envs` envs of `resolved` with random actions under `id`, counting `per_step`
/// elements per batch step.
fn step_batch(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    resolved: &Resolved,
    envs: usize,
    id: BenchmarkId,
    per_step: u64,
) {
    let engine = Engine::new(resolved.game.clone(), envs);
    let (mut state, mut out, mut actions) = engine.start().expect("start");
    let params = StepParams {
        schedule: TaxSchedule::FULL,
        welfare: resolved.vote(),
    };
    // A fixed table of random actions, cycled, so action generation is not timed.
    let table: Vec<Vec<u32>> = (0..64u32)
        .map(|k| {
            (0..actions.players.len() as u32)
                .map(|i| rng::mix(k << 20 ^ i) % 7)
                .collect()
        })
        .collect();
    let mut k = 0;
    group.throughput(Throughput::Elements(per_step));
    group.bench_function(id, |b| {
        b.iter(|| {
            actions.players.copy_from_slice(&table[k % table.len()]);
            k += 1;
            engine
                .step(&params, &actions, &mut state, &mut out)
                .expect("step");
        })
    });
}

fn bench(c: &mut Criterion) {
    let resolved = Config::default().resolve().expect("default config");
    let mut group = c.benchmark_group("cpu_engine_step");
    for &envs in &[1usize, 64, 1024, 4096] {
        step_batch(
            &mut group,
            &resolved,
            envs,
            BenchmarkId::from_parameter(envs),
            envs as u64,
        );
    }
    group.finish();
}

/// Cost against players per env on one large map: linear in players means constant
/// agent-steps per second.
fn players(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu_engine_players");
    group.sample_size(10);
    const ENVS: usize = 16;
    for &n in &[7u32, 64, 512, 1024, 4096] {
        let mut config = Config::default();
        config.env.map_tiles = [15, 11];
        config.env.players = n;
        let resolved = config.resolve().expect("tiled config");
        step_batch(
            &mut group,
            &resolved,
            ENVS,
            BenchmarkId::from_parameter(n),
            ENVS as u64 * u64::from(n),
        );
    }
    group.finish();
}

criterion_group!(benches, bench, players);
criterion_main!(benches);
