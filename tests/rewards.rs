//! Rewards (SPEC §4) against an independent floating-point oracle: both reward forms,
//! taxes settled with redistribution, visibility from the players' windows.

mod common;

use common::{Sim, resolved};
use sed_core::engine::flags;
use sed_core::obs::bits;
use sed_core::reward::RewardForm;
use sed_core::stats;
use sed_core::tax;

/// Is a cell at `(dr, dc)` from an observer facing `f` inside its window? Written
/// independently of the engine's window code.
fn visible(f: u32, dr: i32, dc: i32) -> bool {
    let (ahead, right) = match f {
        0 => (-dr, dc),
        1 => (dc, dr),
        2 => (dr, -dc),
        _ => (-dc, -dr),
    };
    (-1..=9).contains(&ahead) && right.abs() <= 5
}

fn check_form(form: &str, multiplier: u32) {
    let r = resolved(
        "smoke.toml",
        &[&format!("reward.form=\"{form}\""), "seed=11"],
    );
    let envs = 16;
    let mut sim = Sim::new(r, envs);
    sim.params.schedule.multiplier_tenths = multiplier;
    let n = sim.players();
    let game = sim.resolved.game.clone();
    let q = sed_core::types::TYPE_LEVELS as f64;
    let mut settlements_with_tax = 0;
    let mut seen_pairs = 0;
    for step in 0..400u32 {
        for (i, a) in sim.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(step * 101 + i as u32) % 7;
        }
        for (i, a) in sim.actions.principal.iter_mut().enumerate() {
            *a = sed_core::rng::mix(step * 7 + i as u32) % 12;
        }
        let before = sim.state.stats.clone();
        sim.step();
        for env in 0..envs {
            if sim.out.flags[env] & flags::EPISODE_END != 0 {
                continue; // poses were reset; tests/differential.rs checks these steps
            }
            let st = &sim.state.stats[env * stats::len(n)..];
            let b = &before[env * stats::len(n)..];
            let a: Vec<f64> = (0..n)
                .map(|i| (st[stats::cur_apples(n) + i] - b[stats::cur_apples(n) + i]) as f64)
                .collect();
            let mut taxed = a.clone();
            if sim.out.flags[env] & flags::PERIOD_END != 0 {
                let income = &sim.state.period_income[env * n..(env + 1) * n];
                let rates = &sim.state.rates[env * 3..env * 3 + 3];
                let t: Vec<f64> = income
                    .iter()
                    .map(|&x| tax::tax_tenths(x, &game.brackets, rates) as f64 / 10.0)
                    .collect();
                let share = t.iter().sum::<f64>() / n as f64;
                settlements_with_tax += (share > 0.0) as u32;
                for i in 0..n {
                    taxed[i] -= multiplier as f64 / 10.0 * (t[i] - share);
                }
            }
            for i in 0..n {
                let (ri, ci, fi) = sim.pose(env, i);
                let (mut seen_taxed, mut seen_raw, mut count) = (0.0, 0.0, 0);
                for j in (0..n).filter(|&j| j != i) {
                    let (rj, cj, _) = sim.pose(env, j);
                    if visible(fi, rj as i32 - ri as i32, cj as i32 - ci as i32) {
                        seen_taxed += taxed[j];
                        seen_raw += a[j];
                        count += 1;
                    }
                }
                seen_pairs += count;
                // The observation marks exactly the visible others.
                let win = &sim.out.obs[(env * n + i) * 124..(env * n + i) * 124 + 121];
                assert_eq!(win.iter().filter(|&&c| c & bits::OTHER != 0).count(), count);
                let sigma = game.types.selfishness[i] as f64 / q;
                let beta = game.types.trust[i] as f64 / q;
                let expected = match game.reward_form {
                    RewardForm::Paper => sigma * taxed[i] + (1.0 - sigma) * seen_taxed,
                    RewardForm::ReleasedCode => {
                        beta * taxed[i] + (1.0 - beta) * (sigma * a[i] + (1.0 - sigma) * seen_raw)
                    }
                };
                let got = sim.out.reward[env * n + i] as f64;
                assert!(
                    (got - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                    "{form} env {env} player {i} step {step}: {got} vs {expected}"
                );
            }
        }
    }
    assert!(
        settlements_with_tax > 10,
        "the test must see real transfers"
    );
    assert!(
        seen_pairs > 100,
        "the test must see players in each other's windows"
    );
}

#[test]
fn paper_rewards_match_the_formula() {
    check_form("paper", 10);
}

#[test]
fn released_code_rewards_match_the_formula() {
    check_form("released_code", 10);
}

#[test]
fn transfer_multiplier_scales_net_transfers() {
    check_form("paper", 3);
}

#[test]
fn taxes_off_leave_raw_apples() {
    let r = resolved("smoke.toml", &["reward.selfishness=[1.0, 1.0, 1.0]"]);
    let mut sim = Sim::new(r, 8);
    sim.params.schedule = sed_core::principal::TaxSchedule::OFF;
    sim.actions.principal.fill(10);
    for step in 0..120u32 {
        for (i, a) in sim.actions.players.iter_mut().enumerate() {
            *a = sed_core::rng::mix(step * 5 + i as u32) % 7;
        }
        sim.step();
        // σ = 1 and no tax: the reward is exactly the apples eaten this step.
        assert!(sim.out.reward.iter().all(|&r| r == 0.0 || r == 1.0));
    }
    assert!(
        sim.state
            .stats
            .chunks(stats::len(3))
            .all(|s| s[stats::LAST_REVENUE] == 0 && s[stats::CUR_REVENUE] == 0)
    );
}
