//! A text rendering of one env, for tests, debugging and a future `play` mode.
//!
//! `W` wall, `A` live apple, `a` empty apple cell that can regrow, `.` dead apple cell
//! (no live neighbour), space floor, and players as `0-9` then `a-z`-free letters
//! `B`..; a last line lists each player's facing.

use crate::engine::{Layout, State};
use crate::map::{Map, Tile};
use crate::types::Pose;

const PLAYER_GLYPHS: &[u8] = b"0123456789BCDEFGHIJKLMNOPRSTUVXYZ";
const FACING_GLYPHS: [char; 4] = ['^', '>', 'v', '<'];

/// Renders env `env` of `state`.
#[must_use]
pub fn render(map: &Map, layout: &Layout, state: &State, env: usize) -> String {
    let n = layout.players;
    let w = layout.apple_words;
    let apples = &state.apples[env * w..(env + 1) * w];
    let live = |a: u32| apples[(a >> 5) as usize] >> (a & 31) & 1 == 1;
    let poses = &state.pose[env * n..(env + 1) * n];
    let mut out = String::with_capacity(map.cells() + map.rows as usize + 64);
    for r in 0..map.rows {
        for c in 0..map.cols {
            let cell = r * map.cols + c;
            let glyph = if let Some(i) = poses.iter().position(|&p| Pose(p).cell() == cell) {
                PLAYER_GLYPHS[i] as char
            } else {
                match map.tiles[cell as usize] {
                    Tile::Wall => 'W',
                    Tile::Apple => {
                        let a = map.apple_index[cell as usize];
                        if live(a) {
                            'A'
                        } else if map.neighbours_of(a as usize).iter().any(|&b| live(b)) {
                            'a'
                        } else {
                            '.'
                        }
                    }
                    _ => ' ',
                }
            };
            out.push(glyph);
        }
        out.push('\n');
    }
    out.push_str(&format!("t={} facing:", state.t[env]));
    for (i, &p) in poses.iter().enumerate() {
        out.push_str(&format!(
            " {}{}",
            PLAYER_GLYPHS[i] as char,
            FACING_GLYPHS[Pose(p).facing() as usize]
        ));
    }
    out.push('\n');
    out
}
