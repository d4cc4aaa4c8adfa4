//! Property tests: invariants of the rules over thousands of random cases.

mod common;

use common::{Sim, resolved};
use proptest::prelude::*;
use sed_core::map::Tile;
use sed_core::reward::exact_f32;
use sed_core::tax::{self, Bracket};
use sed_core::types::{Action, Pose};

/// Random rollouts of the smoke game: `(seed, steps, actions)`.
fn rollout_case() -> impl Strategy<Value = (u64, Vec<u32>)> {
    (
        0..i64::MAX as u64,
        prop::collection::vec(0..Action::COUNT, 4 * 3 * 30),
    )
}

fn run(seed: u64, acts: &[u32], envs: usize, mut check: impl FnMut(&Sim)) -> Sim {
    let r = resolved("smoke.toml", &[&format!("seed={seed}")]);
    let mut sim = Sim::new(r, envs);
    check(&sim);
    for chunk in acts.chunks_exact(envs * 3) {
        sim.actions.players.copy_from_slice(chunk);
        sim.actions
            .principal
            .iter_mut()
            .zip(chunk)
            .for_each(|(p, a)| *p = a % 12);
        sim.step();
        check(&sim);
    }
    sim
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn players_never_share_a_cell_or_stand_on_walls((seed, acts) in rollout_case()) {
        run(seed, &acts, 4, |sim| {
            let map = &sim.resolved.game.map;
            let n = sim.players();
            for env in 0..4 {
                let cells: Vec<u32> = (0..n).map(|i| Pose(sim.state.pose[env * n + i]).cell()).collect();
                for (i, &c) in cells.iter().enumerate() {
                    assert!((c as usize) < map.cells());
                    assert_ne!(map.tiles[c as usize], Tile::Wall, "player {i} on a wall");
                    assert!(!cells[..i].contains(&c), "two players on cell {c}");
                }
            }
        });
    }

    #[test]
    fn the_seed_decides_the_trajectory((seed, acts) in rollout_case()) {
        // Envs 0..4 of a batch of 4 and of a batch of 70 (two blocks) step alike; another
        // seed gives another world.
        let a = run(seed, &acts, 4, |_| {});
        let n = a.players();
        let mut b = Sim::new(resolved("smoke.toml", &[&format!("seed={seed}")]), 70);
        for chunk in acts.chunks_exact(4 * n) {
            b.actions.players[..4 * n].copy_from_slice(chunk);
            for (p, x) in b.actions.principal.iter_mut().zip(chunk) {
                *p = x % 12;
            }
            b.step();
        }
        prop_assert_eq!(&a.state.pose[..], &b.state.pose[..4 * n]);
        prop_assert_eq!(&a.state.apples[..], &b.state.apples[..a.state.apples.len()]);
        prop_assert_eq!(&a.out.obs[..], &b.out.obs[..a.out.obs.len()]);
        let c = run(seed ^ 1, &acts, 4, |_| {});
        prop_assert_ne!(&a.state, &c.state);
    }

    #[test]
    fn net_transfers_sum_to_zero(
        incomes in prop::collection::vec(0u32..200, 1..32),
        rates in prop::collection::vec(0u32..=10, 3),
        multiplier in 1u32..=10,
    ) {
        let brackets = [Bracket { lo: 1, hi: 10 }, Bracket { lo: 11, hi: 20 }, Bracket { lo: 21, hi: 10_000 }];
        let mut net = vec![0; incomes.len()];
        let revenue = tax::settle(&incomes, &brackets, &rates, multiplier, &mut net);
        prop_assert_eq!(net.iter().sum::<i32>(), 0);
        // Each net transfer equals m·(T(x) − R/n) in units of 1/(100 n).
        let n = incomes.len() as f64;
        for (x, v) in incomes.iter().zip(&net) {
            let t = tax::tax_tenths(*x, &brackets, &rates) as f64 / 10.0;
            let expected = multiplier as f64 / 10.0 * (t - revenue as f64 / 10.0 / n);
            prop_assert!((*v as f64 / (100.0 * n) - expected).abs() < 1e-9);
        }
    }

    #[test]
    fn tax_is_monotone_and_never_exceeds_income(x in 0u32..500, rates in prop::collection::vec(0u32..=10, 3)) {
        let brackets = [Bracket { lo: 1, hi: 10 }, Bracket { lo: 11, hi: 20 }, Bracket { lo: 21, hi: 10_000 }];
        let t0 = tax::tax_tenths(x, &brackets, &rates);
        let t1 = tax::tax_tenths(x + 1, &brackets, &rates);
        prop_assert!(t0 <= t1);
        prop_assert!(t0 <= 10 * x);
    }

    #[test]
    fn exact_f32_is_round_to_nearest_even(v in any::<i64>(), shift in 0u32..64) {
        // Every magnitude, not only the large ones a uniform i64 nearly always is.
        let v = v >> shift;
        prop_assert_eq!(exact_f32(v).to_bits(), (v as f32).to_bits());
    }
}

/// Different env indices draw independent streams: their trajectories differ, and the
/// regrowth draws of two envs are uncorrelated.
#[test]
fn different_envs_are_independent() {
    let r = resolved("smoke.toml", &[]);
    let mut sim = Sim::new(r, 64);
    for _ in 0..40 {
        sim.step();
    }
    let n = sim.players();
    let first = &sim.state.pose[..n];
    let same = (1..64)
        .filter(|&e| &sim.state.pose[e * n..(e + 1) * n] == first)
        .count();
    assert!(same < 2, "{same} envs replayed env 0's spawns");

    // Correlation of the uniform draws of env 0 and env 1 over many ticks and indices.
    use sed_core::rng::{Stream, run_key, stream, tick_key};
    let key = run_key(7);
    let (mut sxy, mut sx, mut sy, mut sxx, mut syy, mut k) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for tick in 0..2000 {
        let a = Stream::new(tick_key(key, 0, tick), stream::REGROW);
        let b = Stream::new(tick_key(key, 1, tick), stream::REGROW);
        for i in 0..16 {
            let (x, y) = (
                a.draw(i) as f64 / 4294967296.0,
                b.draw(i) as f64 / 4294967296.0,
            );
            sxy += x * y;
            sx += x;
            sy += y;
            sxx += x * x;
            syy += y * y;
            k += 1.0;
        }
    }
    let cov = sxy / k - sx / k * (sy / k);
    let corr = cov / ((sxx / k - (sx / k).powi(2)) * (syy / k - (sy / k).powi(2))).sqrt();
    assert!(corr.abs() < 0.02, "correlation {corr}");
    assert!((sx / k - 0.5).abs() < 0.01, "mean {}", sx / k);
}

/// The result does not depend on how many threads step the batch.
#[test]
fn thread_count_does_not_change_results() {
    let go = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut sim = Sim::new(resolved("smoke.toml", &[]), 100);
                for step in 0..90u32 {
                    for (i, a) in sim.actions.players.iter_mut().enumerate() {
                        *a = sed_core::rng::mix(step * 1000 + i as u32) % 7;
                    }
                    sim.step();
                }
                (sim.state, sim.out)
            })
    };
    assert_eq!(go(1), go(3));
}
