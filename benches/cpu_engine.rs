//! Throughput of the batched CPU engine on the default game (observations written).
//!
//! `cargo bench --bench cpu_engine` reports time per batch step; criterion's throughput
//! line gives env-steps per second. Results live in `benches/results/cpu.md`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sed_core::config::Config;
use sed_core::engine::{Engine, StepParams};
use sed_core::principal::TaxSchedule;
use sed_core::rng;

fn bench(c: &mut Criterion) {
    let resolved = Config::default().resolve().expect("default config");
    let mut group = c.benchmark_group("cpu_engine_step");
    for &envs in &[1usize, 64, 1024, 4096] {
        let engine = Engine::new(resolved.game.clone(), envs);
        let (mut state, mut out, mut actions) = (
            engine.new_state(),
            engine.new_outputs(),
            engine.new_actions(),
        );
        engine.reset(&mut state, &mut out).expect("reset");
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
        group.throughput(Throughput::Elements(envs as u64));
        group.bench_with_input(BenchmarkId::from_parameter(envs), &envs, |b, _| {
            b.iter(|| {
                actions.players.copy_from_slice(&table[k % table.len()]);
                k += 1;
                engine
                    .step(&params, &actions, &mut state, &mut out)
                    .expect("step");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
