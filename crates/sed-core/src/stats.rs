//! Episode statistics: the fixed per-env layout of [`crate::engine::State::stats`] and its
//! reduction on the host, once per rollout.
//!
//! Per env, fixed offsets of `u32` words. Post-tax incomes are `i32` (as `u32` bits) in
//! apple units ([`crate::reward::apple_unit`]).

/// Episodes completed.
pub const EPISODES: usize = 0;
/// Tax revenue of the last completed episode, in tenths of an apple.
pub const LAST_REVENUE: usize = 1;
/// Live apples when the last episode ended.
pub const LAST_APPLES_LEFT: usize = 2;
/// Tax revenue of the current episode so far.
pub const CUR_REVENUE: usize = 3;
/// Start of the per-player blocks: last episode's raw apples, last episode's post-tax
/// income, current episode's raw apples, current episode's post-tax income.
pub const PLAYER_BLOCKS: usize = 4;

/// Words per env with `n` players.
#[must_use]
pub const fn len(n: usize) -> usize {
    PLAYER_BLOCKS + 4 * n
}
/// Offset of the last episode's raw apples.
#[must_use]
pub const fn last_apples(_n: usize) -> usize {
    PLAYER_BLOCKS
}
/// Offset of the last episode's post-tax income.
#[must_use]
pub const fn last_post_tax(n: usize) -> usize {
    PLAYER_BLOCKS + n
}
/// Offset of the current episode's raw apples.
#[must_use]
pub const fn cur_apples(n: usize) -> usize {
    PLAYER_BLOCKS + 2 * n
}
/// Offset of the current episode's post-tax income.
#[must_use]
pub const fn cur_post_tax(n: usize) -> usize {
    PLAYER_BLOCKS + 3 * n
}

/// Means over the envs' last completed episodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Envs that have completed at least one episode.
    pub envs: usize,
    /// Episodes completed, summed over envs.
    pub episodes: u64,
    /// Raw apples collected per episode by all players (productivity).
    pub apples: f64,
    /// 1 − Gini of the players' post-tax incomes, normalised to [0, 1] (AI Economist).
    pub equality: f64,
    /// Tax revenue per episode, in apples.
    pub tax_revenue: f64,
    /// Live apples when the episode ended (sustainability).
    pub apples_left: f64,
}

/// Reduces the statistics buffer of `players`-player envs.
#[must_use]
pub fn summarise(stats: &[u32], players: usize) -> Summary {
    let n = players;
    let unit = crate::reward::apple_unit(n as u32) as f64;
    let mut s = Summary::default();
    for env in stats.chunks_exact(len(n)).filter(|e| e[EPISODES] > 0) {
        s.envs += 1;
        s.episodes += env[EPISODES] as u64;
        s.apples += env[last_apples(n)..last_apples(n) + n]
            .iter()
            .map(|&a| a as f64)
            .sum::<f64>();
        let income: Vec<f64> = env[last_post_tax(n)..last_post_tax(n) + n]
            .iter()
            .map(|&v| v as i32 as f64 / unit)
            .collect();
        s.equality += equality(&income);
        s.tax_revenue += env[LAST_REVENUE] as f64 / 10.0;
        s.apples_left += env[LAST_APPLES_LEFT] as f64;
    }
    if s.envs > 0 {
        let k = s.envs as f64;
        s.apples /= k;
        s.equality /= k;
        s.tax_revenue /= k;
        s.apples_left /= k;
    }
    s
}

/// `1 − G · n / (n − 1)` with G the Gini coefficient; 1 for perfect equality (and for
/// zero total income or a single player).
#[must_use]
pub fn equality(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let total: f64 = x.iter().sum();
    if x.len() < 2 || total <= 0.0 {
        return 1.0;
    }
    let diffs: f64 = x
        .iter()
        .flat_map(|a| x.iter().map(move |b| (a - b).abs()))
        .sum();
    let gini = diffs / (2.0 * n * total);
    1.0 - gini * n / (n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_extremes() {
        assert_eq!(equality(&[3.0, 3.0, 3.0]), 1.0);
        assert!(equality(&[0.0, 0.0, 9.0]).abs() < 1e-12);
    }
}
