//! Actions, facings and player types (SPEC §2, §4).

use crate::rng::{self, Stream};

/// The 7 player actions, relative to the player's facing (no zap in the paper's game).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Action {
    /// Do nothing.
    Noop = 0,
    /// Step one cell ahead.
    Forward = 1,
    /// Step one cell back.
    Backward = 2,
    /// Step one cell to the left.
    StepLeft = 3,
    /// Step one cell to the right.
    StepRight = 4,
    /// Turn 90° counter-clockwise.
    TurnLeft = 5,
    /// Turn 90° clockwise.
    TurnRight = 6,
}

impl Action {
    /// Number of actions.
    pub const COUNT: u32 = 7;
    /// All actions, by index.
    pub const ALL: [Action; 7] = [
        Action::Noop,
        Action::Forward,
        Action::Backward,
        Action::StepLeft,
        Action::StepRight,
        Action::TurnLeft,
        Action::TurnRight,
    ];

    /// The action with index `i`, if any.
    #[must_use]
    pub fn from_index(i: u32) -> Option<Self> {
        Self::ALL.get(i as usize).copied()
    }

    /// The direction of a move, as quarter turns clockwise from the facing, or `None`
    /// for actions that do not move.
    #[must_use]
    pub const fn move_quarter_turns(self) -> Option<u32> {
        match self {
            Action::Forward => Some(0),
            Action::StepRight => Some(1),
            Action::Backward => Some(2),
            Action::StepLeft => Some(3),
            _ => None,
        }
    }

    /// The change of facing, in quarter turns clockwise (0 for non-turns).
    #[must_use]
    pub const fn turn_quarter_turns(self) -> u32 {
        match self {
            Action::TurnLeft => 3,
            Action::TurnRight => 1,
            _ => 0,
        }
    }
}

/// Facings: 0 north (up), 1 east, 2 south, 3 west; clockwise order.
pub mod facing {
    /// North (up the map).
    pub const NORTH: u32 = 0;
    /// East.
    pub const EAST: u32 = 1;
    /// South.
    pub const SOUTH: u32 = 2;
    /// West.
    pub const WEST: u32 = 3;

    /// `(d_row, d_col)` of one step in direction `f` (taken modulo 4).
    #[inline(always)]
    #[must_use]
    pub const fn delta(f: u32) -> (i32, i32) {
        match f & 3 {
            NORTH => (-1, 0),
            EAST => (0, 1),
            SOUTH => (1, 0),
            _ => (0, -1),
        }
    }
}

/// A player's position and facing packed into one `u32`: `cell << 2 | facing`. This is
/// the per-player state word of the engines' buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pose(pub u32);

impl Pose {
    /// Packs a cell index and a facing.
    #[inline(always)]
    #[must_use]
    pub const fn new(cell: u32, facing: u32) -> Self {
        Self(cell << 2 | (facing & 3))
    }
    /// The cell index.
    #[inline(always)]
    #[must_use]
    pub const fn cell(self) -> u32 {
        self.0 >> 2
    }
    /// The facing.
    #[inline(always)]
    #[must_use]
    pub const fn facing(self) -> u32 {
        self.0 & 3
    }
}

/// Player types are quantised to multiples of `1 / TYPE_LEVELS`, so that rewards can be
/// computed exactly in integers (see [`crate::reward`]).
pub const TYPE_LEVELS: u32 = 256;

/// The fixed types of the players (SPEC §4): selfishness σᵢ and trust βᵢ, each stored as
/// an integer `k` meaning `k / TYPE_LEVELS`, `k ∈ 0..=TYPE_LEVELS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerTypes {
    /// σᵢ · [`TYPE_LEVELS`].
    pub selfishness: Vec<u32>,
    /// βᵢ · [`TYPE_LEVELS`].
    pub trust: Vec<u32>,
}

impl PlayerTypes {
    /// Draws σᵢ, βᵢ ~ U[0,1] (quantised: uniform over the `TYPE_LEVELS + 1` levels) once
    /// per run from the seed.
    #[must_use]
    pub fn draw(seed: u64, players: usize) -> Self {
        let key = rng::tick_key(rng::run_key(seed), rng::RUN_ENV, 0);
        let level = |s: u32| {
            let stream = Stream::new(key, s);
            (0..players as u32)
                .map(|i| stream.below(i, TYPE_LEVELS + 1))
                .collect()
        };
        Self {
            selfishness: level(rng::stream::SELFISHNESS),
            trust: level(rng::stream::TRUST),
        }
    }

    /// The quantised level of a type value in `[0, 1]` (nearest multiple of 1/256).
    #[must_use]
    pub fn quantise(value: f64) -> u32 {
        (value * TYPE_LEVELS as f64).round() as u32
    }

    /// σᵢ as a float.
    #[must_use]
    pub fn selfishness_f64(&self) -> Vec<f64> {
        self.selfishness
            .iter()
            .map(|&k| k as f64 / TYPE_LEVELS as f64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_by_index() {
        assert_eq!(Action::from_index(0), Some(Action::Noop));
        assert_eq!(Action::from_index(3), Some(Action::StepLeft));
        assert_eq!(Action::from_index(6), Some(Action::TurnRight));
        assert_eq!(Action::from_index(7), None);
    }

    #[test]
    fn drawn_types_cover_both_ends_of_the_unit_interval() {
        // Uniform over the 257 levels 0..=256: 4000 draws reach both 0 and 1.
        let t = PlayerTypes::draw(5, 4000);
        for v in [&t.selfishness, &t.trust] {
            assert_eq!(v.iter().min(), Some(&0));
            assert_eq!(v.iter().max(), Some(&TYPE_LEVELS));
        }
        let f = t.selfishness_f64();
        assert_eq!(f.len(), 4000);
        for (k, x) in t.selfishness.iter().zip(&f) {
            assert_eq!(*x, *k as f64 / 256.0);
        }
    }
}
