//! The one counter-based random number generator of the project.
//!
//! Every random draw in the game is a pure function of
//! `(seed, env, tick, stream, index)`, so any engine — this CPU engine, or the WGSL kernels
//! of `sed-gpu` — reproduces every draw without carrying generator state. It uses only
//! `u32` wrapping multiplication, xor and shifts (WGSL has no 64-bit integers).
//!
//! # Definition (reproduce exactly)
//!
//! ```text
//! mix(x)       = x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
//! run_key      = mix(seed_lo ^ mix(seed_hi ^ 0x5ed5eed0))         // seed = seed_hi:seed_lo
//! tick_key     = mix(mix(run_key ^ env) ^ tick)                    // once per env and step
//! stream_key   = mix(tick_key ^ (stream * 0x9e3779b9))             // once per stream
//! draw(index)  = mix(stream_key ^ index)
//! ```
//!
//! `mix` is Chris Wellons' `lowbias32` integer hash (a bijection on `u32`); all products
//! wrap modulo 2³². `tick` counts the steps an env has taken since the run started (the
//! initial reset uses tick 0, step `k` uses tick `k`, and the auto-reset at the end of step
//! `k` uses tick `k + 1`). Probabilities are compared as integer thresholds
//! (`draw < threshold`, see [`probability_threshold`]); integers in `0..m` are drawn as
//! `draw % m`, whose bias (below `m / 2³²`) is irrelevant for the small `m` used here.

/// Streams: one constant per kind of draw, so that no two kinds share a sequence.
pub mod stream {
    /// Fisher–Yates shuffle of the player processing order (index = position).
    pub const MOVE_ORDER: u32 = 1;
    /// Regrowth of an empty apple cell (index = apple-cell index).
    pub const REGROW: u32 = 2;
    /// Spawn cells at reset (index = running draw counter).
    pub const SPAWN: u32 = 3;
    /// Initial facing at reset (index = player).
    pub const FACING: u32 = 4;
    /// Selfishness σ of each player, drawn once per run (index = player).
    pub const SELFISHNESS: u32 = 5;
    /// Trust β of each player, drawn once per run (index = player).
    pub const TRUST: u32 = 6;
    /// Sampling a player's action: the trainer's noise for row `env · n + player` at each
    /// tick (index = action).
    pub const PLAYER_ACTION: u32 = 7;
    /// Sampling the principal's choice: noise for row `env · brackets + head` on decision
    /// ticks (index = choice).
    pub const PRINCIPAL_CHOICE: u32 = 8;
    /// Fisher–Yates shuffle of the `Q` cells at reset, which decides which of the first
    /// players stands on which (index = position).
    pub const INSIDE_ORDER: u32 = 9;
}

/// The `env` value used for per-run draws (player types), which belong to no env.
pub const RUN_ENV: u32 = u32::MAX;

/// Chris Wellons' `lowbias32`: a fast bijective `u32` hash with low bias.
#[inline(always)]
#[must_use]
pub const fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The per-run key derived from a 64-bit seed.
#[inline]
#[must_use]
pub const fn run_key(seed: u64) -> u32 {
    let lo = seed as u32;
    let hi = (seed >> 32) as u32;
    mix(lo ^ mix(hi ^ 0x5ed5_eed0))
}

/// The run key of the envs of device `rank` when a run's envs are split over several
/// devices: rank 0 keeps the run's key (a one-device run is unchanged), every other rank
/// gets `mix(run_key ^ mix(rank ^ 0x5a4d_0000))`, so no two devices play the same worlds.
/// Player types are drawn from the seed, not from this key, so every device has the same
/// players.
#[inline]
#[must_use]
pub const fn shard_key(run_key: u32, rank: u32) -> u32 {
    if rank == 0 {
        run_key
    } else {
        mix(run_key ^ mix(rank ^ 0x5a4d_0000))
    }
}

/// The key of one env at one tick; every draw of that step derives from it.
#[inline(always)]
#[must_use]
pub const fn tick_key(run_key: u32, env: u32, tick: u32) -> u32 {
    mix(mix(run_key ^ env) ^ tick)
}

/// A stream of draws under one tick key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream(u32);

impl Stream {
    /// The stream `stream` (one of [`stream`]'s constants) under `tick_key`.
    #[inline(always)]
    #[must_use]
    pub const fn new(tick_key: u32, stream: u32) -> Self {
        Self(mix(tick_key ^ stream.wrapping_mul(0x9e37_79b9)))
    }

    /// The `index`-th draw of this stream: a uniform `u32`.
    #[inline(always)]
    #[must_use]
    pub const fn draw(self, index: u32) -> u32 {
        mix(self.0 ^ index)
    }

    /// The `index`-th draw reduced to `0..m` (`m > 0`).
    #[inline(always)]
    #[must_use]
    pub const fn below(self, index: u32, m: u32) -> u32 {
        self.draw(index) % m
    }
}

/// A draw mapped to a uniform `f32` in the open interval (0, 1): `(draw >> 9 + 0.5) · 2⁻²³`.
/// Every step is exact in `f32` (23-bit integers, a half, a power of two), so any device
/// computes the same bits.
#[inline(always)]
#[must_use]
pub fn unit_open(draw: u32) -> f32 {
    ((draw >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// The `index`-th uniform of `stream` for row `row` at `tick`: the noise the trainer turns
/// into samples (Gumbel-max), reproduced bit for bit by `sed-gpu`'s noise kernel.
#[inline]
#[must_use]
pub fn policy_uniform(run_key: u32, stream: u32, row: u32, tick: u32, index: u32) -> f32 {
    unit_open(Stream::new(tick_key(run_key, row, tick), stream).draw(index))
}

/// The integer threshold `t` such that `draw < t` has probability `p` (rounded to the
/// nearest multiple of 2⁻³²). `p` must lie in `[0, 1]`; `p = 1` maps to `u32::MAX`, a
/// probability of 1 − 2⁻³².
#[must_use]
pub fn probability_threshold(p: f64) -> u32 {
    debug_assert!((0.0..=1.0).contains(&p));
    let scaled = (p * 4_294_967_296.0).round();
    if scaled >= u32::MAX as f64 {
        u32::MAX
    } else {
        scaled as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_open_stays_inside_the_open_interval() {
        assert_eq!(unit_open(0), 0.5 / 8_388_608.0);
        assert!(unit_open(u32::MAX) < 1.0);
        assert!(unit_open(u32::MAX) > 0.999_999);
        assert_eq!(unit_open(1 << 31), 0.5 + 0.5 / 8_388_608.0);
    }

    #[test]
    fn mix_pins_known_values() {
        // Pinned so that the WGSL port can be checked against the same numbers.
        // Values computed independently (Python) from the definition in the module doc.
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x6889_90c0);
        assert_eq!(mix(0xdead_beef), 0xe628_c683);
        assert_eq!(run_key(42), 0x955a_f7d9);
        let k = tick_key(run_key(42), 5, 1000);
        assert_eq!(k, 0x3dd0_5829);
        let s = Stream::new(k, stream::REGROW);
        assert_eq!(
            [s.draw(0), s.draw(1), s.draw(2)],
            [0xa8c4_f272, 0x85a6_9cda, 0x852c_3c2b]
        );
    }

    #[test]
    fn shard_keys_keep_rank_zero_and_differ() {
        let k = run_key(42);
        assert_eq!(shard_key(k, 0), k);
        let keys: std::collections::BTreeSet<u32> = (0..64).map(|r| shard_key(k, r)).collect();
        assert_eq!(keys.len(), 64);
        assert_eq!(shard_key(k, 1), mix(k ^ mix(0x5a4d_0001)));
    }

    #[test]
    fn streams_and_indices_differ() {
        let k = tick_key(run_key(7), 3, 11);
        let a = Stream::new(k, stream::REGROW);
        let b = Stream::new(k, stream::SPAWN);
        assert_ne!(a.draw(0), b.draw(0));
        assert_ne!(a.draw(0), a.draw(1));
    }

    #[test]
    fn thresholds() {
        assert_eq!(probability_threshold(0.0), 0);
        assert_eq!(probability_threshold(1.0), u32::MAX);
        assert_eq!(probability_threshold(0.5), 1 << 31);
        assert_eq!(probability_threshold(0.025), 107_374_182);
    }
}
