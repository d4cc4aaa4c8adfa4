//! Player rewards in exact arithmetic (SPEC §4).
//!
//! Each reward is a rational number `num / den` whose numerator is an exact `i32` and
//! whose denominator depends only on the config. The float reward is
//! `exact_f32(num) * (1 / den)`: one deterministic integer-to-float rounding
//! ([`exact_f32`]) and one IEEE multiplication. A GPU gets the same bits, whatever its
//! compiler does with fused multiply-adds, because no float addition ever takes place.
//!
//! Units: apples after tax are counted in units of `1 / (100 n)` apple
//! ([`apple_unit`]): 10 for rates in tenths, `n` for the equal share, 10 for the transfer
//! multiplier in tenths.

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
    pub taxed: i32,
    /// Raw apples.
    pub raw: i32,
}

/// Units per apple of after-tax amounts with `n` players.
#[must_use]
pub const fn apple_unit(players: u32) -> i32 {
    100 * players as i32
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
    pub fn numerator(self, unit: i32, own: Share, seen: Share, sigma: i32, beta: i32) -> i32 {
        let q = TYPE_LEVELS as i32;
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
    #[must_use]
    pub fn numerator_bound(self, players: u32, tax_period: u32) -> i64 {
        let n = players as i64;
        let q = TYPE_LEVELS as i64;
        let unit = apple_unit(players) as i64;
        // |net| ≤ m · (n − 1) · 10 · x with x ≤ tax_period, m ≤ 10.
        let net = 10 * (n - 1) * 10 * tax_period as i64;
        let own = unit + net;
        let seen = (n - 1) * unit + net;
        match self {
            RewardForm::Paper => q * own.max(seen),
            RewardForm::ReleasedCode => q * (q * own).max(unit * q * (n - 1)),
        }
    }
}

/// Converts an `i32` to the nearest `f32`, ties to even, in integer arithmetic only.
///
/// Equal to `v as f32`; written out so the WGSL port computes the same bits (WGSL leaves
/// the rounding of inexact integer-to-float conversions to the implementation).
#[inline(always)]
#[must_use]
pub const fn exact_f32(v: i32) -> f32 {
    f32::from_bits(exact_f32_bits(v))
}

/// The bit pattern of [`exact_f32`].
#[inline(always)]
#[must_use]
pub const fn exact_f32_bits(v: i32) -> u32 {
    if v == 0 {
        return 0;
    }
    let sign = if v < 0 { 0x8000_0000u32 } else { 0 };
    let mag = v.unsigned_abs();
    let top = 31 - mag.leading_zeros(); // index of the highest set bit
    let (mut mant, mut exp) = if top <= 23 {
        (mag << (23 - top), top)
    } else {
        let shift = top - 23;
        let m = mag >> shift;
        let rem = mag & ((1u32 << shift) - 1);
        let half = 1u32 << (shift - 1);
        let up = rem > half || (rem == half && (m & 1) == 1);
        (m + up as u32, top)
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
        for v in [
            0,
            1,
            -1,
            2,
            (1 << 24) - 1,
            1 << 24,
            (1 << 24) + 1,
            (1 << 24) + 3,
            (1 << 25) + 2,
            (1 << 25) + 6,
            i32::MAX,
            i32::MIN,
            i32::MIN + 1,
            -((1 << 24) + 1),
            123_456_789,
        ] {
            assert_eq!(exact_f32(v).to_bits(), (v as f32).to_bits(), "{v}");
        }
    }

    /// The worst settlement step the bound is built for: player 0 collected an apple on
    /// every step of the period and ate one more now, nobody else ate, every rate is 1.0 at
    /// full transfers, everyone is visible to everyone and the types are extreme. The
    /// numerators of that step stay within the bound, and the bound is not much looser.
    #[test]
    fn the_numerator_bound_holds_and_is_tight_on_the_worst_settlement() {
        use crate::tax::{Bracket, settle};
        let q = TYPE_LEVELS as i32;
        for form in [RewardForm::Paper, RewardForm::ReleasedCode] {
            for (n, period) in [(2usize, 50u32), (3, 10), (7, 50), (7, 200)] {
                let bound = form.numerator_bound(n as u32, period);
                if bound > i32::MAX as i64 {
                    continue; // refused at config time
                }
                let unit = apple_unit(n as u32);
                let mut incomes = vec![0; n];
                incomes[0] = period;
                let mut net = vec![0; n];
                settle(
                    &incomes,
                    &[Bracket { lo: 1, hi: 10_000 }],
                    &[10],
                    10,
                    &mut net,
                );
                let taxed: Vec<i32> = (0..n)
                    .map(|i| if i == 0 { unit } else { 0 } - net[i])
                    .collect();
                let raw: Vec<i32> = (0..n).map(|i| (i == 0) as i32).collect();
                let mut worst = 0i64;
                for i in 0..n {
                    let seen = Share {
                        taxed: (0..n).filter(|&j| j != i).map(|j| taxed[j]).sum(),
                        raw: (0..n).filter(|&j| j != i).map(|j| raw[j]).sum(),
                    };
                    let own = Share {
                        taxed: taxed[i],
                        raw: raw[i],
                    };
                    for (sigma, beta) in [(0, 0), (0, q), (q, 0), (q, q)] {
                        let num = form.numerator(unit, own, seen, sigma, beta);
                        worst = worst.max((num as i64).abs());
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
