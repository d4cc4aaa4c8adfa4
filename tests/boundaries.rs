//! Inner and outer boundaries (SPEC §2, §4): tax periods, voting rounds and episode ends,
//! reported separately; auto-reset keeps the final observation; rounds are online.

mod common;

use common::{Sim, resolved};
use sed_core::engine::flags;
use sed_core::stats;

#[test]
fn episode_end_truncates_keeps_the_final_observation_and_resets() {
    let mut sim = Sim::new(resolved("apple_picking.toml", &[]), 3);
    let first_obs = sim.out.obs.clone();
    sim.actions.principal.fill(4);
    for _ in 0..999 {
        sim.step();
        assert_eq!(sim.out.truncated, vec![0; 3]);
    }
    sim.step();
    assert_eq!(sim.out.truncated, vec![1; 3]);
    assert_eq!(
        sim.out.terminated,
        vec![0; 3],
        "nothing terminates in this game"
    );
    assert!(sim.out.flags.iter().all(|f| f & flags::EPISODE_END != 0));
    assert!(sim.out.flags.iter().all(|f| f & flags::DECISION_NEXT != 0));
    assert_eq!(sim.state.t, vec![0; 3]);
    assert_eq!(sim.state.tick, vec![1000; 3]);
    // The new episode starts with all apples and fresh spawns; players 0 and 1 on the Q
    // cells.
    let map = sim.resolved.game.map.clone();
    for env in 0..3 {
        assert!((0..64).all(|a| sim.apple_live(env, a)));
        let cell = |i: usize| sim.pose(env, i).0 * map.cols + sim.pose(env, i).1;
        let mut on = [cell(0), cell(1)];
        on.sort_unstable();
        assert_eq!(on[..], map.inside_spawn_cells[..]);
    }
    // final_obs is the last observation of the old episode, obs the first of the new one.
    assert_ne!(sim.out.final_obs, sim.out.obs);
    assert_ne!(
        sim.out.obs, first_obs,
        "the new spawns differ from the first episode's"
    );
    // Rates persist across episodes by default.
    assert!(sim.state.rates.iter().all(|&r| r == 4));
    let n = sim.players();
    let st = &sim.state.stats[..stats::len(n)];
    assert_eq!(st[stats::EPISODES], 1);
    // Nobody moved (NOOP), so nobody ate and all 64 apples were left standing.
    assert_eq!(st[stats::LAST_APPLES_LEFT], 64);
    assert_eq!(
        &st[stats::last_apples(n)..stats::last_apples(n) + n],
        &vec![0; n][..]
    );
    assert_eq!(
        &st[stats::cur_apples(n)..stats::cur_apples(n) + n],
        &vec![0; n][..]
    );
}

#[test]
fn the_final_observation_is_what_the_old_episode_showed() {
    // Two engines in lockstep; one has an episode twice as long. At the first one's
    // episode end, its final_obs equals the second's obs (same world, no reset yet).
    let mut short = Sim::new(resolved("smoke.toml", &[]), 4);
    let mut long = Sim::new(resolved("smoke.toml", &["env.episode_len=80"]), 4);
    for step in 0..40 {
        for (i, a) in short.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(step * 77 + i as u32) % 7;
        }
        long.actions.players.copy_from_slice(&short.actions.players);
        short.step();
        long.step();
    }
    assert_eq!(short.out.truncated, vec![1; 4]);
    assert_eq!(short.out.final_obs, long.out.obs);
    assert_eq!(short.out.reward, long.out.reward);
}

#[test]
fn rates_reset_each_episode_when_configured() {
    let mut sim = Sim::new(
        resolved("smoke.toml", &["tax.reset_rates_each_episode=true"]),
        2,
    );
    sim.actions.principal.fill(6);
    for _ in 0..40 {
        sim.step();
    }
    assert_eq!(sim.state.rates, vec![0; 6]);
}

#[test]
fn voting_rounds_are_online_and_reported_separately() {
    // Rounds of 10 periods inside 20-period episodes: a round ends at t = 499 without a reset.
    let mut sim = Sim::new(
        resolved("apple_picking.toml", &["vote.round_periods=10"]),
        2,
    );
    let mut round_ends = Vec::new();
    let mut round_welfare_sum = 0.0f64;
    let welfare = sim.params.welfare;
    for tick in 0..1500u32 {
        for (i, a) in sim.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(tick * 31 + i as u32) % 7;
        }
        let t_before = sim.state.t[0];
        sim.step();
        round_welfare_sum += sim.out.principal_reward[0] as f64;
        if sim.out.flags[0] & flags::ROUND_END != 0 {
            round_ends.push(tick);
            // The period rewards of the round telescope to the round's final welfare.
            let n = sim.players();
            let a: Vec<f64> = sim.state.round_apples[..n]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let w = welfare.eval(&a);
            assert!(
                (round_welfare_sum - w).abs() < 1e-3,
                "sum {round_welfare_sum} vs W {w}"
            );
            round_welfare_sum = 0.0;
            if t_before == 499 {
                assert_eq!(
                    sim.out.flags[0] & flags::EPISODE_END,
                    0,
                    "a round end is not an episode end"
                );
                assert_eq!(sim.state.t[0], 500, "the world goes on");
            }
        }
        if tick == 500 {
            // The first step of the new round cleared the round's apples before adding.
            let n = sim.players();
            assert!(sim.state.round_apples[..n].iter().all(|&a| a <= 1));
        }
    }
    assert_eq!(round_ends, vec![499, 999, 1499]);
}

#[test]
fn a_round_may_span_an_episode_end() {
    let mut sim = Sim::new(
        resolved("apple_picking.toml", &["vote.round_periods=30"]),
        1,
    );
    let mut round_ends = Vec::new();
    for tick in 0..3000u32 {
        for (i, a) in sim.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(tick * 13 + i as u32) % 7;
        }
        sim.step();
        if sim.out.flags[0] & flags::ROUND_END != 0 {
            round_ends.push(tick);
        }
        if tick == 1000 {
            // The episode reset at tick 999 but the round goes on: its apples are kept.
            assert!(sim.state.round_apples.iter().sum::<u32>() > 5);
        }
    }
    assert_eq!(round_ends, vec![1499, 2999]);
}

#[test]
fn smoke_boundaries_line_up() {
    // Smoke: 40-step episodes, 10-step periods, 2-period rounds.
    let mut sim = Sim::new(resolved("smoke.toml", &[]), 1);
    let mut seen = Vec::new();
    for tick in 0..80u32 {
        sim.step();
        let f = sim.out.flags[0];
        seen.push((
            tick,
            f & flags::PERIOD_END != 0,
            f & flags::ROUND_END != 0,
            f & flags::EPISODE_END != 0,
        ));
    }
    for (tick, period, round, episode) in seen {
        assert_eq!(period, tick % 10 == 9, "period end at {tick}");
        assert_eq!(round, tick % 20 == 19, "round end at {tick}");
        assert_eq!(episode, tick % 40 == 39, "episode end at {tick}");
    }
}

#[test]
fn post_tax_welfare_telescopes_to_the_rounds_after_tax_welfare() {
    // With `vote.welfare_of = post_tax_income` the period rewards sum to W of the players'
    // after-tax income over the round; with full redistribution of every bracket, the
    // egalitarian objective then sees the mean income, not the poorest player's apples.
    let mut sim = Sim::new(
        resolved(
            "smoke.toml",
            &[
                "vote.welfare_of=\"post_tax_income\"",
                "vote.social_choice={ kind = \"fixed\", welfare = { kind = \"egalitarian\" } }",
            ],
        ),
        4,
    );
    let n = sim.players();
    let unit = sed_core::reward::apple_unit(n as u32) as f64;
    let welfare = sim.params.welfare;
    let mut sum = 0.0f64;
    let mut rounds = 0;
    let mut raw_min_total = 0.0;
    let mut post_min_total = 0.0;
    for tick in 0..400u32 {
        for (i, a) in sim.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(tick * 131 + i as u32) % 7;
        }
        // Full rates in every bracket (choice 10 = rate 1.0).
        sim.actions.principal.fill(10);
        sim.step();
        sum += sim.out.principal_reward[0] as f64;
        if sim.out.flags[0] & flags::ROUND_END != 0 {
            let post: Vec<f64> = sim.state.round_net[..n]
                .iter()
                .map(|&x| x as f64 / unit)
                .collect();
            let raw: Vec<f64> = sim.state.round_apples[..n]
                .iter()
                .map(|&x| x as f64)
                .collect();
            assert!(
                (sum - welfare.eval(&post)).abs() < 1e-3,
                "{sum} vs {post:?}"
            );
            let total: f64 = raw.iter().sum();
            assert!(
                (post.iter().sum::<f64>() - total).abs() < 1e-6,
                "transfers sum to zero"
            );
            raw_min_total += welfare.eval(&raw);
            post_min_total += welfare.eval(&post);
            sum = 0.0;
            rounds += 1;
        }
    }
    assert!(rounds >= 10);
    assert!(
        post_min_total > raw_min_total,
        "full redistribution raises the poorest player's income: {post_min_total} vs {raw_min_total}"
    );
}
