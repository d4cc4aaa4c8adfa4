//! The principal (SPEC §1, §4): its action space, the divergence constraint, the tax
//! curriculum, and the per-period welfare-delta reward.
//!
//! The principal acts only on decision steps (`t ≡ 0 mod tax_period`): one categorical head
//! per bracket with [`CHOICES`] choices; choice `k ≤ 10` sets the rate to `k / 10`, choice
//! [`KEEP`] keeps the current rate.

use crate::tax::RATE_LEVELS;
use crate::welfare::Welfare;

/// Choices per bracket head: 11 rate levels and "keep".
pub const CHOICES: u32 = RATE_LEVELS + 2;
/// The "keep the current rate" choice.
pub const KEEP: u32 = RATE_LEVELS + 1;

/// Which rate choices are allowed this period (the mask a policy applies to its logits).
///
/// Rates above `cap_tenths` are masked, and with a divergence bound `max_delta_tenths`
/// (`Some(δ)`: `|φ_new − φ_prev| ≤ δ`, the L∞ constraint) so are rates farther than δ
/// from the current rate. "Keep" is always allowed.
#[must_use]
pub fn allowed(
    current_tenths: u32,
    cap_tenths: u32,
    max_delta_tenths: Option<u32>,
) -> [bool; CHOICES as usize] {
    let mut mask = [false; CHOICES as usize];
    for (k, m) in mask.iter_mut().enumerate().take(RATE_LEVELS as usize + 1) {
        let k = k as u32;
        *m = k <= cap_tenths && max_delta_tenths.is_none_or(|d| k.abs_diff(current_tenths) <= d);
    }
    mask[KEEP as usize] = true;
    mask
}

/// A rate (or rate change) given as a fraction, in tenths: `Some(k)` when it is one of
/// 0, 0.1, …, 1 (within float noise), else `None`.
#[must_use]
pub fn rate_tenths(fraction: f64) -> Option<u32> {
    let tenths = (fraction * 10.0).round();
    ((0.0..=1.0).contains(&fraction) && (fraction * 10.0 - tenths).abs() <= 1e-9)
        .then_some(tenths as u32)
}

/// Applies one head's choice, projecting it onto the feasible set so that the cap and the
/// divergence bound hold even for a policy that does not mask: the new rate is
/// `clamp(choice, current ± δ)` then `min(·, cap)`.
#[inline]
#[must_use]
pub fn apply_choice(
    current_tenths: u32,
    choice: u32,
    cap_tenths: u32,
    max_delta_tenths: Option<u32>,
) -> u32 {
    let wanted = if choice == KEEP {
        current_tenths
    } else {
        choice
    };
    let bounded = match max_delta_tenths {
        Some(d) => wanted.clamp(current_tenths.saturating_sub(d), current_tenths + d),
        None => wanted,
    };
    bounded.min(cap_tenths)
}

/// How taxes are phased in while training (SPEC §4 "Curriculum").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurriculumMode {
    /// Taxes at full strength from the first episode.
    None,
    /// AI Economist: phase 1 without tax (principal frozen), then the largest allowed rate
    /// annealed linearly from 0.1 to 1.0.
    #[default]
    RateCap,
    /// Released code: no phase 1; net transfers multiplied by a factor that goes from 0.1
    /// to 1.0 (in tenths) over the anneal window.
    TransferMultiplier,
}

/// The curriculum: what the engine's tax parameters are at a point of training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Curriculum {
    /// The mode.
    pub mode: CurriculumMode,
    /// Episodes of phase 1 (no tax, principal frozen); `RateCap` only.
    pub phase1_episodes: u64,
    /// Episodes of phase 2 over which the rate cap rises from 0.1 to 1.0; `RateCap` only.
    pub anneal_episodes: u64,
    /// Episodes from the start over which the transfer multiplier rises from 0.1 to 1.0;
    /// `TransferMultiplier` only.
    pub multiplier_episodes: u64,
}

/// The tax-related parameters of one step, passed to the engine at step time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaxSchedule {
    /// Whether taxes are settled at all.
    pub tax_enabled: bool,
    /// Whether the principal is trained (false in phase 1).
    pub principal_learns: bool,
    /// The largest allowed rate, in tenths.
    pub rate_cap_tenths: u32,
    /// The multiplier on net transfers, in tenths (10 = full).
    pub multiplier_tenths: u32,
}

impl TaxSchedule {
    /// Taxes at full strength.
    pub const FULL: Self = Self {
        tax_enabled: true,
        principal_learns: true,
        rate_cap_tenths: RATE_LEVELS,
        multiplier_tenths: 10,
    };
    /// No tax at all.
    pub const OFF: Self = Self {
        tax_enabled: false,
        principal_learns: false,
        rate_cap_tenths: RATE_LEVELS,
        multiplier_tenths: 10,
    };
}

impl Curriculum {
    /// The schedule after `episode` completed episodes. Annealed values rise in tenths:
    /// `1 + floor(9 · progress)` with `progress = elapsed / window`, reaching 10 when the
    /// window (`anneal_episodes` for the cap, `multiplier_episodes` for the multiplier)
    /// has passed.
    #[must_use]
    pub fn at(&self, episode: u64) -> TaxSchedule {
        let tenths = |elapsed: u64, window: u64| -> u32 {
            if window == 0 || elapsed >= window {
                RATE_LEVELS
            } else {
                1 + (9 * elapsed / window) as u32
            }
        };
        match self.mode {
            CurriculumMode::None => TaxSchedule::FULL,
            CurriculumMode::RateCap if episode < self.phase1_episodes => TaxSchedule::OFF,
            CurriculumMode::RateCap => TaxSchedule {
                rate_cap_tenths: tenths(episode - self.phase1_episodes, self.anneal_episodes),
                ..TaxSchedule::FULL
            },
            CurriculumMode::TransferMultiplier => TaxSchedule {
                multiplier_tenths: tenths(episode, self.multiplier_episodes),
                ..TaxSchedule::FULL
            },
        }
    }
}

/// The welfare-delta reward of one tax period (SPEC §4): `W(A_end) − W(A_start)`, with `A`
/// what each player collected since the voting round began, counted in `1 / unit` apple
/// (`unit` = 1 for raw apples, [`crate::reward::apple_unit`] for post-tax income). Members
/// of the linear family are computed exactly: `den · unit · ΔW = num · ΔΣA + (den − num) ·
/// Δmin A`, converted once with [`crate::reward::exact_f32`] and scaled by `1 / (den · unit)`
/// (the caller checks the numerator's range with [`exact_welfare_bound`]); Nash and p-means
/// are evaluated in `f64` and rounded to `f32`.
#[must_use]
pub fn period_reward(welfare: &Welfare, start: &[i64], end: &[i64], unit: i64) -> f32 {
    match welfare.linear() {
        Some(eta) => {
            let d_sum = end.iter().sum::<i64>() - start.iter().sum::<i64>();
            let d_min = *end.iter().min().unwrap_or(&0) - *start.iter().min().unwrap_or(&0);
            let num = eta.num as i64 * d_sum + (eta.den - eta.num) as i64 * d_min;
            crate::reward::exact_f32(num) * welfare_scale(eta, unit)
        }
        None => {
            let f = |a: &[i64]| {
                welfare.eval(
                    &a.iter()
                        .map(|&x| x as f64 / unit as f64)
                        .collect::<Vec<_>>(),
                )
            };
            (f(end) - f(start)) as f32
        }
    }
}

/// `1 / (den · unit)` as the `f32` both engines multiply the exact numerator by.
#[must_use]
pub fn welfare_scale(eta: crate::welfare::Ratio, unit: i64) -> f32 {
    (1.0 / (eta.den as f64 * unit as f64)) as f32
}

/// The largest numerator [`period_reward`] can produce for a linear welfare with weight
/// denominator `den`, `players` players, tax periods of `tax_period` steps and amounts in
/// `1 / unit` apple (at most one apple per player per step). The sum's change is at most
/// `n · period · unit` (redistribution moves apples, it creates none); the minimum's change
/// at most one player's change, `2 · period · unit` with post-tax income
/// ([`crate::reward::post_tax_bound`]). Engines refuse objectives whose bound leaves `i64`.
#[must_use]
pub fn exact_welfare_bound(den: u32, players: u32, tax_period: u32, unit: i64) -> i128 {
    den as i128 * players.max(2) as i128 * tax_period as i128 * unit as i128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_project_onto_cap_and_divergence() {
        assert_eq!(apply_choice(3, KEEP, 10, None), 3);
        assert_eq!(apply_choice(3, 9, 5, None), 5);
        assert_eq!(apply_choice(3, 9, 10, Some(2)), 5);
        assert_eq!(apply_choice(3, 0, 10, Some(2)), 1);
        assert_eq!(apply_choice(8, KEEP, 4, None), 4);
        let m = allowed(3, 6, Some(2));
        assert_eq!(
            m,
            [
                false, true, true, true, true, true, false, false, false, false, false, true
            ]
        );
    }

    #[test]
    fn curriculum_phases() {
        let c = Curriculum {
            mode: CurriculumMode::RateCap,
            phase1_episodes: 10,
            anneal_episodes: 90,
            multiplier_episodes: 1,
        };
        assert_eq!(c.at(0), TaxSchedule::OFF);
        assert_eq!(c.at(10).rate_cap_tenths, 1);
        assert_eq!(c.at(55).rate_cap_tenths, 5);
        assert_eq!(c.at(100).rate_cap_tenths, 10);
        let r = Curriculum {
            mode: CurriculumMode::TransferMultiplier,
            phase1_episodes: 0,
            anneal_episodes: 1,
            multiplier_episodes: 20,
        };
        assert_eq!(r.at(0).multiplier_tenths, 1);
        assert!(r.at(0).tax_enabled);
        assert_eq!(r.at(0).rate_cap_tenths, 10, "no cap with the multiplier");
        assert_eq!(r.at(10).multiplier_tenths, 5);
        assert_eq!(r.at(20).multiplier_tenths, 10);
        // Each window is its own setting.
        assert_eq!(c.at(10).multiplier_tenths, 10);
    }

    #[test]
    fn period_reward_telescopes() {
        let w = Welfare::Interpolated {
            eta: crate::welfare::Ratio { num: 1, den: 3 },
        };
        let a = [0, 0, 0];
        let b = [3, 1, 5];
        let c = [6, 4, 5];
        let total = period_reward(&w, &a, &b, 1) + period_reward(&w, &b, &c, 1);
        assert!((total - period_reward(&w, &a, &c, 1)).abs() < 1e-6);
        assert!((period_reward(&w, &a, &b, 1) - (9.0 / 3.0 + 2.0 / 3.0)).abs() < 1e-6);
        // The same amounts in hundredths of an apple give the same reward.
        let hundredths = |x: [i64; 3]| x.map(|v| v * 100);
        let fine = period_reward(&w, &hundredths(a), &hundredths(b), 100);
        assert!((fine - period_reward(&w, &a, &b, 1)).abs() < 1e-6);
    }

    #[test]
    fn every_rate_up_to_the_cap_is_allowed() {
        let m = allowed(0, RATE_LEVELS, None);
        assert!(
            m.iter().all(|&a| a),
            "no cap, no bound: every choice: {m:?}"
        );
        let m = allowed(10, 10, Some(1));
        let on: Vec<usize> = (0..CHOICES as usize).filter(|&k| m[k]).collect();
        assert_eq!(on, vec![9, 10, KEEP as usize]);
    }

    #[test]
    fn annealed_values_stop_at_full_and_a_zero_window_is_full_at_once() {
        let c = Curriculum {
            mode: CurriculumMode::RateCap,
            phase1_episodes: 2,
            anneal_episodes: 4,
            multiplier_episodes: 0,
        };
        assert_eq!(c.at(6).rate_cap_tenths, 10);
        assert_eq!(c.at(1000).rate_cap_tenths, 10, "long after the window");
        let m = Curriculum {
            mode: CurriculumMode::TransferMultiplier,
            ..c
        };
        assert_eq!(
            m.at(0).multiplier_tenths,
            10,
            "a zero window: full from the start"
        );
        assert_eq!(m.at(1000).multiplier_tenths, 10);
    }

    #[test]
    fn a_nash_reward_is_the_change_of_the_geometric_mean_in_apples() {
        // In hundredths of an apple: (1, 4) apples at the period's start, (4, 9) at its end.
        let r = period_reward(&Welfare::Nash, &[100, 400], &[400, 900], 100);
        assert!((r - 4.0).abs() < 1e-6, "√36 − √4 = 4, got {r}");
    }

    #[test]
    fn the_welfare_bound_is_reached_by_the_utilitarian_worst_period() {
        // Every player collects an apple on every step of the period and η = 1: the
        // numerator is den · n · period · unit, the bound itself.
        let (den, n, period, unit) = (8u32, 7usize, 50u32, 700i64);
        let bound = exact_welfare_bound(den, n as u32, period, unit);
        assert_eq!(
            bound,
            (den as i64 * n as i64 * period as i64 * unit) as i128
        );
        let w = Welfare::Interpolated {
            eta: crate::welfare::Ratio { num: den, den },
        };
        let end = vec![period as i64 * unit; n];
        let r = period_reward(&w, &vec![0; n], &end, unit);
        assert_eq!(r, (n as u32 * period) as f32);
    }
}
