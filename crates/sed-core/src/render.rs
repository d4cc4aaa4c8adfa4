//! Pictures of an env: text for tests and debugging ([`render`]), and pixels in Melting
//! Pot's look, 8 × 8 per cell ([`world_pixels`] for the whole map with players coloured
//! by id, [`window_pixels`] for a player's 11 × 11 window: SPEC §3's 88 × 88 × 3 RGB
//! observation). Pixels are indices into [`PALETTE`] (a GIF frame as it is; [`to_rgb`]
//! for RGB).
//!
//! Text: `W` wall, `A` live apple, `a` empty apple cell that can regrow, `.` dead apple
//! cell (no live neighbour), space floor, and players as `0-9` then `a-z`-free letters
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

/// Pixels per cell side.
pub const CELL_PX: usize = 8;

/// The colours of every picture, RGB: the fixed ones ([`colour`]), then
/// [`PLAYER_COLOURS`] colours for players (player `i` takes `colour::PLAYER + i mod
/// PLAYER_COLOURS`), each followed by a darker shade for its facing mark.
pub static PALETTE: std::sync::LazyLock<Vec<[u8; 3]>> = std::sync::LazyLock::new(|| {
    let mut p = vec![
        // In the order of the indices in `colour`.
        [0, 0, 0],
        [232, 220, 184],
        [86, 170, 62],
        [168, 150, 104],
        [214, 36, 40],
        [110, 110, 118],
        [70, 70, 78],
        [255, 255, 255],
        [40, 40, 48],
        [240, 190, 40],
        [60, 110, 230],
        [30, 55, 115],
        [150, 60, 200],
        [75, 30, 100],
    ];
    for i in 0..PLAYER_COLOURS {
        // Hues around the wheel by the golden angle, so neighbours by id differ most.
        let hue = (i as f64 * 137.507_764) % 360.0;
        let rgb = hsv(hue, 0.75, 0.95);
        p.push(rgb);
        p.push(rgb.map(|c| c / 3));
    }
    p
});

/// Distinct player colours; players beyond them reuse them in order.
pub const PLAYER_COLOURS: usize = 64;

/// Indices of the fixed colours in [`PALETTE`].
pub mod colour {
    /// Off the map.
    pub const OUT_OF_BOUNDS: u8 = 0;
    /// Floor and spawn cells: sand.
    pub const FLOOR: u8 = 1;
    /// An empty apple cell that can regrow.
    pub const GRASS: u8 = 2;
    /// An empty apple cell with no live neighbour: dried grass.
    pub const DRY: u8 = 3;
    /// A live apple.
    pub const APPLE: u8 = 4;
    /// A wall, inside its edge.
    pub const WALL: u8 = 5;
    /// A wall's edge.
    pub const WALL_EDGE: u8 = 6;
    /// Text in side panels.
    pub const TEXT: u8 = 7;
    /// A side panel's background.
    pub const PANEL: u8 = 8;
    /// Bars in side panels.
    pub const BAR: u8 = 9;
    /// The observer in a window (its facing mark is the next index).
    pub const SELF: u8 = 10;
    /// Another player in a window (its facing mark is the next index).
    pub const OTHER: u8 = 12;
    /// Player 0's colour (its facing mark is the next index).
    pub const PLAYER: u8 = 14;
}

fn hsv(h: f64, s: f64, v: f64) -> [u8; 3] {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r, g, b].map(|k| ((k + v - c) * 255.0).round() as u8)
}

/// The colour of player `i` (its facing mark is the next index).
#[must_use]
pub fn player_colour(i: usize) -> u8 {
    colour::PLAYER + 2 * (i % PLAYER_COLOURS) as u8
}

/// A picture of palette indices, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height` indices into [`PALETTE`].
    pub data: Vec<u8>,
}

impl Pixels {
    /// A picture filled with `fill`.
    #[must_use]
    pub fn new(width: usize, height: usize, fill: u8) -> Self {
        Self {
            width,
            height,
            data: vec![fill; width * height],
        }
    }

    /// Fills the rectangle at `(x, y)` of size `w × h` (clipped to the picture).
    pub fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, c: u8) {
        for row in y..(y + h).min(self.height) {
            let start = row * self.width;
            self.data[start + x.min(self.width)..start + (x + w).min(self.width)].fill(c);
        }
    }

    /// Copies `other` in at `(x, y)` (clipped).
    pub fn blit(&mut self, other: &Pixels, x: usize, y: usize) {
        for row in 0..other.height.min(self.height.saturating_sub(y)) {
            let w = other.width.min(self.width.saturating_sub(x));
            let dst = (y + row) * self.width + x;
            self.data[dst..dst + w].copy_from_slice(&other.data[row * other.width..][..w]);
        }
    }

    /// The picture as RGB bytes.
    #[must_use]
    pub fn to_rgb(&self) -> Vec<u8> {
        to_rgb(&self.data)
    }
}

/// Palette indices as RGB bytes.
#[must_use]
pub fn to_rgb(indices: &[u8]) -> Vec<u8> {
    indices.iter().flat_map(|&i| PALETTE[i as usize]).collect()
}

/// What a cell shows, for [`paint_cell`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Off the map.
    OutOfBounds,
    /// Floor (and spawn cells).
    Floor,
    /// A wall.
    Wall,
    /// A live apple.
    Apple,
    /// An empty apple cell that can regrow.
    Grass,
    /// An empty apple cell with no live neighbour.
    Dry,
}

/// Paints one cell at cell coordinates `(row, col)`: its ground, then a player of colour
/// `player` facing `facing` (0 up, 1 right, 2 down, 3 left in the picture), if any.
pub fn paint_cell(px: &mut Pixels, row: usize, col: usize, cell: Cell, player: Option<(u8, u32)>) {
    let (x, y) = (col * CELL_PX, row * CELL_PX);
    match cell {
        Cell::OutOfBounds => px.fill(x, y, CELL_PX, CELL_PX, colour::OUT_OF_BOUNDS),
        Cell::Floor => px.fill(x, y, CELL_PX, CELL_PX, colour::FLOOR),
        Cell::Grass => px.fill(x, y, CELL_PX, CELL_PX, colour::GRASS),
        Cell::Dry => px.fill(x, y, CELL_PX, CELL_PX, colour::DRY),
        Cell::Wall => {
            px.fill(x, y, CELL_PX, CELL_PX, colour::WALL_EDGE);
            px.fill(x + 1, y + 1, CELL_PX - 2, CELL_PX - 2, colour::WALL);
        }
        Cell::Apple => {
            px.fill(x, y, CELL_PX, CELL_PX, colour::GRASS);
            // A round apple: rows of widths 2, 4, 6, 6, 4, 2 centred in the cell.
            for (dy, w) in [2, 4, 6, 6, 4, 2].into_iter().enumerate() {
                px.fill(x + (CELL_PX - w) / 2, y + 1 + dy, w, 1, colour::APPLE);
            }
        }
    }
    if let Some((c, facing)) = player {
        px.fill(x + 1, y + 1, CELL_PX - 2, CELL_PX - 2, c);
        // The facing: a dark bar along the side the player faces.
        let (bx, by, bw, bh) = match facing & 3 {
            0 => (x + 2, y + 1, CELL_PX - 4, 2),
            1 => (x + CELL_PX - 3, y + 2, 2, CELL_PX - 4),
            2 => (x + 2, y + CELL_PX - 3, CELL_PX - 4, 2),
            _ => (x + 1, y + 2, 2, CELL_PX - 4),
        };
        px.fill(bx, by, bw, bh, c + 1);
    }
}

/// The whole map of env `env`, 8 × 8 pixels per cell, players coloured by id with their
/// facing.
#[must_use]
pub fn world_pixels(map: &Map, layout: &Layout, state: &State, env: usize) -> Pixels {
    let n = layout.players;
    let w = layout.apple_words;
    let apples = &state.apples[env * w..(env + 1) * w];
    let live = |a: u32| apples[(a >> 5) as usize] >> (a & 31) & 1 == 1;
    let mut px = Pixels::new(map.cols as usize * CELL_PX, map.rows as usize * CELL_PX, 0);
    let mut standing = vec![None; map.cells()];
    for (i, &p) in state.pose[env * n..(env + 1) * n].iter().enumerate() {
        standing[Pose(p).cell() as usize] = Some((player_colour(i), Pose(p).facing()));
    }
    for (cell, &tile) in map.tiles.iter().enumerate() {
        let ground = match tile {
            Tile::Wall => Cell::Wall,
            Tile::Apple => {
                let a = map.apple_index[cell];
                if live(a) {
                    Cell::Apple
                } else if map.neighbours_of(a as usize).iter().any(|&b| live(b)) {
                    Cell::Grass
                } else {
                    Cell::Dry
                }
            }
            _ => Cell::Floor,
        };
        let (r, c) = (cell / map.cols as usize, cell % map.cols as usize);
        paint_cell(&mut px, r, c, ground, standing[cell]);
    }
    px
}

/// A player's window from its observation bytes (SPEC §3): 88 × 88 pixels, forward up,
/// the player in [`colour::SELF`] and the others in [`colour::OTHER`] with their facing
/// relative to it (symbolic observations carry no ids). An empty apple cell without the
/// grass bit shows as floor, as in the symbolic view.
#[must_use]
pub fn window_pixels(window: &[u8]) -> Pixels {
    use crate::obs::{WINDOW_COLS, WINDOW_ROWS};
    let mut px = Pixels::new(WINDOW_COLS * CELL_PX, WINDOW_ROWS * CELL_PX, 0);
    for (k, &b) in window[..WINDOW_ROWS * WINDOW_COLS].iter().enumerate() {
        let (ground, player) = window_cell(b);
        paint_cell(&mut px, k / WINDOW_COLS, k % WINDOW_COLS, ground, player);
    }
    px
}

/// What a window cell shows, from its observation byte: the ground, and the player in it
/// (the observer, or another player with its facing).
fn window_cell(b: u8) -> (Cell, Option<(u8, u32)>) {
    use crate::obs::bits;
    let ground = if b & bits::OUT_OF_BOUNDS != 0 {
        Cell::OutOfBounds
    } else if b & bits::WALL != 0 {
        Cell::Wall
    } else if b & bits::APPLE != 0 {
        Cell::Apple
    } else if b & bits::GRASS != 0 {
        Cell::Grass
    } else {
        Cell::Floor
    };
    let player = if b & bits::SELF != 0 {
        Some((colour::SELF, 0))
    } else if b & bits::OTHER != 0 {
        Some((colour::OTHER, u32::from(b >> bits::FACING_SHIFT)))
    } else {
        None
    };
    (ground, player)
}

/// The `CELL_PX × CELL_PX` picture of a window cell whose observation byte is `b`. A
/// window's picture is its cells' pictures side by side (each depends on its byte alone),
/// so a device can render RGB observations with one lookup in a table of these.
#[must_use]
pub fn cell_pixels(b: u8) -> Pixels {
    let mut px = Pixels::new(CELL_PX, CELL_PX, 0);
    let (ground, player) = window_cell(b);
    paint_cell(&mut px, 0, 0, ground, player);
    px
}

/// Bytes of one RGB window observation: 88 × 88 pixels × 3 (SPEC §3's RGB option, as
/// the released code).
pub const RGB_WINDOW_BYTES: usize = WINDOW_PX * WINDOW_PX * 3;

/// Pixels per side of a window picture.
const WINDOW_PX: usize = crate::obs::WINDOW_COLS * CELL_PX;

/// SPEC §3's RGB observations of every player from the symbolic ones (`Outputs::obs`,
/// [`crate::obs::OBS_STRIDE`] bytes per player): [`RGB_WINDOW_BYTES`] per player, row-major
/// RGB, in the same player order. Computed on the CPU, in parallel over players.
#[must_use]
pub fn rgb_observations(obs: &[u8]) -> Vec<u8> {
    use rayon::prelude::*;
    let stride = crate::obs::OBS_STRIDE;
    let mut out = vec![0u8; obs.len() / stride * RGB_WINDOW_BYTES];
    out.par_chunks_exact_mut(RGB_WINDOW_BYTES)
        .zip(obs.par_chunks_exact(stride))
        .for_each(|(rgb, window)| {
            for (dst, &index) in rgb.chunks_exact_mut(3).zip(&window_pixels(window).data) {
                dst.copy_from_slice(&PALETTE[index as usize]);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::{SELF_COL, SELF_ROW, WINDOW_CELLS, WINDOW_COLS, bits};

    /// The colour at pixel `(x, y)` of cell `(row, col)`.
    fn at(px: &Pixels, row: usize, col: usize, x: usize, y: usize) -> u8 {
        px.data[(row * CELL_PX + y) * px.width + col * CELL_PX + x]
    }

    #[test]
    fn the_palette_fits_a_gif_and_players_differ() {
        assert!(PALETTE.len() <= 256);
        assert_eq!(PALETTE.len(), colour::PLAYER as usize + 2 * PLAYER_COLOURS);
        let players: Vec<[u8; 3]> = (0..PLAYER_COLOURS)
            .map(|i| PALETTE[player_colour(i) as usize])
            .collect();
        for (i, a) in players.iter().enumerate() {
            for b in &players[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(player_colour(PLAYER_COLOURS + 3), player_colour(3));
    }

    #[test]
    fn a_window_is_88_pixels_square_with_each_cell_in_place() {
        let mut window = [0u8; WINDOW_CELLS];
        window[0] = bits::OUT_OF_BOUNDS;
        window[1] = bits::WALL;
        window[2] = bits::APPLE;
        window[3] = bits::GRASS;
        // Another player facing right relative to the observer, one cell ahead.
        window[(SELF_ROW - 1) * WINDOW_COLS + SELF_COL] = bits::OTHER | 1 << bits::FACING_SHIFT;
        window[SELF_ROW * WINDOW_COLS + SELF_COL] = bits::SELF;
        let px = window_pixels(&window);
        assert_eq!((px.width, px.height), (88, 88));
        assert_eq!(px.to_rgb().len(), 88 * 88 * 3);
        assert_eq!(at(&px, 0, 0, 4, 4), colour::OUT_OF_BOUNDS);
        assert_eq!(
            (at(&px, 0, 1, 0, 0), at(&px, 0, 1, 4, 4)),
            (colour::WALL_EDGE, colour::WALL)
        );
        assert_eq!(
            (at(&px, 0, 2, 0, 0), at(&px, 0, 2, 4, 4)),
            (colour::GRASS, colour::APPLE)
        );
        assert_eq!(at(&px, 0, 3, 4, 4), colour::GRASS);
        assert_eq!(at(&px, 0, 4, 4, 4), colour::FLOOR);
        // The observer faces up: its mark is along its top; the other's along its right.
        assert_eq!(at(&px, SELF_ROW, SELF_COL, 4, 4), colour::SELF);
        assert_eq!(at(&px, SELF_ROW, SELF_COL, 4, 1), colour::SELF + 1);
        assert_eq!(at(&px, SELF_ROW - 1, SELF_COL, 4, 4), colour::OTHER);
        assert_eq!(at(&px, SELF_ROW - 1, SELF_COL, 6, 4), colour::OTHER + 1);
        assert_eq!(at(&px, SELF_ROW - 1, SELF_COL, 4, 1), colour::OTHER);
    }

    #[test]
    fn a_window_is_its_cells_pictures_side_by_side() {
        use crate::obs::{WINDOW_CELLS, WINDOW_COLS};
        // Every byte value once (and some twice), in window order.
        let window: Vec<u8> = (0..WINDOW_CELLS).map(|k| (k * 37 % 256) as u8).collect();
        let whole = window_pixels(&window);
        for (k, &b) in window.iter().enumerate() {
            let cell = cell_pixels(b);
            let (x0, y0) = ((k % WINDOW_COLS) * CELL_PX, (k / WINDOW_COLS) * CELL_PX);
            for y in 0..CELL_PX {
                for x in 0..CELL_PX {
                    assert_eq!(
                        whole.data[(y0 + y) * whole.width + x0 + x],
                        cell.data[y * CELL_PX + x],
                        "cell {k} (byte {b:#04x}) at ({x}, {y})"
                    );
                }
            }
        }
        assert_ne!(cell_pixels(0).data, cell_pixels(bits::APPLE).data);
    }

    #[test]
    fn rgb_observations_are_each_players_window_in_rgb() {
        use crate::config::Config;
        use crate::engine::Engine;
        let game = Config::default().resolve().unwrap().game;
        let engine = Engine::new(game, 2);
        let (mut state, mut out) = (engine.new_state(), engine.new_outputs());
        engine.reset(&mut state, &mut out).unwrap();
        let rgb = rgb_observations(&out.obs);
        assert_eq!(rgb.len(), 2 * 7 * 88 * 88 * 3);
        for (k, window) in out.obs.chunks_exact(crate::obs::OBS_STRIDE).enumerate() {
            let mine = &rgb[k * RGB_WINDOW_BYTES..(k + 1) * RGB_WINDOW_BYTES];
            assert_eq!(
                mine,
                window_pixels(window).to_rgb().as_slice(),
                "player {k}"
            );
            // The observer's own cell, at the centre of its cell in the window.
            let (x, y) = (SELF_COL * CELL_PX + 4, SELF_ROW * CELL_PX + 4);
            let p = (y * 88 + x) * 3;
            assert_eq!(mine[p..p + 3], PALETTE[colour::SELF as usize]);
        }
    }

    #[test]
    fn the_world_shows_apples_grass_dry_cells_and_players_by_id() {
        use crate::config::Config;
        use crate::engine::Engine;
        let mut config = Config::default();
        config.env.map = Some("WWWWWW\nWAA PW\nWA  PW\nW   AW\nWWWWWW".into());
        config.env.players = 2;
        let game = config.resolve().unwrap().game;
        let engine = Engine::new(game.clone(), 1);
        let (mut state, mut out) = (engine.new_state(), engine.new_outputs());
        engine.reset(&mut state, &mut out).unwrap();
        // Eat the apple at (1, 2) and the lone one at (3, 4): (1, 2) keeps live
        // neighbours (grass), (3, 4) has none left (dry).
        let map = &game.map;
        for cell in [8, 22] {
            let a = map.apple_index[cell];
            state.apples[(a / 32) as usize] &= !(1 << (a % 32));
        }
        // Player 0 at (1, 4) facing down, player 1 at (2, 4) facing left.
        state.pose[0] = Pose::new(10, 2).0;
        state.pose[1] = Pose::new(16, 3).0;
        let px = world_pixels(map, &engine.layout(), &state, 0);
        assert_eq!((px.width, px.height), (48, 40));
        assert_eq!(at(&px, 0, 0, 4, 4), colour::WALL);
        assert_eq!(at(&px, 1, 1, 4, 4), colour::APPLE);
        assert_eq!(at(&px, 1, 2, 4, 4), colour::GRASS);
        assert_eq!(at(&px, 3, 4, 4, 4), colour::DRY);
        assert_eq!(at(&px, 1, 3, 4, 4), colour::FLOOR);
        assert_eq!(at(&px, 1, 4, 4, 3), player_colour(0));
        assert_eq!(at(&px, 1, 4, 4, 6), player_colour(0) + 1);
        assert_eq!(at(&px, 2, 4, 4, 4), player_colour(1));
        assert_eq!(at(&px, 2, 4, 1, 4), player_colour(1) + 1);
    }
}
