//! SPEC §6: the conformance facts every engine must reproduce, one test each.

mod common;

use std::collections::BTreeMap;

use common::{Sim, resolved};
use sed_core::engine::flags;
use sed_core::map::Map;
use sed_core::obs::{self, bits};
use sed_core::types::{Action, facing};

fn default_map() -> Map {
    resolved("apple_picking.toml", &[]).game.map
}

#[test]
fn map_counts_neighbours_and_patches() {
    let map = default_map();
    assert_eq!((map.rows, map.cols), (18, 24));
    assert_eq!(map.apples(), 64);
    assert_eq!(map.spawn_cells.len(), 60);
    assert_eq!(map.inside_spawn_cells.len(), 2);
    let mut counts = BTreeMap::new();
    for a in 0..map.apples() {
        *counts.entry(map.neighbours_of(a).len()).or_insert(0) += 1;
    }
    assert_eq!(
        counts,
        BTreeMap::from([(3, 4), (4, 20), (5, 4), (7, 32), (12, 4)])
    );
    let mut sizes: Vec<usize> = map.patches().iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![6, 6, 13, 13, 13, 13]);
}

/// Each apple cell empty at the end of steps t−2 and t−1 regrows at step t with frequency
/// p[min(n, 3)], n its live neighbours at the end of step t−2 (Melting Pot's delayed
/// picture); a cell eaten at step t−1 never regrows at step t. Random apple patterns for
/// t−2, with some of their apples gone by t−1, players parked away, one step, many envs.
#[test]
fn regrowth_frequency_matches_probabilities_on_the_delayed_picture() {
    let envs = 4096;
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    let p = [0.0, 0.0025, 0.005, 0.025];
    let map = sim.resolved.game.map.clone();
    let mut trials = [0u64; 4];
    let mut regrown = [0u64; 4];
    let mut eaten_last_step = 0u64;
    let mut pattern = 0x1234_5678u32;
    for _round in 0..12 {
        sim.park_all();
        let mut two_ago = vec![vec![false; 64]; envs];
        let mut one_ago = vec![vec![false; 64]; envs];
        for env in 0..envs {
            for a in 0..64 {
                pattern = sed_core::rng::mix(pattern);
                two_ago[env][a] = pattern % 10 < 3;
                // Half of those apples were eaten during step t−1.
                one_ago[env][a] = two_ago[env][a] && (pattern >> 8).is_multiple_of(2);
                sim.set_apple_prev(env, a as u32, two_ago[env][a]);
                sim.set_apple(env, a as u32, one_ago[env][a]);
            }
        }
        sim.step();
        for env in 0..envs {
            for a in 0..64usize {
                let live_now = sim.apple_live(env, a as u32);
                if one_ago[env][a] {
                    continue;
                }
                if two_ago[env][a] {
                    eaten_last_step += 1;
                    assert!(!live_now, "env {env}: apple {a}, eaten at t−1, regrew at t");
                    continue;
                }
                let n = map
                    .neighbours_of(a)
                    .iter()
                    .filter(|&&b| two_ago[env][b as usize])
                    .count();
                trials[n.min(3)] += 1;
                regrown[n.min(3)] += live_now as u64;
            }
        }
    }
    assert!(eaten_last_step > 10_000, "the t−1 case was exercised");
    assert_eq!(
        regrown[0], 0,
        "a cell without live neighbours two steps ago never regrows"
    );
    for k in 1..4 {
        let expected = trials[k] as f64 * p[k];
        let sigma = (trials[k] as f64 * p[k] * (1.0 - p[k])).sqrt();
        assert!(
            (regrown[k] as f64 - expected).abs() < 5.0 * sigma,
            "n={k}: {} regrowths in {} trials, expected {expected:.0} ± {sigma:.0}",
            regrown[k],
            trials[k]
        );
    }
}

/// The neighbour count is the one of two steps ago, not of the last step: a cell whose
/// neighbours were all live at the end of t−2 and all eaten during t−1 still regrows at t
/// with p[3] (with the count taken after eating it would never regrow).
#[test]
fn regrowth_counts_neighbours_two_steps_back() {
    let envs = 4096;
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    let map = sim.resolved.game.map.clone();
    sim.park_all();
    // A cell with 12 neighbours: everything live two steps ago except it, nothing now.
    let a = (0..64).find(|&a| map.neighbours_of(a).len() == 12).unwrap() as u32;
    for env in 0..envs {
        for b in 0..64 {
            sim.set_apple_prev(env, b, b != a);
            sim.set_apple(env, b, false);
        }
    }
    sim.step();
    let regrown = (0..envs).filter(|&e| sim.apple_live(e, a)).count() as f64;
    let (expected, sigma) = (envs as f64 * 0.025, (envs as f64 * 0.025 * 0.975).sqrt());
    assert!(
        (regrown - expected).abs() < 5.0 * sigma,
        "{regrown} regrowths in {envs} envs, expected {expected:.0} ± {sigma:.0}"
    );
}

/// A cell regrows when its draw is strictly below the threshold `p · 2³²` (SPEC §2, the
/// counter RNG): probabilities set so that the threshold equals the cell's draw this step,
/// then one more, show the edge.
#[test]
fn regrowth_needs_a_draw_strictly_below_the_threshold() {
    use sed_core::rng::{self, Stream, stream};
    let base = resolved("apple_picking.toml", &[]);
    let map = base.game.map.clone();
    let a = 0u32;
    let key = rng::tick_key(base.game.run_key, 0, 0);
    let draw = Stream::new(key, stream::REGROW).draw(a);
    for (threshold, regrows) in [(draw, false), (draw + 1, true)] {
        let p = f64::from(threshold) / 4_294_967_296.0;
        let mut sim = Sim::new(
            resolved(
                "apple_picking.toml",
                &[&format!("env.regrowth_probabilities=[{p:e}]")],
            ),
            1,
        );
        assert_eq!(sim.resolved.game.regrowth_thresholds, [threshold]);
        sim.park_all();
        for b in 0..map.apples() as u32 {
            sim.set_apple_prev(0, b, b != a);
            sim.set_apple(0, b, b != a);
        }
        sim.step();
        assert_eq!(
            sim.apple_live(0, a),
            regrows,
            "threshold {threshold}, draw {draw}"
        );
    }
}

#[test]
fn players_zero_and_one_get_the_two_q_cells_in_a_random_order() {
    let envs = 2000;
    let sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    let map = sim.resolved.game.map.clone();
    let q = &map.inside_spawn_cells;
    let cell = |env: usize, i: usize| sim.pose(env, i).0 * map.cols + sim.pose(env, i).1;
    let mut first = 0;
    for env in 0..envs {
        let (c0, c1) = (cell(env, 0), cell(env, 1));
        assert!(
            (c0, c1) == (q[0], q[1]) || (c0, c1) == (q[1], q[0]),
            "env {env}"
        );
        first += (c0 == q[0]) as u32;
    }
    let share = first as f64 / envs as f64;
    assert!(
        (share - 0.5).abs() < 0.05,
        "player 0 on the first Q cell {share:.3}"
    );
}

#[test]
fn corner_patch_eaten_empty_never_regrows() {
    let envs = 64;
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    let map = sim.resolved.game.map.clone();
    let corner = map.patches().into_iter().find(|p| p.len() == 6).unwrap();
    sim.park_all();
    for env in 0..envs {
        for &a in &corner {
            sim.set_apple(env, a, false);
        }
    }
    for _ in 0..999 {
        sim.step();
        for env in 0..envs {
            assert!(corner.iter().all(|&a| !sim.apple_live(env, a)));
        }
    }
    // The other patches do regrow meanwhile (the test would pass vacuously otherwise).
    let others: u32 = (0..envs)
        .map(|e| (0..64).filter(|&a| sim.apple_live(e, a)).count() as u32)
        .sum();
    assert!(others > 0);
}

#[test]
fn window_facing_north_covers_the_spec_rectangle_and_turns() {
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), 1);
    let map = sim.resolved.game.map.clone();
    sim.park_all();
    let (r, c) = (12u32, 8u32);
    sim.place(0, 0, r, c, facing::NORTH);
    sim.step();
    let window = |sim: &Sim| sim.out.obs[..obs::OBS_STRIDE].to_vec();
    // SPEC §3 by hand: (forward, right) as map steps for facings N, E, S, W.
    let axes: [((i32, i32), (i32, i32)); 4] = [
        ((-1, 0), (0, 1)),
        ((0, 1), (1, 0)),
        ((1, 0), (0, -1)),
        ((0, -1), (-1, 0)),
    ];
    let expect_static = |wr: usize, wc: usize, f: u32| -> u8 {
        let ((fr, fc), (rr, rc)) = axes[f as usize];
        let (ahead, right) = (9 - wr as i32, wc as i32 - 5);
        let (dr, dc) = (ahead * fr + right * rr, ahead * fc + right * rc);
        match map.tile(r as i32 + dr, c as i32 + dc) {
            None => bits::OUT_OF_BOUNDS,
            Some(sed_core::map::Tile::Wall) => bits::WALL,
            Some(sed_core::map::Tile::Apple) => bits::APPLE,
            _ => 0,
        }
    };
    // Facing north: window row wr is map row r − 9 + wr, column wc is map column c − 5 + wc.
    for wr in 0..11 {
        for wc in 0..11 {
            assert_eq!(
                obs::window_offset(facing::NORTH, wr, wc),
                (wr as i32 - 9, wc as i32 - 5)
            );
        }
    }
    let check = |sim: &Sim, f: u32| {
        let win = window(sim);
        for wr in 0..11 {
            for wc in 0..11 {
                let got = win[wr * 11 + wc] & (bits::WALL | bits::APPLE | bits::OUT_OF_BOUNDS);
                assert_eq!(
                    got,
                    expect_static(wr, wc, f),
                    "facing {f}, window ({wr},{wc})"
                );
            }
        }
        assert_ne!(win[obs::SELF_ROW * 11 + obs::SELF_COL] & bits::SELF, 0);
    };
    check(&sim, facing::NORTH);
    // Turning right rotates the window: now the map's east is up.
    sim.actions.players[0] = Action::TurnRight as u32;
    sim.step();
    assert_eq!(sim.pose(0, 0), (r, c, facing::EAST));
    check(&sim, facing::EAST);
    sim.actions.players[0] = Action::TurnLeft as u32;
    sim.step();
    sim.step();
    assert_eq!(sim.pose(0, 0).2, facing::WEST);
    check(&sim, facing::WEST);
}

#[test]
fn two_players_aiming_at_one_cell_one_wins_about_half_the_time() {
    let envs = 4000;
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    sim.park_all();
    let n = sim.players();
    for env in 0..envs {
        sim.place(env, 0, 12, 5, facing::EAST);
        sim.place(env, 1, 12, 7, facing::WEST);
        sim.actions.players[env * n] = Action::Forward as u32;
        sim.actions.players[env * n + 1] = Action::Forward as u32;
    }
    sim.step();
    let mut first_wins = 0;
    for env in 0..envs {
        let moved0 = sim.pose(env, 0) == (12, 6, facing::EAST);
        let moved1 = sim.pose(env, 1) == (12, 6, facing::WEST);
        assert!(moved0 ^ moved1, "env {env}: exactly one player moves");
        first_wins += moved0 as u32;
    }
    let share = first_wins as f64 / envs as f64;
    assert!(
        (share - 0.5).abs() < 0.04,
        "player 0 won {share:.3} of the time"
    );
}

#[test]
fn facing_players_walking_into_each_other_do_not_swap() {
    let envs = 256;
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    sim.park_all();
    let n = sim.players();
    for env in 0..envs {
        sim.place(env, 0, 12, 5, facing::EAST);
        sim.place(env, 1, 12, 6, facing::WEST);
        sim.actions.players[env * n] = Action::Forward as u32;
        sim.actions.players[env * n + 1] = Action::Forward as u32;
    }
    sim.step();
    for env in 0..envs {
        assert_eq!(sim.pose(env, 0), (12, 5, facing::EAST));
        assert_eq!(sim.pose(env, 1), (12, 6, facing::WEST));
    }
}

#[test]
fn a_player_may_follow_into_a_cell_vacated_earlier_in_the_step() {
    let envs = 2000;
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    sim.park_all();
    let n = sim.players();
    for env in 0..envs {
        sim.place(env, 0, 12, 6, facing::EAST);
        sim.place(env, 1, 12, 5, facing::EAST);
        sim.actions.players[env * n] = Action::Forward as u32;
        sim.actions.players[env * n + 1] = Action::Forward as u32;
    }
    sim.step();
    let mut followed = 0;
    for env in 0..envs {
        assert_eq!(
            sim.pose(env, 0),
            (12, 7, facing::EAST),
            "the leader always moves"
        );
        followed += (sim.pose(env, 1) == (12, 6, facing::EAST)) as u32;
    }
    // The follower moves exactly when it is processed after the leader: about half.
    let share = followed as f64 / envs as f64;
    assert!((share - 0.5).abs() < 0.05, "followed {share:.3}");
}

#[test]
fn decisions_and_settlements_fall_on_the_spec_steps() {
    let mut sim = Sim::new(resolved("apple_picking.toml", &["env.num_envs=2"]), 2);
    assert_eq!(
        sim.out.flags[0],
        flags::DECISION_NEXT,
        "the first step is a decision step"
    );
    let mut decisions = Vec::new();
    let mut settlements = Vec::new();
    for _ in 0..1000 {
        let t = sim.state.t[0];
        if sim.out.flags[0] & flags::DECISION_NEXT != 0 {
            decisions.push(t);
        }
        // The principal asks for a different rate on every step; only decision steps apply it.
        let wanted = (t / 7) % 11;
        sim.actions.principal.fill(wanted);
        let before = sim.state.rates.clone();
        sim.step();
        if t.is_multiple_of(50) {
            assert!(
                sim.state.rates.iter().all(|&r| r == wanted),
                "decision at t={t} sets the rates"
            );
        } else {
            assert_eq!(
                sim.state.rates, before,
                "rates change only on decision steps (t={t})"
            );
        }
        if sim.out.flags[0] & flags::PERIOD_END != 0 {
            settlements.push(t);
        }
    }
    assert_eq!(decisions, (0..20).map(|k| 50 * k).collect::<Vec<_>>());
    assert_eq!(
        settlements,
        (0..20).map(|k| 50 * k + 49).collect::<Vec<_>>()
    );
}

#[test]
fn an_apple_regrowing_under_a_standing_player_is_eaten_at_once() {
    let r = resolved(
        "apple_picking.toml",
        &[
            "env.regrowth_probabilities=[0.0, 1.0]",
            "reward.selfishness=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
        ],
    );
    let mut sim = Sim::new(r, 1);
    let map = sim.resolved.game.map.clone();
    sim.park_all();
    // Player 0 stands on apple cell (1, 1), whose apple is gone; its neighbours are live.
    let a = map.apple_index[(map.cols + 1) as usize];
    sim.set_apple(0, a, false);
    sim.set_apple_prev(0, a, false);
    sim.place(0, 0, 1, 1, facing::NORTH);
    sim.step();
    assert_eq!(
        sim.out.reward[0], 1.0,
        "+1 for the apple that grew under the player"
    );
    assert!(!sim.apple_live(0, a), "the apple was eaten");
    assert_eq!(sim.state.stats[sed_core::stats::cur_apples(7)], 1);
}

#[test]
fn a_frozen_principal_leaves_the_rates_alone() {
    // Curriculum phase 1: taxes off, principal frozen. Its choices change nothing.
    let mut sim = Sim::new(resolved("apple_picking.toml", &["env.num_envs=4"]), 4);
    sim.params.schedule = sed_core::principal::TaxSchedule::OFF;
    for t in 0..200u32 {
        sim.actions.principal.fill(1 + t % 10);
        sim.step();
        assert!(
            sim.state.rates.iter().all(|&r| r == 0),
            "t={t}: rates stay 0"
        );
        let features = &sim.out.principal_features;
        let l = sim.engine.layout();
        for env in 0..4 {
            let rates = &features[env * l.principal_features + l.players..][..l.brackets];
            assert!(
                rates.iter().all(|&r| r == 0.0),
                "t={t}: no drift in the features"
            );
        }
    }
    // Thawed, the next decision step applies the choice.
    sim.params.schedule = sed_core::principal::TaxSchedule::FULL;
    sim.actions.principal.fill(3);
    sim.step();
    assert!(sim.state.rates.iter().all(|&r| r == 3));
}
