//! The fast CPU engine against the reference engine of `tests/reference` (the rule book in
//! plain code), step by step for at least two episodes over many seeds and configs: poses,
//! apples, observations, the principal's map and features, rewards, the principal's
//! reward, flags, final observations, the clocks, the accumulators and the statistics.

mod common;
mod reference;

use common::{Sim, crowd_map_override, resolved};
use reference::World;
use sed_core::engine::flags;
use sed_core::obs::{OBS_STRIDE, WINDOW_CELLS};
use sed_core::principal::TaxSchedule;
use sed_core::reward::apple_unit;
use sed_core::rng::mix;
use sed_core::stats;
use sed_core::types::Pose;
use sed_core::welfare::{Ratio, Welfare};

/// Floats computed two ways (exact integers then one rounding, or `f64` sums) agree to this.
fn close(fast: f64, reference: f64) -> bool {
    (fast - reference).abs() <= 1e-5 * reference.abs().max(1.0)
}

/// The `(row, col)` of every apple set in one env's bitset, in reading order.
fn cells_of(map: &sed_core::map::Map, words: &[u32]) -> Vec<(i32, i32)> {
    (0..map.apples() as u32)
        .filter(|&a| words[(a / 32) as usize] >> (a % 32) & 1 == 1)
        .map(|a| {
            let cell = map.apple_cells[a as usize];
            ((cell / map.cols) as i32, (cell % map.cols) as i32)
        })
        .collect()
}

struct Case<'a> {
    name: &'a str,
    file: &'a str,
    overrides: &'a [&'a str],
    schedule: TaxSchedule,
    objective: Option<Welfare>,
    episodes: u32,
}

const CUT: TaxSchedule = TaxSchedule {
    tax_enabled: true,
    principal_learns: true,
    rate_cap_tenths: 6,
    multiplier_tenths: 4,
};

/// Runs `case` for `seeds` seeds of `envs` envs with random actions and choices, comparing
/// everything after every step.
fn run(case: &Case<'_>, seeds: std::ops::Range<u64>, envs: usize) {
    for seed in seeds {
        let seed_set = format!("seed={seed}");
        let mut overrides: Vec<&str> = case.overrides.to_vec();
        overrides.push(&seed_set);
        let r = resolved(case.file, &overrides);
        let game = r.game.clone();
        let mut sim = Sim::new(r, envs);
        sim.params.schedule = case.schedule;
        if let Some(w) = case.objective {
            sim.params.welfare = w;
        }
        let objective = sim.params.welfare;
        let mut worlds: Vec<World> = (0..envs as u32).map(|e| World::new(&game, e)).collect();
        let n = game.players as usize;
        let b = game.brackets.len();
        let mut noise = mix(seed as u32 ^ 0x5eed);
        let mut draw = |m: u32| {
            noise = mix(noise.wrapping_add(0x9e37_79b9));
            noise % m
        };
        let steps = case.episodes * game.episode_len;
        compare(case, seed, 0, &sim, &worlds, None);
        for step in 1..=steps {
            for a in sim.actions.players.iter_mut() {
                *a = draw(7);
            }
            for c in sim.actions.principal.iter_mut() {
                *c = draw(12);
            }
            let reports: Vec<_> = worlds
                .iter_mut()
                .enumerate()
                .map(|(e, w)| {
                    w.step(
                        &sim.actions.players[e * n..(e + 1) * n],
                        &sim.actions.principal[e * b..(e + 1) * b],
                        case.schedule,
                        objective,
                    )
                })
                .collect();
            sim.step();
            compare(case, seed, step, &sim, &worlds, Some(&reports));
        }
        // The run crossed episode ends and settlements (not vacuous).
        assert!(worlds.iter().all(|w| w.episodes >= case.episodes));
    }
}

fn compare(
    case: &Case<'_>,
    seed: u64,
    step: u32,
    sim: &Sim,
    worlds: &[World],
    reports: Option<&[reference::StepReport]>,
) {
    let l = sim.engine.layout();
    let (n, b) = (l.players, l.brackets);
    let unit = apple_unit(n as u32) as f64;
    let cols = sim.resolved.game.map.cols;
    let map = &sim.resolved.game.map;
    let s = &sim.state;
    let o = &sim.out;
    for (e, w) in worlds.iter().enumerate() {
        let at = |what: &str| format!("{} seed {seed} step {step} env {e}: {what}", case.name);
        assert_eq!((s.tick[e], s.t[e]), (w.tick, w.t), "{}", at("clock"));
        assert_eq!(
            &s.rates[e * b..(e + 1) * b],
            &w.rates[..],
            "{}",
            at("rates")
        );
        for (i, p) in w.players.iter().enumerate() {
            let pose = Pose(s.pose[e * n + i]);
            assert_eq!(
                (pose.cell() / cols, pose.cell() % cols, pose.facing()),
                (p.row as u32, p.col as u32, p.facing as u32),
                "{}",
                at(&format!("player {i}'s pose"))
            );
        }
        let w_len = l.apple_words;
        let live = cells_of(map, &s.apples[e * w_len..(e + 1) * w_len]);
        assert_eq!(live, w.live_apples(), "{}", at("live apples"));
        let prev = cells_of(map, &s.apples_prev[e * w_len..(e + 1) * w_len]);
        assert_eq!(
            prev,
            w.live_apples_two_steps_ago(),
            "{}",
            at("apples two steps ago")
        );
        assert_eq!(
            &s.period_income[e * n..(e + 1) * n],
            &w.period_income[..],
            "{}",
            at("period income")
        );
        assert_eq!(
            &s.round_apples[e * n..(e + 1) * n],
            &w.round_apples[..],
            "{}",
            at("round apples")
        );
        for i in 0..n {
            let pn = s.period_net[e * n + i] as f64 / unit;
            let rn = s.round_net[e * n + i] as f64 / unit;
            assert!(
                close(pn, w.period_net[i]),
                "{}",
                at(&format!("period net {i}: {pn} vs {}", w.period_net[i]))
            );
            assert!(
                close(rn, w.round_net[i]),
                "{}",
                at(&format!("round net {i}: {rn} vs {}", w.round_net[i]))
            );
        }
        for i in 0..n {
            let got = &o.obs[(e * n + i) * OBS_STRIDE..][..WINDOW_CELLS];
            assert_eq!(
                got,
                &w.window(i)[..],
                "{}",
                at(&format!("player {i}'s window"))
            );
        }
        let pmap = &o.principal_map[e * l.map_stride..][..map.cells()];
        assert_eq!(pmap, &w.principal_map()[..], "{}", at("principal map"));
        let pf = &o.principal_features[e * l.principal_features..][..l.principal_features];
        let want_pf = w.principal_features();
        assert_eq!(pf.len(), want_pf.len(), "{}", at("principal feature count"));
        for (k, (&got, want)) in pf.iter().zip(want_pf).enumerate() {
            assert!(
                close(got as f64, want),
                "{}",
                at(&format!("principal feature {k}: {got} vs {want}"))
            );
        }
        // Statistics.
        let st = &s.stats[e * stats::len(n)..][..stats::len(n)];
        assert_eq!(st[stats::EPISODES], w.episodes, "{}", at("episodes"));
        assert_eq!(
            st[stats::LAST_APPLES_LEFT],
            w.last_apples_left,
            "{}",
            at("apples left")
        );
        assert!(
            close(st[stats::LAST_REVENUE] as f64 / 10.0, w.last_revenue),
            "{}",
            at("last revenue")
        );
        assert!(
            close(st[stats::CUR_REVENUE] as f64 / 10.0, w.episode_revenue),
            "{}",
            at("revenue")
        );
        assert_eq!(
            &st[stats::cur_apples(n)..][..n],
            &w.episode_apples[..],
            "{}",
            at("episode apples")
        );
        assert_eq!(
            &st[stats::last_apples(n)..][..n],
            &w.last_apples[..],
            "{}",
            at("last apples")
        );
        for i in 0..n {
            let cur = st[stats::cur_post_tax(n) + i] as i32 as f64 / unit;
            let last = st[stats::last_post_tax(n) + i] as i32 as f64 / unit;
            assert!(
                close(cur, w.episode_net[i]),
                "{}",
                at(&format!("episode net {i}"))
            );
            assert!(
                close(last, w.last_net[i]),
                "{}",
                at(&format!("last episode net {i}"))
            );
        }

        let Some(reports) = reports else { continue };
        let r = &reports[e];
        for i in 0..n {
            let got = o.reward[e * n + i] as f64;
            assert!(
                close(got, r.rewards[i]),
                "{}",
                at(&format!("player {i}'s reward: {got} vs {}", r.rewards[i]))
            );
        }
        let pr = o.principal_reward[e] as f64;
        assert!(
            close(pr, r.principal_reward),
            "{}",
            at(&format!("principal reward {pr} vs {}", r.principal_reward))
        );
        let f = o.flags[e];
        let want = [
            (flags::PERIOD_END, r.period_end),
            (flags::ROUND_END, r.round_end),
            (flags::EPISODE_END, r.episode_end),
            (flags::DECISION_NEXT, r.decision_next),
        ];
        for (bit, on) in want {
            assert_eq!(f & bit != 0, on, "{}", at(&format!("flag {bit}")));
        }
        assert_eq!(o.truncated[e] == 1, r.episode_end, "{}", at("truncated"));
        assert_eq!(o.terminated[e], 0, "{}", at("terminated"));
        if let Some(finals) = &r.final_windows {
            for (i, want) in finals.iter().enumerate() {
                let got = &o.final_obs[(e * n + i) * OBS_STRIDE..][..WINDOW_CELLS];
                assert_eq!(
                    got,
                    &want[..],
                    "{}",
                    at(&format!("player {i}'s final window"))
                );
            }
        }
    }
}

#[test]
fn the_default_game_follows_the_rule_book() {
    run(
        &Case {
            name: "default",
            file: "apple_picking.toml",
            overrides: &[],
            schedule: TaxSchedule::FULL,
            objective: None,
            episodes: 2,
        },
        1..4,
        3,
    );
}

#[test]
fn the_released_code_reward_form_with_a_cut_schedule_follows_the_rule_book() {
    run(
        &Case {
            name: "released code",
            file: "apple_picking.toml",
            overrides: &[
                "reward.form=\"released_code\"",
                "tax.max_rate_change=0.2",
                "vote.welfare_of=\"post_tax_income\"",
            ],
            schedule: CUT,
            objective: Some(Welfare::Interpolated {
                eta: Ratio { num: 3, den: 8 },
            }),
            episodes: 2,
        },
        4..6,
        3,
    );
}

#[test]
fn five_and_fifteen_players_without_taxes_follow_the_rule_book() {
    for (name, players) in [
        ("5 players", "env.players=5"),
        ("15 players", "env.players=15"),
    ] {
        run(
            &Case {
                name,
                file: "apple_picking.toml",
                overrides: &[players],
                schedule: TaxSchedule::OFF,
                objective: None,
                episodes: 2,
            },
            7..9,
            2,
        );
    }
}

#[test]
fn the_tiny_map_follows_the_rule_book_in_both_reward_forms() {
    for (name, overrides) in [
        ("smoke paper", &["tax.reset_rates_each_episode=true"][..]),
        (
            "smoke released code",
            &["reward.form=\"released_code\"", "vote.round_periods=3"][..],
        ),
    ] {
        run(
            &Case {
                name,
                file: "smoke.toml",
                overrides,
                schedule: TaxSchedule::FULL,
                objective: Some(Welfare::Egalitarian),
                episodes: 12,
            },
            10..22,
            4,
        );
    }
}

#[test]
fn a_thousand_players_in_one_env_follow_the_rule_book_in_both_reward_forms() {
    // Rewards and the principal's reward whose numerators leave 32 bits (checked in
    // tests/gpu_parity.rs), on a map with room for the crowd.
    let map = crowd_map_override();
    for (name, form) in [
        ("1024 players, paper", "reward.form=\"paper\""),
        (
            "1024 players, released code",
            "reward.form=\"released_code\"",
        ),
    ] {
        run(
            &Case {
                name,
                file: "apple_picking.toml",
                overrides: &[
                    &map,
                    form,
                    "env.players=1024",
                    "env.episode_len=8",
                    "tax.period=4",
                    "vote.welfare_of=\"post_tax_income\"",
                ],
                schedule: TaxSchedule::FULL,
                objective: None,
                episodes: 2,
            },
            30..31,
            1,
        );
    }
}

#[test]
fn tiled_maps_follow_the_rule_book_either_side_of_the_visibility_switch() {
    // The fast engine finds the players in a window by testing each other player while
    // there are at most as many as window cells (121), and through its occupancy grid
    // beyond: 121 and 122 players take one path each; 600 players on a map of 3 × 4 copies
    // of the default one cross the copies' seams.
    for (name, tiles, players) in [
        (
            "121 players, 2x2 copies",
            "env.map_tiles=[2, 2]",
            "env.players=121",
        ),
        (
            "122 players, 2x2 copies",
            "env.map_tiles=[2, 2]",
            "env.players=122",
        ),
        (
            "600 players, 3x4 copies",
            "env.map_tiles=[3, 4]",
            "env.players=600",
        ),
    ] {
        run(
            &Case {
                name,
                file: "apple_picking.toml",
                overrides: &[
                    tiles,
                    players,
                    "env.episode_len=12",
                    "tax.period=4",
                    "vote.welfare_of=\"post_tax_income\"",
                    // Eaten apples come back within the episode, some under players.
                    "env.regrowth_probabilities=[0.2, 0.3, 0.4, 0.5]",
                ],
                schedule: TaxSchedule::FULL,
                objective: None,
                episodes: 2,
            },
            40..42,
            2,
        );
    }
}
