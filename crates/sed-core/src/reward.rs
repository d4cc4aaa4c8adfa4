//! Player rewards in exact arithmetic (SPEC §4).
//!
//! Each reward is a rational number `num / den` whose numerator is an exact `i64` and
//! whose denominator depends only on the config. The float reward is
//! `exact_f32(num) * (1 / den)`: one deterministic integer-to-float rounding
//! ([`exact_f32`]) and one IEEE multiplication. A GPU gets the same bits, whatever its
//! compiler does with fused multiply-adds, because no float addition ever takes place
//! (WGSL has no 64-bit integers: `shaders/int64.wgsl` computes the same numbers in pairs
//! of `u32` words).
//!
//! Units: apples after tax are counted in units of `1 / (100 n)` apple
//! ([`apple_unit`]): 10 for rates in tenths, `n` for the equal share, 10 for the transfer
//! multiplier in tenths.
//!
//! Ranges: one player's after-tax apples, per step and summed over a period, a round or an
//! episode, are kept in `i32` (engine buffers); [`post_tax_bound`] bounds them and config
//! validation keeps that bound inside `i32`. Sums over players and the numerators are
//! `i64`, bounded by [`RewardForm::numerator_bound`].

use crate::types::TYPE_LEVELS;

/// Which reward form the players receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardForm {
    /// Paper eq. 8: `rᵢ = σᵢ·aᵢᵗᵃˣ + (1 − σᵢ)·Σ_{j≠i visible} aⱼᵗᵃˣ`.
    #[default]
    Paper,
    /// Released code: `rᵢ = βᵢ·aᵢᵗᵃˣ + (1 − βᵢ)·[σᵢ·aᵢ + (1 − σᵢ)·Σ_{j visible} aⱼ]`, with
    /// untaxed apples in the social term.
    ReleasedCode,
}

/// Apples of one player, or summed over the others a player sees, in one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// After-tax apples, in apple units ([`apple_unit`]).
    pub taxed: i64,
    /// Raw apples.
    pub raw: i64,
}

/// Units per apple of after-tax amounts with `n` players.
#[must_use]
pub const fn apple_unit(players: u32) -> i32 {
    100 * players as i32
}

/// The largest after-tax income of one player over `steps` consecutive steps, in apple
/// units, with `players` players (at most one apple per player per step). Post-tax income
/// over a whole tax period is never negative (rates are at most 1), and each period adds
/// at most `unit` per step of the player's own apples plus the share of the revenue it
/// gets back, at most `m · R ≤ 100 · Σⱼ xⱼ ≤ 100 n` per step. A single settlement step
/// moves at most that much too, so `|per-step after-tax apples| ≤` this bound for
/// `steps` = one tax period.
#[must_use]
pub const fn post_tax_bound(players: u32, steps: u64) -> i128 {
    2 * apple_unit(players) as i128 * steps as i128
}

impl RewardForm {
    /// The denominator of every reward numerator.
    #[must_use]
    pub fn denominator(self, players: u32) -> f64 {
        let q = TYPE_LEVELS as f64;
        let u = apple_unit(players) as f64;
        match self {
            RewardForm::Paper => q * u,
            RewardForm::ReleasedCode => q * q * u,
        }
    }

    /// `1 / denominator` as the `f32` both engines multiply by.
    #[must_use]
    pub fn scale(self, players: u32) -> f32 {
        (1.0 / self.denominator(players)) as f32
    }

    /// The reward numerator of one player from its own apples and those of the others it
    /// sees, with its types `sigma` (σ) and `beta` (β) in `1 / TYPE_LEVELS`.
    #[inline(always)]
    #[must_use]
    pub fn numerator(self, unit: i64, own: Share, seen: Share, sigma: i64, beta: i64) -> i64 {
        let q = TYPE_LEVELS as i64;
        match self {
            RewardForm::Paper => sigma * own.taxed + (q - sigma) * seen.taxed,
            RewardForm::ReleasedCode => {
                beta * q * own.taxed
                    + (q - beta) * unit * (sigma * own.raw + (q - sigma) * seen.raw)
            }
        }
    }

    /// The largest numerator magnitude this form can produce with `players` players and
    /// tax periods of `tax_period` steps (at most one apple per player per step).
    ///
    /// On a settlement step player j's net transfer is `m · (n tⱼ − R)` with `tⱼ ≤ 10 x`,
    /// `x ≤ tax_period` and `R = Σ tⱼ`. Its own after-tax apples are within
    /// `unit + 100 (n − 1) · period`. The others it sees gain most when the players split in
    /// two halves, one paying full tax on a full period and the other paying none: each of
    /// the ⌈n/2⌉ non-payers then receives `100 ⌊n/2⌋ · period`.
    #[must_use]
    pub fn numerator_bound(self, players: u32, tax_period: u32) -> i128 {
        let n = players as i128;
        let q = TYPE_LEVELS as i128;
        let unit = apple_unit(players) as i128;
        let period = tax_period as i128;
        let own = unit + 100 * (n - 1) * period;
        let seen = (n - 1) * unit + 100 * (n / 2) * (n - n / 2) * period;
        match self {
            RewardForm::Paper => q * own.max(seen),
            RewardForm::ReleasedCode => q * (q * own).max(unit * q * (n - 1).max(1)),
        }
    }
}

/// Converts an `i64` to the nearest `f32`, ties to even, in integer arithmetic only.
///
/// Equal to `v as f32`; written out so the WGSL port (`shaders/int64.wgsl`) computes the
/// same bits the same way (WGSL has no 64-bit integers and leaves the rounding of inexact
/// integer-to-float conversions to the implementation).
#[inline(always)]
#[must_use]
pub const fn exact_f32(v: i64) -> f32 {
    f32::from_bits(exact_f32_bits(v))
}

/// The bit pattern of [`exact_f32`]: the top 24 significant bits of `|v|`, rounded up when
/// the first dropped bit is set and either a later dropped bit is set or the kept part is
/// odd.
#[inline(always)]
#[must_use]
pub const fn exact_f32_bits(v: i64) -> u32 {
    if v == 0 {
        return 0;
    }
    let sign = if v < 0 { 0x8000_0000u32 } else { 0 };
    let mag = v.unsigned_abs();
    let top = 63 - mag.leading_zeros(); // index of the highest set bit
    let (mut mant, mut exp) = if top <= 23 {
        ((mag as u32) << (23 - top), top)
    } else {
        let shift = top - 23;
        let kept = (mag >> shift) as u32;
        let round = (mag >> (shift - 1)) & 1 == 1;
        let sticky = mag & ((1u64 << (shift - 1)) - 1) != 0;
        let up = round && (sticky || kept & 1 == 1);
        (kept + up as u32, top)
    };
    if mant == 1 << 24 {
        mant >>= 1;
        exp += 1;
    }
    sign | ((exp + 127) << 23) | (mant & 0x007f_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_f32_matches_rust_casts_at_edges() {
        let mut values = vec![
            0i64,
            1,
            -1,
            2,
            123_456_789,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        // Around every power of two: exact, halfway (ties to even both ways) and sticky.
        for top in 23..63 {
            let p = 1i64 << top;
            for d in [-3, -2, -1, 0, 1, 2, 3] {
                values.push(p + d);
                values.push(-(p + d));
            }
            if top >= 25 {
                let half = 1i64 << (top - 24);
                for d in [half - 1, half, half + 1, 3 * half, 3 * half + 1] {
                    values.push(p + d);
                    values.push(-(p + d));
                }
            }
        }
        for v in values {
            assert_eq!(exact_f32(v).to_bits(), (v as f32).to_bits(), "{v}");
        }
    }

    /// The settlement steps the bound is built for, at full rates and transfers with every
    /// apple in the top bracket: the first `payers` players collected an apple on every
    /// step of the period, the others none; a player sees either all the others or only
    /// those who paid nothing; the types are extreme. Their numerators stay within the
    /// bound, and the worst of them is within 2× of it: half the players paying and a payer
    /// seeing the rest, or, with one-step periods, everyone eating and paying.
    #[test]
    fn the_numerator_bound_holds_and_is_tight_on_the_worst_settlements() {
        use crate::tax::{Bracket, settle};
        let q = TYPE_LEVELS as i64;
        for form in [RewardForm::Paper, RewardForm::ReleasedCode] {
            for (n, period) in [
                (2usize, 50u32),
                (3, 10),
                (7, 1),
                (7, 50),
                (7, 200),
                (1024, 1),
                (1024, 50),
                (4096, 1000),
            ] {
                let bound = form.numerator_bound(n as u32, period);
                let unit = apple_unit(n as u32) as i64;
                let mut worst = 0i128;
                for payers in [1, n / 2, n - 1, n].into_iter().filter(|&k| k >= 1) {
                    let incomes: Vec<u32> = (0..n)
                        .map(|i| if i < payers { period } else { 0 })
                        .collect();
                    let mut net = vec![0; n];
                    settle(
                        &incomes,
                        &[Bracket { lo: 1, hi: 10_000 }],
                        &[10],
                        10,
                        &mut net,
                    );
                    let raw: Vec<i64> = (0..n).map(|i| (i < payers) as i64).collect();
                    let taxed: Vec<i64> = (0..n).map(|i| raw[i] * unit - net[i] as i64).collect();
                    for i in [0, n - 1] {
                        for sees_payers in [true, false] {
                            let seen = (0..n).filter(|&j| j != i && (sees_payers || j >= payers));
                            let seen = Share {
                                taxed: seen.clone().map(|j| taxed[j]).sum(),
                                raw: seen.map(|j| raw[j]).sum(),
                            };
                            let own = Share {
                                taxed: taxed[i],
                                raw: raw[i],
                            };
                            for (sigma, beta) in [(0, 0), (0, q), (q, 0), (q, q)] {
                                let num = form.numerator(unit, own, seen, sigma, beta);
                                worst = worst.max(i128::from(num).abs());
                            }
                        }
                    }
                }
                assert!(
                    worst <= bound,
                    "{form:?} n={n} period={period}: {worst} > {bound}"
                );
                assert!(
                    bound <= 2 * worst,
                    "{form:?} n={n} period={period}: bound {bound} is loose against {worst}"
                );
            }
        }
    }
}
