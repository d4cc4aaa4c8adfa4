//! Observations (SPEC §3): the players' egocentric windows, the visibility relation and
//! the principal's global view.
//!
//! # Symbolic encoding
//!
//! One byte per cell, one bit per channel ([`bits`]): wall, apple, grass (an empty apple
//! cell with at least one live neighbour, so it can still regrow: Melting Pot's grass vs.
//! dried-grass cue), self, other player, out of bounds, and in the top two bits the other
//! player's facing relative to the observer's (0 same, 1 a quarter turn clockwise, …).
//! A player's window is [`WINDOW_CELLS`] bytes, row-major from the top-left, padded with
//! zeros to [`OBS_STRIDE`] bytes so that rows of the buffer are whole `u32` words.
//!
//! # Window
//!
//! 11 × 11 cells: 9 ahead, 1 behind, 5 to each side; the player's own cell is window row
//! [`SELF_ROW`], column [`SELF_COL`]; the window turns with the player so forward is up.
//! Player j is visible to player i when j's cell lies in i's window (no occlusion).

use crate::types::facing;

/// Cells seen ahead of the player.
pub const VIEW_FORWARD: i32 = 9;
/// Cells seen behind the player.
pub const VIEW_BACKWARD: i32 = 1;
/// Cells seen to each side.
pub const VIEW_SIDE: i32 = 5;
/// Window rows.
pub const WINDOW_ROWS: usize = (VIEW_FORWARD + 1 + VIEW_BACKWARD) as usize;
/// Window columns.
pub const WINDOW_COLS: usize = (2 * VIEW_SIDE + 1) as usize;
/// Cells per window.
pub const WINDOW_CELLS: usize = WINDOW_ROWS * WINDOW_COLS;
/// Bytes per player in the observation buffer (a multiple of 4).
pub const OBS_STRIDE: usize = WINDOW_CELLS.next_multiple_of(4);
/// The player's own window row.
pub const SELF_ROW: usize = VIEW_FORWARD as usize;
/// The player's own window column.
pub const SELF_COL: usize = VIEW_SIDE as usize;

/// Channel bits of an observation byte.
pub mod bits {
    /// A wall.
    pub const WALL: u8 = 1 << 0;
    /// A live apple.
    pub const APPLE: u8 = 1 << 1;
    /// An empty apple cell with at least one live neighbour.
    pub const GRASS: u8 = 1 << 2;
    /// The observer itself (player views only).
    pub const SELF: u8 = 1 << 3;
    /// Another player (in the principal's view: any player).
    pub const OTHER: u8 = 1 << 4;
    /// Outside the map.
    pub const OUT_OF_BOUNDS: u8 = 1 << 5;
    /// Shift of the 2-bit facing of the player in the cell: relative to the observer in
    /// player views, absolute in the principal's view.
    pub const FACING_SHIFT: u32 = 6;
}

/// The map offset `(d_row, d_col)` of window cell `(wr, wc)` for a player facing `f`.
#[inline]
#[must_use]
pub const fn window_offset(f: u32, wr: usize, wc: usize) -> (i32, i32) {
    let ahead = VIEW_FORWARD - wr as i32;
    let right = wc as i32 - VIEW_SIDE;
    let (fr, fc) = facing::delta(f);
    let (rr, rc) = facing::delta(f + 1);
    (ahead * fr + right * rr, ahead * fc + right * rc)
}

/// Where a cell at map offset `(dr, dc)` from a player facing `f` appears in its window,
/// if it does.
#[inline(always)]
#[must_use]
pub const fn window_position(f: u32, dr: i32, dc: i32) -> Option<(usize, usize)> {
    let (fr, fc) = facing::delta(f);
    let (rr, rc) = facing::delta(f + 1);
    let ahead = dr * fr + dc * fc;
    let right = dr * rr + dc * rc;
    if ahead <= VIEW_FORWARD && ahead >= -VIEW_BACKWARD && right.abs() <= VIEW_SIDE {
        Some((
            (VIEW_FORWARD - ahead) as usize,
            (VIEW_SIDE + right) as usize,
        ))
    } else {
        None
    }
}

/// Principal feature vector length: n post-tax period incomes, one rate per bracket, the
/// position inside the tax period and the position inside the voting round (both in
/// [0, 1)).
#[must_use]
pub const fn principal_features(players: usize, brackets: usize) -> usize {
    players + brackets + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_round_trips() {
        for f in 0..4 {
            for wr in 0..WINDOW_ROWS {
                for wc in 0..WINDOW_COLS {
                    let (dr, dc) = window_offset(f, wr, wc);
                    assert_eq!(window_position(f, dr, dc), Some((wr, wc)));
                }
            }
        }
        assert_eq!(window_position(0, 2, 0), None);
        assert_eq!(window_position(0, -10, 0), None);
    }
}
