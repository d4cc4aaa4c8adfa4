//! Maps as data (SPEC §2): parsing an ASCII map and the static tables every engine uses.
//!
//! Characters: `W` wall, `A` apple cell (with an apple at reset), `P` spawn point, `Q`
//! inside spawn point, space floor. Cells are numbered row-major (`row * cols + col`);
//! apple cells are numbered in the same order, which fixes the bit order of the apple
//! bitset and the index of every regrowth draw.

use thiserror::Error;

/// What a map cell is, statically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tile {
    /// Blocks movement.
    Wall,
    /// Empty floor.
    Floor,
    /// A cell that can hold an apple (and does at reset).
    Apple,
    /// A spawn point (`P`).
    Spawn,
    /// An inside spawn point (`Q`), taken by the first players in order.
    InsideSpawn,
}

impl Tile {
    /// The map character of the tile.
    #[must_use]
    pub const fn glyph(self) -> char {
        match self {
            Self::Wall => 'W',
            Self::Floor => ' ',
            Self::Apple => 'A',
            Self::Spawn => 'P',
            Self::InsideSpawn => 'Q',
        }
    }
}

/// Why a map could not be loaded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MapError {
    /// The text has no rows.
    #[error("the map is empty")]
    Empty,
    /// Rows of different lengths.
    #[error(
        "row {row} has {len} columns but row 0 has {expected}: rows must all be the same length"
    )]
    Ragged {
        /// Zero-based row.
        row: usize,
        /// Its length.
        len: usize,
        /// The first row's length.
        expected: usize,
    },
    /// An unknown character.
    #[error("row {row}, column {col}: unknown character {ch:?} (allowed: 'W', 'A', 'P', 'Q', ' ')")]
    BadChar {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The character.
        ch: char,
    },
    /// No `A` cell.
    #[error("the map has no apple cells ('A')")]
    NoApples,
    /// The map is larger than the engines address.
    #[error("the map is {rows}x{cols}; at most 255 rows and 255 columns are supported")]
    TooLarge {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

/// A parsed map with the static tables derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// Number of rows.
    pub rows: u32,
    /// Number of columns.
    pub cols: u32,
    /// Every cell, row-major.
    pub tiles: Vec<Tile>,
    /// Cell index of each apple cell, in row-major order.
    pub apple_cells: Vec<u32>,
    /// For each cell, its apple-cell index, or [`Map::NOT_APPLE`].
    pub apple_index: Vec<u32>,
    /// `P` cells, row-major.
    pub spawn_cells: Vec<u32>,
    /// `Q` cells, row-major.
    pub inside_spawn_cells: Vec<u32>,
    /// CSR offsets into [`Map::neighbours`]: apple cell `a`'s neighbours are
    /// `neighbours[neighbour_offsets[a]..neighbour_offsets[a + 1]]`.
    pub neighbour_offsets: Vec<u32>,
    /// Apple-cell indices of the apple cells within the regrowth radius of each apple
    /// cell (itself excluded); cells that are not apple cells never hold apples and are
    /// left out.
    pub neighbours: Vec<u32>,
}

impl Map {
    /// [`Map::apple_index`] of a cell that is not an apple cell.
    pub const NOT_APPLE: u32 = u32::MAX;

    /// Parses an ASCII map. Leading and trailing blank lines are ignored; spaces inside
    /// and at the ends of rows are floor, so rows keep their trailing spaces.
    /// `radius` is the regrowth radius: a cell counts the cells `(dr, dc) ≠ (0, 0)` with
    /// `dr² + dc² ≤ radius²` (radius 2 gives SPEC §2's 12-cell diamond).
    pub fn parse(text: &str, radius: u32) -> Result<Self, MapError> {
        let lines: Vec<&str> = text.lines().collect();
        let first = lines.iter().position(|l| !l.trim().is_empty());
        let last = lines.iter().rposition(|l| !l.trim().is_empty());
        let (Some(first), Some(last)) = (first, last) else {
            return Err(MapError::Empty);
        };
        let rows_text = &lines[first..=last];
        let expected = rows_text[0].chars().count();
        let mut tiles = Vec::with_capacity(rows_text.len() * expected);
        for (row, line) in rows_text.iter().enumerate() {
            let len = line.chars().count();
            if len != expected {
                return Err(MapError::Ragged { row, len, expected });
            }
            for (col, ch) in line.chars().enumerate() {
                tiles.push(match ch {
                    'W' => Tile::Wall,
                    ' ' => Tile::Floor,
                    'A' => Tile::Apple,
                    'P' => Tile::Spawn,
                    'Q' => Tile::InsideSpawn,
                    ch => return Err(MapError::BadChar { row, col, ch }),
                });
            }
        }
        let (rows, cols) = (rows_text.len(), expected);
        if rows > 255 || cols > 255 {
            return Err(MapError::TooLarge { rows, cols });
        }
        let cells_of = |want: Tile| -> Vec<u32> {
            (0..tiles.len() as u32)
                .filter(|&c| tiles[c as usize] == want)
                .collect()
        };
        let apple_cells = cells_of(Tile::Apple);
        if apple_cells.is_empty() {
            return Err(MapError::NoApples);
        }
        let mut apple_index = vec![Self::NOT_APPLE; tiles.len()];
        for (a, &c) in apple_cells.iter().enumerate() {
            apple_index[c as usize] = a as u32;
        }
        let r = radius as i32;
        let mut neighbour_offsets = vec![0u32];
        let mut neighbours = Vec::new();
        for &c in &apple_cells {
            let (cr, cc) = ((c / cols as u32) as i32, (c % cols as u32) as i32);
            for dr in -r..=r {
                for dc in -r..=r {
                    if (dr, dc) == (0, 0) || dr * dr + dc * dc > r * r {
                        continue;
                    }
                    let (nr, nc) = (cr + dr, cc + dc);
                    if nr < 0 || nc < 0 || nr >= rows as i32 || nc >= cols as i32 {
                        continue;
                    }
                    let a = apple_index[nr as usize * cols + nc as usize];
                    if a != Self::NOT_APPLE {
                        neighbours.push(a);
                    }
                }
            }
            neighbour_offsets.push(neighbours.len() as u32);
        }
        Ok(Self {
            rows: rows as u32,
            cols: cols as u32,
            spawn_cells: cells_of(Tile::Spawn),
            inside_spawn_cells: cells_of(Tile::InsideSpawn),
            tiles,
            apple_cells,
            apple_index,
            neighbour_offsets,
            neighbours,
        })
    }

    /// Number of cells.
    #[must_use]
    pub fn cells(&self) -> usize {
        self.tiles.len()
    }

    /// Number of apple cells.
    #[must_use]
    pub fn apples(&self) -> usize {
        self.apple_cells.len()
    }

    /// Number of cells a player can spawn on (`P` and `Q`).
    #[must_use]
    pub fn spawn_capacity(&self) -> usize {
        self.spawn_cells.len() + self.inside_spawn_cells.len()
    }

    /// Words of the live-apple bitset (one bit per apple cell).
    #[must_use]
    pub fn apple_words(&self) -> usize {
        self.apples().div_ceil(32)
    }

    /// The bitset with every apple cell set: the apples at reset, and the mask of valid
    /// bits in each word.
    #[must_use]
    pub fn apple_mask(&self) -> Vec<u32> {
        (0..self.apple_words())
            .map(|w| match self.apples() - w * 32 {
                valid if valid >= 32 => u32::MAX,
                valid => (1u32 << valid) - 1,
            })
            .collect()
    }

    /// The neighbour apple cells of apple cell `a`.
    #[must_use]
    pub fn neighbours_of(&self, a: usize) -> &[u32] {
        &self.neighbours[self.neighbour_offsets[a] as usize..self.neighbour_offsets[a + 1] as usize]
    }

    /// The map repeated `down` times vertically and `across` times horizontally, as ASCII
    /// (a large economy: apple patches and spawn cells scale with the copies). A map walled
    /// all round is tiled by its interior and walled once, so that the copies join into
    /// one open map; any other map repeats whole. The result may exceed the 255 × 255
    /// limit, which [`Map::parse`] then reports; [`Map::tiled_size`] gives its size first.
    #[must_use]
    pub fn tiled_text(&self, down: u32, across: u32) -> String {
        let (rows, cols) = self.tiled_size(down, across);
        let ring = u32::from(self.walled());
        let (inner_rows, inner_cols) = (self.rows - 2 * ring, self.cols - 2 * ring);
        let mut text = String::with_capacity((rows * (cols + 1)) as usize);
        for r in 0..rows {
            for c in 0..cols {
                let on_ring = ring == 1 && (r == 0 || c == 0 || r == rows - 1 || c == cols - 1);
                let tile = if on_ring {
                    Tile::Wall
                } else {
                    let (sr, sc) = (
                        (r - ring) % inner_rows + ring,
                        (c - ring) % inner_cols + ring,
                    );
                    self.tiles[(sr * self.cols + sc) as usize]
                };
                text.push(tile.glyph());
            }
            text.push('\n');
        }
        text
    }

    /// Rows and columns of [`Map::tiled_text`]`(down, across)`.
    #[must_use]
    pub fn tiled_size(&self, down: u32, across: u32) -> (u32, u32) {
        let ring = 2 * u32::from(self.walled());
        (
            (self.rows - ring) * down + ring,
            (self.cols - ring) * across + ring,
        )
    }

    /// Whether every cell on the map's border is a wall (and there is an interior).
    fn walled(&self) -> bool {
        let (rows, cols) = (self.rows as i32, self.cols as i32);
        let wall = |r, c| self.tile(r, c) == Some(Tile::Wall);
        rows > 2
            && cols > 2
            && (0..cols).all(|c| wall(0, c) && wall(rows - 1, c))
            && (0..rows).all(|r| wall(r, 0) && wall(r, cols - 1))
    }

    /// The largest `[down, across]` whose [`Map::tiled_text`] stays within 255 × 255.
    #[must_use]
    pub fn max_tiles(&self) -> [u32; 2] {
        let ring = 2 * u32::from(self.walled());
        [
            (255 - ring) / (self.rows - ring),
            (255 - ring) / (self.cols - ring),
        ]
    }

    /// The tile at `(row, col)`, or `None` off the grid.
    #[must_use]
    pub fn tile(&self, row: i32, col: i32) -> Option<Tile> {
        (row >= 0 && col >= 0 && row < self.rows as i32 && col < self.cols as i32)
            .then(|| self.tiles[row as usize * self.cols as usize + col as usize])
    }

    /// Apple patches: the connected components of apple cells under the neighbour
    /// relation, each a sorted list of apple-cell indices, ordered by first member.
    #[must_use]
    pub fn patches(&self) -> Vec<Vec<u32>> {
        let n = self.apples();
        let mut seen = vec![false; n];
        let mut patches = Vec::new();
        for start in 0..n {
            if seen[start] {
                continue;
            }
            seen[start] = true;
            let mut patch = vec![start as u32];
            let mut next = 0;
            while next < patch.len() {
                for &b in self.neighbours_of(patch[next] as usize) {
                    if !seen[b as usize] {
                        seen[b as usize] = true;
                        patch.push(b);
                    }
                }
                next += 1;
            }
            patch.sort_unstable();
            patches.push(patch);
        }
        patches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(Map::parse("\n \n", 2), Err(MapError::Empty));
        assert_eq!(
            Map::parse("WWW\nWA\nWWW", 2),
            Err(MapError::Ragged {
                row: 1,
                len: 2,
                expected: 3
            })
        );
        assert_eq!(
            Map::parse("WAW\nWxW", 2),
            Err(MapError::BadChar {
                row: 1,
                col: 1,
                ch: 'x'
            })
        );
        assert_eq!(Map::parse("WPW", 2), Err(MapError::NoApples));
    }

    #[test]
    fn a_walled_map_tiles_by_its_interior_inside_one_wall_ring() {
        let map = Map::parse("WWWWW\nWAPQW\nW A W\nW  AW\nWWWWW", 2).unwrap();
        let tiled = map.tiled_text(2, 3);
        assert_eq!(
            tiled,
            "WWWWWWWWWWW\n\
             WAPQAPQAPQW\n\
             W A  A  A W\n\
             W  A  A  AW\n\
             WAPQAPQAPQW\n\
             W A  A  A W\n\
             W  A  A  AW\n\
             WWWWWWWWWWW\n"
        );
        assert_eq!(map.tiled_size(2, 3), (8, 11));
        let big = Map::parse(&tiled, 2).unwrap();
        assert_eq!(big.apples(), 6 * map.apples());
        assert_eq!(big.spawn_cells.len(), 6 * map.spawn_cells.len());
        assert_eq!(big.inside_spawn_cells.len(), 6);
        // The copies join: at radius 3 the apple at (1, 1) counts (1, 4) and (4, 1), in the
        // next copies, beside (2, 2) and (3, 3) in its own.
        let radius3 = Map::parse(&tiled, 3).unwrap();
        let a = radius3.apple_index[12] as usize;
        let neighbours: Vec<u32> = radius3
            .neighbours_of(a)
            .iter()
            .map(|&b| radius3.apple_cells[b as usize])
            .collect();
        assert_eq!(neighbours, [15, 24, 36, 45]);
        assert_eq!(map.tiled_text(1, 1), "WWWWW\nWAPQW\nW A W\nW  AW\nWWWWW\n");
    }

    #[test]
    fn a_map_open_on_any_side_repeats_whole() {
        // One open cell in the middle of each side in turn, then a map of one cell.
        for text in [
            "W W\nWAW\nWWW",
            "WWW\n AW\nWWW",
            "WWW\nWAW\nW W",
            "WWW\nWA \nWWW",
            "A",
        ] {
            let map = Map::parse(text, 2).unwrap();
            let tiled = map.tiled_text(2, 2);
            let rows: Vec<&str> = text.lines().collect();
            let expected: String = rows
                .iter()
                .chain(&rows)
                .map(|row| format!("{row}{row}\n"))
                .collect();
            assert_eq!(tiled, expected, "{text:?}");
            assert_eq!(map.tiled_size(2, 2), (2 * map.rows, 2 * map.cols));
        }
    }

    /// A map of `rows` × `cols` apple cells.
    fn orchard(rows: usize, cols: usize) -> String {
        vec!["A".repeat(cols); rows].join("\n")
    }

    #[test]
    fn maps_up_to_255_by_255_are_accepted_and_larger_ones_refused() {
        assert!(Map::parse(&orchard(255, 255), 1).is_ok());
        for (rows, cols) in [(256, 3), (3, 256), (300, 300)] {
            assert_eq!(
                Map::parse(&orchard(rows, cols), 1).err(),
                Some(MapError::TooLarge { rows, cols }),
                "{rows}x{cols}"
            );
        }
    }

    #[test]
    fn neighbours_are_the_radius_two_diamond() {
        let text = "AAAAA\nAAAAA\nAAAAA\nAAAAA\nAAAAA";
        let map = Map::parse(text, 2).unwrap();
        // The centre of a 5x5 block of apples sees exactly the 12-cell diamond.
        assert_eq!(map.neighbours_of(12).len(), 12);
        // A corner sees (0,1),(0,2),(1,0),(2,0),(1,1).
        assert_eq!(map.neighbours_of(0), &[1, 2, 5, 6, 10]);
    }

    #[test]
    fn tiles_off_the_grid_are_none() {
        let map = Map::parse("WAW\nWPW", 1).unwrap();
        assert_eq!(map.tile(0, 1), Some(Tile::Apple));
        assert_eq!(map.tile(1, 2), Some(Tile::Wall));
        for (row, col) in [(-1, 0), (0, -1), (2, 0), (0, 3), (2, 3)] {
            assert_eq!(map.tile(row, col), None, "({row}, {col})");
        }
    }

    #[test]
    fn other_radii_count_the_cells_of_the_disc() {
        // The centre of a 7x7 block: dr² + dc² ≤ r², itself excluded.
        let text = orchard(7, 7);
        for (radius, cells) in [(1, 4), (2, 12), (3, 28)] {
            let map = Map::parse(&text, radius).unwrap();
            assert_eq!(map.neighbours_of(24).len(), cells, "radius {radius}");
        }
    }
}
