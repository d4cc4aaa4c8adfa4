//! The game of SPEC.md for one env, written straight from the rule book: a grid of tiles,
//! a list of players with row, column and facing, plain `bool`s and `f64`s. No bitsets,
//! no structure of arrays, no exact-integer tricks, nothing shared with the fast engine
//! but the counter RNG, the map parser and the resolved config. It is slow and meant to be
//! read; `tests/differential.rs` holds the fast engines to it.
//!
//! The random draws are the rule book's "uniformly at random" made concrete with the
//! project's counter RNG, keyed `(run, env, tick)`, one stream per purpose (SPEC §2): the
//! move order is a Fisher–Yates shuffle, regrowth draws one number per apple cell, spawns
//! draw cells by rejection and facings from the top two bits of a draw.
#![allow(dead_code)]
// Player and bracket indices written out read like the rule book's subscripts.
#![allow(clippy::needless_range_loop)]

use sed_core::config::{Game, WelfareOf};
use sed_core::map::Tile;
use sed_core::principal::TaxSchedule;
use sed_core::reward::RewardForm;
use sed_core::rng::{Stream, stream, tick_key};
use sed_core::welfare::Welfare;

/// North, east, south, west as `(d_row, d_col)`: facing `f` steps by `DIRECTIONS[f]`.
const DIRECTIONS: [(i32, i32); 4] = [(-1, 0), (0, 1), (1, 0), (0, -1)];

/// The twelve cells of the radius-2 diamond around a cell (SPEC §2, regrowth).
const DIAMOND: [(i32, i32); 12] = [
    (-1, 0),
    (1, 0),
    (0, -1),
    (0, 1),
    (-1, -1),
    (-1, 1),
    (1, -1),
    (1, 1),
    (-2, 0),
    (2, 0),
    (0, -2),
    (0, 2),
];

/// The window (SPEC §3): 9 cells ahead, 1 behind, 5 to each side; own cell at row 9, col 5.
const AHEAD: i32 = 9;
const BEHIND: i32 = 1;
const SIDE: i32 = 5;
const WINDOW_ROWS: usize = 11;
const WINDOW_COLS: usize = 11;

/// Observation bits (SPEC §3), one per channel.
pub mod bit {
    pub const WALL: u8 = 1;
    pub const APPLE: u8 = 2;
    pub const GRASS: u8 = 4;
    pub const SELF: u8 = 8;
    pub const OTHER: u8 = 16;
    pub const OUT_OF_BOUNDS: u8 = 32;
    pub const FACING_SHIFT: u32 = 6;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Player {
    pub row: i32,
    pub col: i32,
    /// 0 north, 1 east, 2 south, 3 west.
    pub facing: usize,
}

/// What one step reports.
#[derive(Clone, Debug, Default)]
pub struct StepReport {
    /// Each player's reward.
    pub rewards: Vec<f64>,
    /// The principal's reward (non-zero only when a tax period ends).
    pub principal_reward: f64,
    pub period_end: bool,
    pub round_end: bool,
    pub episode_end: bool,
    /// The next step is a decision step.
    pub decision_next: bool,
    /// Each player's window at the end of the episode, before the reset.
    pub final_windows: Option<Vec<Vec<u8>>>,
}

/// One env of the game.
#[derive(Clone, Debug)]
pub struct World {
    pub game: Game,
    pub env: u32,
    /// The map's tiles, `[row][col]`.
    pub tiles: Vec<Vec<Tile>>,
    /// Whether each cell holds a live apple, `[row][col]`, and whether it did at the end of
    /// the step before the last one.
    pub apple: Vec<Vec<bool>>,
    pub two_steps_ago: Vec<Vec<bool>>,
    pub players: Vec<Player>,
    /// Steps since the run started (the RNG counter), and within the episode.
    pub tick: u32,
    pub t: u32,
    /// Tax rates per bracket, in tenths.
    pub rates: Vec<u32>,
    /// Raw apples this tax period and this voting round.
    pub period_income: Vec<u32>,
    pub round_apples: Vec<u32>,
    /// Apples after tax this tax period and this voting round.
    pub period_net: Vec<f64>,
    pub round_net: Vec<f64>,
    /// This episode's raw apples, apples after tax and revenue (in apples).
    pub episode_apples: Vec<u32>,
    pub episode_net: Vec<f64>,
    pub episode_revenue: f64,
    /// The last completed episode's.
    pub last_apples: Vec<u32>,
    pub last_net: Vec<f64>,
    pub last_revenue: f64,
    pub last_apples_left: u32,
    pub episodes: u32,
}

impl World {
    /// The world at tick 0, reset.
    pub fn new(game: &Game, env: u32) -> Self {
        let map = &game.map;
        let tiles: Vec<Vec<Tile>> = (0..map.rows as i32)
            .map(|r| {
                (0..map.cols as i32)
                    .map(|c| map.tile(r, c).unwrap())
                    .collect()
            })
            .collect();
        let n = game.players as usize;
        let b = game.brackets.len();
        let mut w = Self {
            game: game.clone(),
            env,
            apple: vec![vec![false; map.cols as usize]; map.rows as usize],
            two_steps_ago: vec![vec![false; map.cols as usize]; map.rows as usize],
            tiles,
            players: Vec::new(),
            tick: 0,
            t: 0,
            rates: vec![0; b],
            period_income: vec![0; n],
            round_apples: vec![0; n],
            period_net: vec![0.0; n],
            round_net: vec![0.0; n],
            episode_apples: vec![0; n],
            episode_net: vec![0.0; n],
            episode_revenue: 0.0,
            last_apples: vec![0; n],
            last_net: vec![0.0; n],
            last_revenue: 0.0,
            last_apples_left: 0,
            episodes: 0,
        };
        w.reset_world();
        w
    }

    fn rows(&self) -> i32 {
        self.tiles.len() as i32
    }
    fn cols(&self) -> i32 {
        self.tiles[0].len() as i32
    }
    fn inside(&self, r: i32, c: i32) -> bool {
        r >= 0 && c >= 0 && r < self.rows() && c < self.cols()
    }
    fn live(&self, r: i32, c: i32) -> bool {
        self.inside(r, c) && self.apple[r as usize][c as usize]
    }
    fn player_at(&self, r: i32, c: i32) -> Option<usize> {
        self.players.iter().position(|p| p.row == r && p.col == c)
    }
    /// Cells of the radius-2 diamond around `(r, c)` whose entry in `apples` is set.
    fn live_in_diamond(&self, apples: &[Vec<bool>], r: i32, c: i32) -> usize {
        DIAMOND
            .iter()
            .filter(|(dr, dc)| {
                let (rr, cc) = (r + dr, c + dc);
                self.inside(rr, cc) && apples[rr as usize][cc as usize]
            })
            .count()
    }
    /// Apple cells in reading order (the order regrowth draws are indexed by).
    fn apple_cells(&self) -> Vec<(i32, i32)> {
        self.cells_of(Tile::Apple)
    }
    fn cells_of(&self, tile: Tile) -> Vec<(i32, i32)> {
        let mut v = Vec::new();
        for r in 0..self.rows() {
            for c in 0..self.cols() {
                if self.tiles[r as usize][c as usize] == tile {
                    v.push((r, c));
                }
            }
        }
        v
    }

    /// A new episode's world (SPEC §2): every apple cell holds an apple; the first
    /// players stand on the `Q` cells, the others on distinct `P` cells drawn uniformly,
    /// each facing a uniformly drawn direction.
    fn reset_world(&mut self) {
        let key = tick_key(self.game.run_key, self.env, self.tick);
        for (r, c) in self.apple_cells() {
            self.apple[r as usize][c as usize] = true;
            self.two_steps_ago[r as usize][c as usize] = true;
        }
        // The `Q` cells in a random order (a Fisher–Yates shuffle): the first players
        // stand on them.
        let mut inside = self.cells_of(Tile::InsideSpawn);
        let order = Stream::new(key, stream::INSIDE_ORDER);
        for i in (1..inside.len()).rev() {
            let j = order.below(i as u32, i as u32 + 1) as usize;
            inside.swap(i, j);
        }
        let spawns = self.cells_of(Tile::Spawn);
        let spawn = Stream::new(key, stream::SPAWN);
        let face = Stream::new(key, stream::FACING);
        let mut draws = 0;
        self.players.clear();
        for i in 0..self.game.players as usize {
            let (row, col) = if i < inside.len() {
                inside[i]
            } else {
                loop {
                    let cell = spawns[spawn.below(draws, spawns.len() as u32) as usize];
                    draws += 1;
                    if !self.players.iter().any(|p| (p.row, p.col) == cell) {
                        break cell;
                    }
                }
            };
            let facing = (face.draw(i as u32) >> 30) as usize;
            self.players.push(Player { row, col, facing });
        }
    }

    /// The tax on period income `x` (SPEC §4): Σ_b φ_b · max(0, min(x, hi_b) − lo_b + 1).
    fn tax(&self, x: u32) -> f64 {
        self.game
            .brackets
            .iter()
            .zip(&self.rates)
            .map(|(b, &k)| {
                let taxed = x.min(b.hi) as i64 - b.lo as i64 + 1;
                k as f64 / 10.0 * taxed.max(0) as f64
            })
            .sum()
    }

    /// The principal's choice for one bracket (SPEC §4): `k ≤ 10` asks for rate k/10, 11
    /// keeps the rate; the result is kept within the divergence bound of the current rate
    /// and under the curriculum's cap.
    fn chosen_rate(&self, current: u32, choice: u32, cap: u32) -> u32 {
        let mut rate = if choice == 11 { current } else { choice };
        if let Some(d) = self.game.max_rate_change_tenths {
            rate = rate.max(current.saturating_sub(d)).min(current + d);
        }
        rate.min(cap)
    }

    /// Whether the cell at offset `(dr, dc)` lies in the window of a player facing `f`.
    fn sees(f: usize, dr: i32, dc: i32) -> bool {
        let (fr, fc) = DIRECTIONS[f];
        let (rr, rc) = DIRECTIONS[(f + 1) % 4];
        let ahead = dr * fr + dc * fc;
        let right = dr * rr + dc * rc;
        (-BEHIND..=AHEAD).contains(&ahead) && right.abs() <= SIDE
    }

    /// `W(A) = η · Σ A + (1 − η) · min A` (SPEC §4).
    fn welfare(eta: f64, a: &[f64]) -> f64 {
        let min = a.iter().copied().fold(f64::INFINITY, f64::min);
        eta * a.iter().sum::<f64>() + (1.0 - eta) * min
    }

    /// One step (SPEC §2–4) with the players' `actions` and the principal's `choices`.
    pub fn step(
        &mut self,
        actions: &[u32],
        choices: &[u32],
        schedule: TaxSchedule,
        objective: Welfare,
    ) -> StepReport {
        let g = self.game.clone();
        let n = self.players.len();
        let key = tick_key(g.run_key, self.env, self.tick);
        let period = g.tax_period;

        // A decision step opens a tax period (and maybe a voting round); the principal's
        // choices set the rates.
        if self.t.is_multiple_of(period) {
            if (self.tick / period).is_multiple_of(g.round_periods) {
                self.round_apples = vec![0; n];
                self.round_net = vec![0.0; n];
            }
            self.period_income = vec![0; n];
            self.period_net = vec![0.0; n];
            // A frozen principal (curriculum phase 1) does not change the rates.
            if schedule.principal_learns {
                for k in 0..self.rates.len() {
                    self.rates[k] =
                        self.chosen_rate(self.rates[k], choices[k], schedule.rate_cap_tenths);
                }
            }
        }

        // Movement: one player at a time in a random order.
        let mut order: Vec<usize> = (0..n).collect();
        let shuffle = Stream::new(key, stream::MOVE_ORDER);
        for i in (1..n).rev() {
            let j = shuffle.below(i as u32, i as u32 + 1) as usize;
            order.swap(i, j);
        }
        let start = self.apple.clone(); // the world at the end of the last step
        let mut apples = vec![0u32; n];
        for &i in &order {
            let p = self.players[i];
            // Where each action points, relative to the facing.
            let direction = match actions[i] {
                0 => None,                     // NOOP
                1 => Some(p.facing),           // FORWARD
                2 => Some((p.facing + 2) % 4), // BACKWARD
                3 => Some((p.facing + 3) % 4), // STEP_LEFT: a quarter turn counter-clockwise
                4 => Some((p.facing + 1) % 4), // STEP_RIGHT: a quarter turn clockwise
                5 => {
                    self.players[i].facing = (p.facing + 3) % 4; // TURN_LEFT
                    None
                }
                6 => {
                    self.players[i].facing = (p.facing + 1) % 4; // TURN_RIGHT
                    None
                }
                a => panic!("action {a}"),
            };
            let Some(d) = direction else { continue };
            let (r, c) = (p.row + DIRECTIONS[d].0, p.col + DIRECTIONS[d].1);
            let blocked = !self.inside(r, c)
                || self.tiles[r as usize][c as usize] == Tile::Wall
                || self.player_at(r, c).is_some();
            if blocked {
                continue;
            }
            self.players[i].row = r;
            self.players[i].col = c;
            if self.apple[r as usize][c as usize] {
                self.apple[r as usize][c as usize] = false;
                apples[i] += 1;
            }
        }

        // Regrowth (after this step's eating), from a delayed picture of the world: an
        // apple cell regrows only if it was empty at the end of the last two steps, with
        // the probability for its live neighbours two steps ago.
        let regrow = Stream::new(key, stream::REGROW);
        let levels = g.regrowth_thresholds.len();
        for (index, (r, c)) in self.apple_cells().into_iter().enumerate() {
            let (ru, cu) = (r as usize, c as usize);
            if start[ru][cu] || self.two_steps_ago[ru][cu] {
                continue;
            }
            let live = self.live_in_diamond(&self.two_steps_ago, r, c);
            if regrow.draw(index as u32) < g.regrowth_thresholds[live.min(levels - 1)] {
                match self.player_at(r, c) {
                    Some(i) => apples[i] += 1, // grows under a standing player: eaten at once
                    None => self.apple[ru][cu] = true,
                }
            }
        }
        self.two_steps_ago = start;

        // Taxes on the period's last step: bracket tax, revenue shared equally.
        let settle = self.t % period == period - 1;
        for i in 0..n {
            self.period_income[i] += apples[i];
            self.round_apples[i] += apples[i];
            self.episode_apples[i] += apples[i];
        }
        let mut transfer = vec![0.0; n];
        if settle && schedule.tax_enabled {
            let taxes: Vec<f64> = self.period_income.iter().map(|&x| self.tax(x)).collect();
            let revenue: f64 = taxes.iter().sum();
            let multiplier = schedule.multiplier_tenths as f64 / 10.0;
            for i in 0..n {
                transfer[i] = multiplier * (taxes[i] - revenue / n as f64);
            }
            self.episode_revenue += revenue;
        }
        let taxed: Vec<f64> = (0..n).map(|i| apples[i] as f64 - transfer[i]).collect();
        for i in 0..n {
            self.period_net[i] += taxed[i];
            self.round_net[i] += taxed[i];
            self.episode_net[i] += taxed[i];
        }

        // Rewards: own apples and the apples of the players in view.
        let mut rewards = vec![0.0; n];
        for i in 0..n {
            let me = self.players[i];
            let (mut seen_taxed, mut seen_raw) = (0.0, 0.0);
            for j in (0..n).filter(|&j| j != i) {
                let o = self.players[j];
                if Self::sees(me.facing, o.row - me.row, o.col - me.col) {
                    seen_taxed += taxed[j];
                    seen_raw += apples[j] as f64;
                }
            }
            let sigma = g.types.selfishness[i] as f64 / 256.0;
            let beta = g.types.trust[i] as f64 / 256.0;
            rewards[i] = match g.reward_form {
                RewardForm::Paper => sigma * taxed[i] + (1.0 - sigma) * seen_taxed,
                RewardForm::ReleasedCode => {
                    beta * taxed[i]
                        + (1.0 - beta) * (sigma * apples[i] as f64 + (1.0 - sigma) * seen_raw)
                }
            };
        }

        // The principal's reward: the change of the objective over the period.
        let mut report = StepReport {
            rewards,
            ..StepReport::default()
        };
        if settle {
            report.period_end = true;
            let eta = objective.linear().expect("a linear objective");
            let eta = eta.num as f64 / eta.den as f64;
            let (end, during): (Vec<f64>, Vec<f64>) = match g.welfare_of {
                WelfareOf::RawApples => (
                    self.round_apples.iter().map(|&a| a as f64).collect(),
                    self.period_income.iter().map(|&a| a as f64).collect(),
                ),
                WelfareOf::PostTaxIncome => (self.round_net.clone(), self.period_net.clone()),
            };
            let start: Vec<f64> = end.iter().zip(&during).map(|(e, d)| e - d).collect();
            report.principal_reward = Self::welfare(eta, &end) - Self::welfare(eta, &start);
            report.round_end = (self.tick / period + 1).is_multiple_of(g.round_periods);
        }

        // Time moves on; the episode ends after `episode_len` steps and the world resets.
        self.tick += 1;
        self.t += 1;
        if self.t == g.episode_len {
            report.episode_end = true;
            report.final_windows = Some((0..n).map(|i| self.window(i)).collect());
            self.episodes += 1;
            self.last_apples = std::mem::replace(&mut self.episode_apples, vec![0; n]);
            self.last_net = std::mem::replace(&mut self.episode_net, vec![0.0; n]);
            self.last_revenue = std::mem::take(&mut self.episode_revenue);
            self.last_apples_left = self.apple.iter().flatten().filter(|&&a| a).count() as u32;
            self.reset_world();
            self.t = 0;
            if g.reset_rates_each_episode {
                self.rates = vec![0; self.rates.len()];
            }
        }
        report.decision_next = self.t.is_multiple_of(period);
        report
    }

    /// What a cell shows, without players: wall, apple, or grass (an empty apple cell
    /// with a live apple in its diamond, so it can still regrow).
    fn ground(&self, r: i32, c: i32) -> u8 {
        if !self.inside(r, c) {
            return bit::OUT_OF_BOUNDS;
        }
        match self.tiles[r as usize][c as usize] {
            Tile::Wall => bit::WALL,
            Tile::Apple if self.live(r, c) => bit::APPLE,
            Tile::Apple if self.live_in_diamond(&self.apple, r, c) > 0 => bit::GRASS,
            _ => 0,
        }
    }

    /// Player `i`'s 11 × 11 window, row-major from the top-left, forward up (SPEC §3).
    pub fn window(&self, i: usize) -> Vec<u8> {
        let me = self.players[i];
        let (fr, fc) = DIRECTIONS[me.facing];
        let (rr, rc) = DIRECTIONS[(me.facing + 1) % 4];
        let mut out = Vec::with_capacity(WINDOW_ROWS * WINDOW_COLS);
        for wr in 0..WINDOW_ROWS as i32 {
            for wc in 0..WINDOW_COLS as i32 {
                let ahead = AHEAD - wr;
                let right = wc - SIDE;
                let (r, c) = (
                    me.row + ahead * fr + right * rr,
                    me.col + ahead * fc + right * rc,
                );
                let mut cell = self.ground(r, c);
                if let Some(j) = self.player_at(r, c) {
                    cell |= if j == i {
                        bit::SELF
                    } else {
                        let rel = (self.players[j].facing + 4 - me.facing) % 4;
                        bit::OTHER | (rel as u8) << bit::FACING_SHIFT
                    };
                }
                out.push(cell);
            }
        }
        out
    }

    /// The principal's view: every cell of the map, every player with its facing.
    pub fn principal_map(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for r in 0..self.rows() {
            for c in 0..self.cols() {
                let mut cell = self.ground(r, c);
                if let Some(j) = self.player_at(r, c) {
                    cell |= bit::OTHER | (self.players[j].facing as u8) << bit::FACING_SHIFT;
                }
                out.push(cell);
            }
        }
        out
    }

    /// The principal's features: each player's apples after tax this period, the rates,
    /// the position in the tax period and in the voting round.
    pub fn principal_features(&self) -> Vec<f64> {
        let g = &self.game;
        let mut f = self.period_net.clone();
        f.extend(self.rates.iter().map(|&k| k as f64 / 10.0));
        f.push((self.t % g.tax_period) as f64 / g.tax_period as f64);
        f.push(((self.tick / g.tax_period) % g.round_periods) as f64 / g.round_periods as f64);
        f
    }

    /// Live apples, as `(row, col)` in reading order.
    pub fn live_apples(&self) -> Vec<(i32, i32)> {
        self.apple_cells()
            .into_iter()
            .filter(|&(r, c)| self.live(r, c))
            .collect()
    }

    /// The apples live at the end of the step before the last one, in reading order.
    pub fn live_apples_two_steps_ago(&self) -> Vec<(i32, i32)> {
        self.apple_cells()
            .into_iter()
            .filter(|&(r, c)| self.two_steps_ago[r as usize][c as usize])
            .collect()
    }
}
