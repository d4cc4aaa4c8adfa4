//! Bracket taxes, settlement and equal redistribution (SPEC §4, AI Economist semantics).
//!
//! Rates are integers in tenths (`k` means `k / 10`, the principal's 11 levels), incomes
//! are whole apples, so every tax is an exact number of tenths of an apple and every net
//! transfer an exact multiple of `1 / (10 n)`.

/// One inclusive bracket of apple counts `lo..=hi` (`1 ≤ lo ≤ hi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bracket {
    /// First taxed apple of the bracket.
    pub lo: u32,
    /// Last taxed apple of the bracket.
    pub hi: u32,
}

/// Number of rate levels above zero: rate choice `k ∈ 0..=RATE_LEVELS` means `k / 10`.
pub const RATE_LEVELS: u32 = 10;

/// The tax on period income `x` in tenths of an apple:
/// `10 · T(x) = Σ_b k_b · max(0, min(x, hi_b) − lo_b + 1)` with rates `k_b` in tenths.
#[inline]
#[must_use]
pub fn tax_tenths(x: u32, brackets: &[Bracket], rates_tenths: &[u32]) -> u32 {
    brackets
        .iter()
        .zip(rates_tenths)
        .map(|(b, &k)| {
            let top = x.min(b.hi);
            if top >= b.lo { k * (top - b.lo + 1) } else { 0 }
        })
        .sum()
}

/// Settles one tax period: writes each player's net transfer into `net` in units of
/// `1 / (10 n · 10)` apple, scaled by the transfer multiplier `multiplier_tenths`
/// (10 = full transfers), and returns the revenue in tenths of an apple.
///
/// `net_i = m · (n · 10·T(x_i) − 10·R)`, where `R = Σ_j T(x_j)` is shared equally: the
/// nets sum to exactly zero, so redistribution creates and destroys nothing.
pub fn settle(
    incomes: &[u32],
    brackets: &[Bracket],
    rates_tenths: &[u32],
    multiplier_tenths: u32,
    net: &mut [i32],
) -> u32 {
    let n = incomes.len() as i32;
    let mut revenue = 0u32;
    for (x, out) in incomes.iter().zip(net.iter_mut()) {
        let t = tax_tenths(*x, brackets, rates_tenths);
        revenue += t;
        *out = n * t as i32;
    }
    for out in net.iter_mut() {
        *out = multiplier_tenths as i32 * (*out - revenue as i32);
    }
    revenue
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAPER: [Bracket; 3] = [
        Bracket { lo: 1, hi: 10 },
        Bracket { lo: 11, hi: 20 },
        Bracket { lo: 21, hi: 10_000 },
    ];

    #[test]
    fn spec_examples() {
        let rates = [1, 5, 10];
        assert_eq!(tax_tenths(0, &PAPER, &rates), 0);
        assert_eq!(tax_tenths(5, &PAPER, &rates), 5); // 0.5
        assert_eq!(tax_tenths(15, &PAPER, &rates), 35); // 3.5
        assert_eq!(tax_tenths(25, &PAPER, &rates), 110); // 11
    }

    #[test]
    fn redistribution_example() {
        // Incomes [25,15,5,0,0,0,0]: taxes [11,3.5,0.5,0...], R = 15, each gets 15/7.
        let mut net = [0; 7];
        let r = settle(&[25, 15, 5, 0, 0, 0, 0], &PAPER, &[1, 5, 10], 10, &mut net);
        assert_eq!(r, 150);
        // Units are 1/700 apple: 8.857142… apple = 6200/700.
        assert_eq!(net[0], 6200);
        assert_eq!(net[3], -1500);
        assert_eq!(net.iter().sum::<i32>(), 0);
    }
}
