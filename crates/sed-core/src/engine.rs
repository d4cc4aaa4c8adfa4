//! The batched CPU engine: steps N envs in parallel over structure-of-arrays buffers.
//!
//! # Buffers (the layout `sed-gpu` uses too)
//!
//! Every buffer is one flat array indexed `[env][…]`; per-env scalars are `u32` so a GPU
//! binds each as `array<u32>` (byte buffers as packed words). See [`Layout`] for strides.
//!
//! * [`State`], owned by the caller: `tick`, `t`, `pose` (`cell << 2 | facing` per
//!   player), `apples` (bitset over apple cells), `apples_prev` (the same one step
//!   earlier, for regrowth), `period_income` (raw apples this tax
//!   period), `period_net` (after-tax apples this period, in apple units), `round_apples`
//!   (raw apples this voting round), `round_net` (after-tax apples this voting round, in
//!   apple units), `rates` (tenths per bracket) and `stats` ([`crate::stats`]).
//! * [`Actions`], written by the caller before each step: one action per player, one
//!   choice per bracket head (read on decision steps only).
//! * [`Outputs`], written by the engine: `obs`, `final_obs` (the last observation of an
//!   episode, written only on the step it ends), `principal_map`, `principal_features`,
//!   `reward`, `principal_reward`, `terminated`, `truncated` and `flags` ([`flags`]).
//!
//! # One step of one env (SPEC §2–4)
//!
//! 1. On a decision step (`t ≡ 0 mod tax_period`): a new voting round clears
//!    `round_apples`; the period accumulators clear; the principal's choices set the rates
//!    (unless it is frozen, in curriculum phase 1).
//! 2. Players act one at a time in a fresh random order; a move succeeds when its target
//!    is on the grid, not a wall and holds no player at that moment; entering a live apple
//!    eats it.
//! 3. Regrowth from Melting Pot's delayed picture: every apple cell empty at the end of
//!    steps t−2 and t−1 regrows with probability `p[min(k, len − 1)]`, k its live
//!    neighbours at the end of step t−2 (`State::apples_prev`); an apple regrowing under a
//!    player is eaten by it at once.
//! 4. On the last step of a period taxes are settled; rewards and the principal's
//!    welfare-delta reward are computed.
//! 5. `t` advances; at `episode_len` the env is truncated, its final observation saved,
//!    and it resets (rates persist unless configured otherwise).
//! 6. Observations are written.

use rayon::prelude::*;
use thiserror::Error;

use crate::config::{Game, WelfareOf};
use crate::map::{Map, Tile};
use crate::obs::{self, OBS_STRIDE, WINDOW_CELLS, bits};
use crate::principal::{self, CHOICES, TaxSchedule};
use crate::reward::{Share, apple_unit, exact_f32};
use crate::rng::{self, Stream, stream};
use crate::stats;
use crate::tax;
use crate::types::{Action, Pose, facing};
use crate::welfare::Welfare;

/// Bits of [`Outputs::flags`]: boundaries inside and at the end of an episode.
pub mod flags {
    /// The next step is a principal decision step (a tax period starts).
    pub const DECISION_NEXT: u32 = 1 << 0;
    /// Taxes were settled this step (a tax period ended; the principal's reward is set).
    pub const PERIOD_END: u32 = 1 << 1;
    /// A voting round ended this step: vote before the next step.
    pub const ROUND_END: u32 = 1 << 2;
    /// The episode ended this step (the env was truncated and reset).
    pub const EPISODE_END: u32 = 1 << 3;
}

/// Sizes and strides of every buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Envs.
    pub num_envs: usize,
    /// Players per env.
    pub players: usize,
    /// Tax brackets (principal heads).
    pub brackets: usize,
    /// `u32` words of the apple bitset per env.
    pub apple_words: usize,
    /// Bytes of one player's observation ([`OBS_STRIDE`]).
    pub obs_stride: usize,
    /// Bytes of the principal's map per env (cells rounded up to a multiple of 4).
    pub map_stride: usize,
    /// Floats of the principal's features per env.
    pub principal_features: usize,
    /// Words of statistics per env.
    pub stats: usize,
}

impl Layout {
    /// The layout of `num_envs` envs of `game`.
    #[must_use]
    pub fn new(game: &Game, num_envs: usize) -> Self {
        let players = game.players as usize;
        Self {
            num_envs,
            players,
            brackets: game.brackets.len(),
            apple_words: game.map.apple_words(),
            obs_stride: OBS_STRIDE,
            map_stride: game.map.cells().next_multiple_of(4),
            principal_features: obs::principal_features(players, game.brackets.len()),
            stats: stats::len(players),
        }
    }
}

/// Per-env state of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Steps taken since the run started (the RNG counter).
    pub tick: Vec<u32>,
    /// Step within the episode.
    pub t: Vec<u32>,
    /// Player poses, `[env][player]`.
    pub pose: Vec<u32>,
    /// Live-apple bitset, `[env][word]`.
    pub apples: Vec<u32>,
    /// The live-apple bitset one step earlier, `[env][word]`: before step t, `apples` is
    /// the world at the end of step t−1 and `apples_prev` at the end of step t−2, the
    /// delayed picture regrowth is decided from (SPEC §2).
    pub apples_prev: Vec<u32>,
    /// Raw apples this tax period, `[env][player]`.
    pub period_income: Vec<u32>,
    /// After-tax apples this tax period in apple units, `[env][player]`.
    pub period_net: Vec<i32>,
    /// Raw apples this voting round, `[env][player]`.
    pub round_apples: Vec<u32>,
    /// After-tax apples this voting round in apple units, `[env][player]`.
    pub round_net: Vec<i32>,
    /// Tax rates in tenths, `[env][bracket]`.
    pub rates: Vec<u32>,
    /// Episode statistics, `[env][stats::len(n)]`.
    pub stats: Vec<u32>,
}

/// What the engine writes each step.
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// Player observations, `[env][player][OBS_STRIDE]`.
    pub obs: Vec<u8>,
    /// Observations at the end of an episode, written only on the step an env ends.
    pub final_obs: Vec<u8>,
    /// The principal's map, `[env][map_stride]`.
    pub principal_map: Vec<u8>,
    /// The principal's features, `[env][principal_features]`.
    pub principal_features: Vec<f32>,
    /// Player rewards, `[env][player]`.
    pub reward: Vec<f32>,
    /// The principal's reward (non-zero only on period ends), `[env]`.
    pub principal_reward: Vec<f32>,
    /// 1 when the env reached a terminal state (never, in this game), `[env]`.
    pub terminated: Vec<u32>,
    /// 1 when the episode was cut at its length, `[env]`.
    pub truncated: Vec<u32>,
    /// [`flags`] bits, `[env]`.
    pub flags: Vec<u32>,
}

/// What the policies chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actions {
    /// Player actions `0..7`, `[env][player]`.
    pub players: Vec<u32>,
    /// Principal choices `0..12` per bracket head, `[env][bracket]`.
    pub principal: Vec<u32>,
}

/// Parameters that may change between steps without recompiling anything: the tax
/// schedule of the curriculum and the objective the vote chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepParams {
    /// Tax parameters.
    pub schedule: TaxSchedule,
    /// The principal's objective.
    pub welfare: Welfare,
}

/// Invalid input to a step.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EngineError {
    /// A player action outside `0..7`.
    #[error("env {env}, player {player}: action {value} is outside 0..7")]
    PlayerAction {
        /// Env.
        env: usize,
        /// Player.
        player: usize,
        /// The value.
        value: u32,
    },
    /// A principal choice outside `0..12`.
    #[error("env {env}, bracket {head}: principal choice {value} is outside 0..12")]
    PrincipalAction {
        /// Env.
        env: usize,
        /// Bracket head.
        head: usize,
        /// The value.
        value: u32,
    },
    /// The objective's principal reward cannot be computed exactly in 64 bits.
    #[error(
        "the objective {0} is too fine for the exact 64-bit principal reward of this game (see Game::welfare_is_exact)"
    )]
    WelfareTooFine(String),
    /// A buffer of the wrong length.
    #[error("buffer `{name}` has length {len}, expected {expected}")]
    BufferLength {
        /// Buffer.
        name: &'static str,
        /// Its length.
        len: usize,
        /// Expected.
        expected: usize,
    },
}

/// Padding of the scratch grid, so window gathers need no bounds checks.
const PAD: i32 = if obs::VIEW_FORWARD > obs::VIEW_SIDE {
    obs::VIEW_FORWARD
} else {
    obs::VIEW_SIDE
};
/// Envs per parallel task.
const BLOCK: usize = 16;

/// The batched engine for one game.
#[derive(Clone, Debug)]
pub struct Engine {
    game: Game,
    layout: Layout,
    /// Wall per cell.
    wall: Vec<bool>,
    /// Mask of valid bits per apple word.
    apple_mask: Vec<u32>,
    /// The padded grid with static bits (walls, out of bounds).
    base_grid: Vec<u8>,
    /// Padded-grid index of each map cell.
    padded_cell: Vec<u32>,
    /// Padded-grid offsets of the window cells per facing.
    window: [[i32; WINDOW_CELLS]; 4],
    /// Identifies the engine's scratch layout in [`SCRATCH`] (clones share it).
    id: u64,
}

/// Engines created so far, for [`Engine::id`].
static ENGINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// Each thread's scratch memory for the last engine it stepped, kept between steps:
    /// allocating it per block and step cost a sixth of a one-env step, and one per block
    /// kept in the engine spread over more cache than one per thread.
    static SCRATCH: std::cell::RefCell<Option<(u64, Scratch)>> = const { std::cell::RefCell::new(None) };
}

/// One block's slices of every buffer ([`BLOCK`] envs, fewer in the last block).
struct Block<'a> {
    tick: &'a mut [u32],
    t: &'a mut [u32],
    pose: &'a mut [u32],
    apples: &'a mut [u32],
    apples_prev: &'a mut [u32],
    period_income: &'a mut [u32],
    period_net: &'a mut [i32],
    round_apples: &'a mut [u32],
    round_net: &'a mut [i32],
    rates: &'a mut [u32],
    stats: &'a mut [u32],
    obs: &'a mut [u8],
    final_obs: &'a mut [u8],
    principal_map: &'a mut [u8],
    principal_features: &'a mut [f32],
    reward: &'a mut [f32],
    principal_reward: &'a mut [f32],
    terminated: &'a mut [u32],
    truncated: &'a mut [u32],
    flags: &'a mut [u32],
    actions: &'a [u32],
    choices: &'a [u32],
}

/// Scratch memory of one thread ([`SCRATCH`]). Every step overwrites what it reads of it:
/// the grid's apple cells, the apple words and each player's entries.
#[derive(Debug)]
struct Scratch {
    grid: Vec<u8>,
    /// The live apples at the start of the step (the end of the previous one).
    before: Vec<u32>,
    /// Apples each player collected this step.
    ate: Vec<u32>,
    /// The players' order of moving this step.
    order: Vec<u32>,
    /// Each player's net transfer and after-tax apples this step, in apple units.
    net: Vec<i32>,
    taxed: Vec<i32>,
    /// Each player's round totals at the period's start and end, in the objective's units.
    start: Vec<i64>,
    end: Vec<i64>,
    /// The occupancy grid over the padded grid: player + 1 on each player's cell, 0
    /// elsewhere. All zero between steps: a step marks its env's players and clears them.
    occupant: Vec<u32>,
}

impl Scratch {
    fn new(grid: Vec<u8>, apple_words: usize, players: usize) -> Self {
        Self {
            occupant: vec![0; grid.len()],
            grid,
            before: vec![0; apple_words],
            ate: vec![0; players],
            order: vec![0; players],
            net: vec![0; players],
            taxed: vec![0; players],
            start: vec![0; players],
            end: vec![0; players],
        }
    }
}

/// One env's slice of every buffer.
struct Env<'a> {
    tick: &'a mut u32,
    t: &'a mut u32,
    pose: &'a mut [u32],
    apples: &'a mut [u32],
    apples_prev: &'a mut [u32],
    period_income: &'a mut [u32],
    period_net: &'a mut [i32],
    round_apples: &'a mut [u32],
    round_net: &'a mut [i32],
    rates: &'a mut [u32],
    stats: &'a mut [u32],
}

struct EnvOut<'a> {
    obs: &'a mut [u8],
    final_obs: &'a mut [u8],
    principal_map: &'a mut [u8],
    principal_features: &'a mut [f32],
    reward: &'a mut [f32],
    principal_reward: &'a mut f32,
    terminated: &'a mut u32,
    truncated: &'a mut u32,
    flags: &'a mut u32,
}

#[inline(always)]
fn bit(words: &[u32], i: u32) -> bool {
    words[(i >> 5) as usize] >> (i & 31) & 1 == 1
}

impl Engine {
    /// An engine for `num_envs` envs of `game`.
    #[must_use]
    pub fn new(game: Game, num_envs: usize) -> Self {
        let layout = Layout::new(&game, num_envs);
        let map = &game.map;
        let (rows, cols) = (map.rows as i32, map.cols as i32);
        let pcols = cols + 2 * PAD;
        let prows = rows + 2 * PAD;
        let mut base_grid = vec![bits::OUT_OF_BOUNDS; (prows * pcols) as usize];
        let mut padded_cell = Vec::with_capacity(map.cells());
        for r in 0..rows {
            for c in 0..cols {
                let p = ((r + PAD) * pcols + c + PAD) as usize;
                let tile = map.tiles[(r * cols + c) as usize];
                base_grid[p] = if tile == Tile::Wall { bits::WALL } else { 0 };
                padded_cell.push(p as u32);
            }
        }
        let mut window = [[0i32; WINDOW_CELLS]; 4];
        for (f, offsets) in window.iter_mut().enumerate() {
            for (w, off) in offsets.iter_mut().enumerate() {
                let (dr, dc) =
                    obs::window_offset(f as u32, w / obs::WINDOW_COLS, w % obs::WINDOW_COLS);
                *off = dr * pcols + dc;
            }
        }
        let apple_mask = map.apple_mask();
        Self {
            wall: map.tiles.iter().map(|&t| t == Tile::Wall).collect(),
            apple_mask,
            base_grid,
            padded_cell,
            window,
            layout,
            game,
            id: ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The game.
    #[must_use]
    pub fn game(&self) -> &Game {
        &self.game
    }

    /// The buffer layout.
    #[must_use]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Zeroed state buffers (call [`Engine::reset`] before stepping).
    #[must_use]
    pub fn new_state(&self) -> State {
        let layout = self.layout;
        let (envs, n) = (layout.num_envs, layout.players);
        State {
            tick: vec![0; envs],
            t: vec![0; envs],
            pose: vec![0; envs * n],
            apples: vec![0; envs * layout.apple_words],
            apples_prev: vec![0; envs * layout.apple_words],
            period_income: vec![0; envs * n],
            period_net: vec![0; envs * n],
            round_apples: vec![0; envs * n],
            round_net: vec![0; envs * n],
            rates: vec![0; envs * layout.brackets],
            stats: vec![0; envs * layout.stats],
        }
    }

    /// Zeroed output buffers.
    #[must_use]
    pub fn new_outputs(&self) -> Outputs {
        let layout = self.layout;
        let (envs, n) = (layout.num_envs, layout.players);
        Outputs {
            obs: vec![0; envs * n * layout.obs_stride],
            final_obs: vec![0; envs * n * layout.obs_stride],
            principal_map: vec![0; envs * layout.map_stride],
            principal_features: vec![0.0; envs * layout.principal_features],
            reward: vec![0.0; envs * n],
            principal_reward: vec![0.0; envs],
            terminated: vec![0; envs],
            truncated: vec![0; envs],
            flags: vec![0; envs],
        }
    }

    /// Action buffers filled with NOOP and "keep".
    #[must_use]
    pub fn new_actions(&self) -> Actions {
        let layout = self.layout;
        Actions {
            players: vec![Action::Noop as u32; layout.num_envs * layout.players],
            principal: vec![principal::KEEP; layout.num_envs * layout.brackets],
        }
    }

    /// Fresh buffers with the run started ([`Engine::reset`]): state, outputs, and actions
    /// filled with NOOP and "keep".
    pub fn start(&self) -> Result<(State, Outputs, Actions), EngineError> {
        let (mut state, mut out) = (self.new_state(), self.new_outputs());
        self.reset(&mut state, &mut out)?;
        Ok((state, out, self.new_actions()))
    }

    /// Starts the run: every env at tick 0 with fresh spawns, full apples, zero rates and
    /// statistics; writes the first observations.
    pub fn reset(&self, state: &mut State, out: &mut Outputs) -> Result<(), EngineError> {
        self.check(state, out, None)?;
        let actions = self.new_actions();
        self.run(
            state,
            out,
            &actions,
            |engine, env, mut world, out_env, _, scratch| {
                *world.tick = 0;
                *world.t = 0;
                world.period_income.fill(0);
                world.period_net.fill(0);
                world.round_apples.fill(0);
                world.round_net.fill(0);
                world.rates.fill(0);
                world.stats.fill(0);
                engine.reset_world(env, 0, &mut world, &mut scratch.occupant);
                out_env.reward.fill(0.0);
                *out_env.principal_reward = 0.0;
                *out_env.terminated = 0;
                *out_env.truncated = 0;
                *out_env.flags = flags::DECISION_NEXT;
                engine.write_obs(
                    &world,
                    out_env.obs,
                    out_env.principal_map,
                    out_env.principal_features,
                    scratch,
                );
                engine.vacate(world.pose, &mut scratch.occupant);
            },
        );
        Ok(())
    }

    /// Steps every env once.
    pub fn step(
        &self,
        params: &StepParams,
        actions: &Actions,
        state: &mut State,
        out: &mut Outputs,
    ) -> Result<(), EngineError> {
        self.check(state, out, Some(actions))?;
        if !self.game.welfare_is_exact(&params.welfare) {
            return Err(EngineError::WelfareTooFine(params.welfare.to_string()));
        }
        let n = self.layout.players;
        if let Some(i) = actions
            .players
            .iter()
            .position(|&acts| acts >= Action::COUNT)
        {
            return Err(EngineError::PlayerAction {
                env: i / n,
                player: i % n,
                value: actions.players[i],
            });
        }
        let brackets = self.layout.brackets;
        if let Some(i) = actions.principal.iter().position(|&acts| acts >= CHOICES) {
            return Err(EngineError::PrincipalAction {
                env: i / brackets,
                head: i % brackets,
                value: actions.principal[i],
            });
        }
        self.run(
            state,
            out,
            actions,
            |engine, env, world, out_env, acts, scratch| {
                engine.step_env(params, env, world, out_env, acts, scratch);
            },
        );
        Ok(())
    }

    fn check(
        &self,
        state: &State,
        out: &Outputs,
        actions: Option<&Actions>,
    ) -> Result<(), EngineError> {
        let layout = self.layout;
        let (envs, n) = (layout.num_envs, layout.players);
        let mut lens = vec![
            ("tick", state.tick.len(), envs),
            ("t", state.t.len(), envs),
            ("pose", state.pose.len(), envs * n),
            ("apples", state.apples.len(), envs * layout.apple_words),
            (
                "apples_prev",
                state.apples_prev.len(),
                envs * layout.apple_words,
            ),
            ("period_income", state.period_income.len(), envs * n),
            ("period_net", state.period_net.len(), envs * n),
            ("round_apples", state.round_apples.len(), envs * n),
            ("round_net", state.round_net.len(), envs * n),
            ("rates", state.rates.len(), envs * layout.brackets),
            ("stats", state.stats.len(), envs * layout.stats),
            ("obs", out.obs.len(), envs * n * layout.obs_stride),
            (
                "final_obs",
                out.final_obs.len(),
                envs * n * layout.obs_stride,
            ),
            (
                "principal_map",
                out.principal_map.len(),
                envs * layout.map_stride,
            ),
            (
                "principal_features",
                out.principal_features.len(),
                envs * layout.principal_features,
            ),
            ("reward", out.reward.len(), envs * n),
            ("principal_reward", out.principal_reward.len(), envs),
            ("terminated", out.terminated.len(), envs),
            ("truncated", out.truncated.len(), envs),
            ("flags", out.flags.len(), envs),
        ];
        if let Some(actions) = actions {
            lens.push(("actions.players", actions.players.len(), envs * n));
            lens.push((
                "actions.principal",
                actions.principal.len(),
                envs * layout.brackets,
            ));
        }
        match lens.into_iter().find(|&(_, len, expected)| len != expected) {
            Some((name, len, expected)) => Err(EngineError::BufferLength {
                name,
                len,
                expected,
            }),
            None => Ok(()),
        }
    }

    /// Runs `f` on every env, in parallel blocks of [`BLOCK`] envs.
    fn run<F>(&self, state: &mut State, out: &mut Outputs, actions: &Actions, f: F)
    where
        F: Fn(&Self, u32, Env<'_>, EnvOut<'_>, (&[u32], &[u32]), &mut Scratch) + Sync,
    {
        let layout = self.layout;
        let (n, brackets) = (layout.players, layout.brackets);
        let obs_len = n * layout.obs_stride;
        let blocks = layout.num_envs.div_ceil(BLOCK);
        // Split every buffer into blocks of BLOCK envs, then walk envs inside a block.
        let mut tick = state.tick.chunks_mut(BLOCK);
        let mut t = state.t.chunks_mut(BLOCK);
        let mut pose = state.pose.chunks_mut(BLOCK * n);
        let mut apples = state.apples.chunks_mut(BLOCK * layout.apple_words);
        let mut apples_prev = state.apples_prev.chunks_mut(BLOCK * layout.apple_words);
        let mut period_income = state.period_income.chunks_mut(BLOCK * n);
        let mut period_net = state.period_net.chunks_mut(BLOCK * n);
        let mut round_apples = state.round_apples.chunks_mut(BLOCK * n);
        let mut round_net = state.round_net.chunks_mut(BLOCK * n);
        let mut rates = state.rates.chunks_mut(BLOCK * brackets);
        let mut stats = state.stats.chunks_mut(BLOCK * layout.stats);
        let mut obs = out.obs.chunks_mut(BLOCK * obs_len);
        let mut final_obs = out.final_obs.chunks_mut(BLOCK * obs_len);
        let mut principal_map = out.principal_map.chunks_mut(BLOCK * layout.map_stride);
        let mut principal_features = out
            .principal_features
            .chunks_mut(BLOCK * layout.principal_features);
        let mut reward = out.reward.chunks_mut(BLOCK * n);
        let mut principal_reward = out.principal_reward.chunks_mut(BLOCK);
        let mut terminated = out.terminated.chunks_mut(BLOCK);
        let mut truncated = out.truncated.chunks_mut(BLOCK);
        let mut flags = out.flags.chunks_mut(BLOCK);
        let mut player_actions = actions.players.chunks(BLOCK * n);
        let mut choices = actions.principal.chunks(BLOCK * brackets);
        let mut work = Vec::with_capacity(blocks);
        for block in 0..blocks {
            let envs = (layout.num_envs - block * BLOCK).min(BLOCK);
            let mut next = || -> Option<Block<'_>> {
                Some(Block {
                    tick: tick.next()?,
                    t: t.next()?,
                    pose: pose.next()?,
                    apples: apples.next()?,
                    apples_prev: apples_prev.next()?,
                    period_income: period_income.next()?,
                    period_net: period_net.next()?,
                    round_apples: round_apples.next()?,
                    round_net: round_net.next()?,
                    rates: rates.next()?,
                    stats: stats.next()?,
                    obs: obs.next()?,
                    final_obs: final_obs.next()?,
                    principal_map: principal_map.next()?,
                    principal_features: principal_features.next()?,
                    reward: reward.next()?,
                    principal_reward: principal_reward.next()?,
                    terminated: terminated.next()?,
                    truncated: truncated.next()?,
                    flags: flags.next()?,
                    actions: player_actions.next()?,
                    choices: choices.next()?,
                })
            };
            work.push((block, envs, next().expect("buffer lengths were checked")));
        }
        let body = |(block, envs, slices): (usize, usize, Block<'_>)| {
            SCRATCH.with_borrow_mut(|cached| {
                let scratch = match cached {
                    Some((id, scratch)) if *id == self.id => scratch,
                    _ => {
                        let fresh = Scratch::new(self.base_grid.clone(), layout.apple_words, n);
                        &mut cached.insert((self.id, fresh)).1
                    }
                };
                self.run_block(block, envs, slices, scratch, &f);
            });
        };
        if blocks == 1 {
            work.into_iter().for_each(body);
        } else {
            work.into_par_iter().for_each(body);
        }
    }

    /// Runs `f` on the envs of one block.
    fn run_block<F>(
        &self,
        block: usize,
        envs: usize,
        slices: Block<'_>,
        scratch: &mut Scratch,
        f: &F,
    ) where
        F: Fn(&Self, u32, Env<'_>, EnvOut<'_>, (&[u32], &[u32]), &mut Scratch) + Sync,
    {
        let layout = self.layout;
        let (n, brackets) = (layout.players, layout.brackets);
        let obs_len = n * layout.obs_stride;
        let words = layout.apple_words;
        let span = |i: usize, k: usize| i * k..(i + 1) * k;
        for i in 0..envs {
            let env = Env {
                tick: &mut slices.tick[i],
                t: &mut slices.t[i],
                pose: &mut slices.pose[span(i, n)],
                apples: &mut slices.apples[span(i, words)],
                apples_prev: &mut slices.apples_prev[span(i, words)],
                period_income: &mut slices.period_income[span(i, n)],
                period_net: &mut slices.period_net[span(i, n)],
                round_apples: &mut slices.round_apples[span(i, n)],
                round_net: &mut slices.round_net[span(i, n)],
                rates: &mut slices.rates[span(i, brackets)],
                stats: &mut slices.stats[span(i, layout.stats)],
            };
            let env_out = EnvOut {
                obs: &mut slices.obs[span(i, obs_len)],
                final_obs: &mut slices.final_obs[span(i, obs_len)],
                principal_map: &mut slices.principal_map[span(i, layout.map_stride)],
                principal_features: &mut slices.principal_features
                    [span(i, layout.principal_features)],
                reward: &mut slices.reward[span(i, n)],
                principal_reward: &mut slices.principal_reward[i],
                terminated: &mut slices.terminated[i],
                truncated: &mut slices.truncated[i],
                flags: &mut slices.flags[i],
            };
            let acts = (
                &slices.actions[span(i, n)],
                &slices.choices[span(i, brackets)],
            );
            f(
                self,
                (block * BLOCK + i) as u32,
                env,
                env_out,
                acts,
                scratch,
            );
        }
    }

    /// Spawns the players and restores every apple, drawing from tick `tick`. `occupant`
    /// must hold no player and ends up marking the new spawns.
    fn reset_world(&self, env: u32, tick: u32, world: &mut Env<'_>, occupant: &mut [u32]) {
        let map = &self.game.map;
        let key = rng::tick_key(self.game.run_key, env, tick);
        let spawn = Stream::new(key, stream::SPAWN);
        let face = Stream::new(key, stream::FACING);
        world.apples.copy_from_slice(&self.apple_mask);
        world.apples_prev.copy_from_slice(&self.apple_mask);
        // The `Q` cells go to the first players in a random order (Melting Pot shuffles
        // them): a Fisher–Yates shuffle of the cells.
        let mut inside_cells = map.inside_spawn_cells.clone();
        let order = Stream::new(key, stream::INSIDE_ORDER);
        for i in (1..inside_cells.len()).rev() {
            let j = order.below(i as u32, i as u32 + 1) as usize;
            inside_cells.swap(i, j);
        }
        let mut counter = 0;
        for i in 0..world.pose.len() {
            let cell = if let Some(&q) = inside_cells.get(i) {
                q
            } else {
                // Uniform over the P cells not taken yet (rejection; a free cell exists
                // because config validation bounds the players by the spawn cells).
                loop {
                    let c = map.spawn_cells
                        [spawn.below(counter, map.spawn_cells.len() as u32) as usize];
                    counter += 1;
                    if occupant[self.padded(c)] == 0 {
                        break c;
                    }
                }
            };
            world.pose[i] = Pose::new(cell, face.draw(i as u32) >> 30).0;
            occupant[self.padded(cell)] = i as u32 + 1;
        }
    }

    /// One step of one env (SPEC §2–4): the phases in order, each named like the WGSL
    /// kernel that does the same on the GPU.
    fn step_env(
        &self,
        params: &StepParams,
        env: u32,
        mut world: Env<'_>,
        mut out: EnvOut<'_>,
        (actions, choices): (&[u32], &[u32]),
        scratch: &mut Scratch,
    ) {
        let key = rng::tick_key(self.game.run_key, env, *world.tick);
        self.occupy(world.pose, &mut scratch.occupant);
        self.decide(params.schedule, &mut world, choices);
        self.move_players(key, &mut world, actions, scratch);
        self.regrow(key, &mut world, scratch);
        let flags = self.reward(params, &mut world, &mut out, scratch);
        self.advance(env, &mut world, &mut out, flags, scratch);
        self.write_obs(
            &world,
            out.obs,
            out.principal_map,
            out.principal_features,
            scratch,
        );
        self.vacate(world.pose, &mut scratch.occupant);
    }

    /// Marks each player on the occupancy grid (player + 1 on its cell).
    fn occupy(&self, pose: &[u32], occupant: &mut [u32]) {
        for (i, &p) in pose.iter().enumerate() {
            occupant[self.padded(Pose(p).cell())] = i as u32 + 1;
        }
    }

    /// Clears the players' cells on the occupancy grid.
    fn vacate(&self, pose: &[u32], occupant: &mut [u32]) {
        for &p in pose {
            occupant[self.padded(Pose(p).cell())] = 0;
        }
    }

    /// Index of map cell `cell` in the padded grid.
    #[inline(always)]
    fn padded(&self, cell: u32) -> usize {
        self.padded_cell[cell as usize] as usize
    }

    /// Calls `seen(j, slot)` for every other player `j` in player `i`'s window (SPEC §3,
    /// visibility), `slot` being its window cell, row-major. The cost is linear in the
    /// smaller of the players and the window: with fewer players than window cells each
    /// one is tested, otherwise each window cell is looked up in the occupancy grid.
    #[inline]
    fn for_each_seen(
        &self,
        pose: &[u32],
        i: usize,
        occupant: &[u32],
        mut seen: impl FnMut(usize, usize),
    ) {
        let me = Pose(pose[i]);
        if pose.len() <= WINDOW_CELLS {
            let cols = self.game.map.cols;
            let (mr, mc) = ((me.cell() / cols) as i32, (me.cell() % cols) as i32);
            for (j, &p) in pose.iter().enumerate().filter(|&(j, _)| j != i) {
                let other = Pose(p).cell();
                let (dr, dc) = ((other / cols) as i32 - mr, (other % cols) as i32 - mc);
                if let Some((wr, wc)) = obs::window_position(me.facing(), dr, dc) {
                    seen(j, wr * obs::WINDOW_COLS + wc);
                }
            }
        } else {
            let centre = self.padded(me.cell()) as i32;
            for (slot, &off) in self.window[me.facing() as usize].iter().enumerate() {
                let o = occupant[(centre + off) as usize] as usize;
                if o != 0 && o != i + 1 {
                    seen(o - 1, slot);
                }
            }
        }
    }

    /// `move.wgsl`, first part (SPEC §4): on a decision step (`t ≡ 0 mod tax_period`) a new
    /// voting round clears the round's totals, the period's totals clear, and the
    /// principal's choices set the rates unless it is frozen (curriculum phase 1).
    fn decide(&self, sched: TaxSchedule, world: &mut Env<'_>, choices: &[u32]) {
        let game = &self.game;
        let (t, tick) = (*world.t, *world.tick);
        // Periods are counted on `t` and rounds on `tick`: one clock, because `tick ≡ t`
        // (mod `tax_period`) whenever `episode_len` is a multiple of `tax_period`, which
        // `Config::resolve` enforces (`env.episode_len`).
        if t % game.tax_period == 0 {
            if (tick / game.tax_period).is_multiple_of(game.round_periods) {
                world.round_apples.fill(0);
                world.round_net.fill(0);
            }
            world.period_income.fill(0);
            world.period_net.fill(0);
            // A frozen principal (curriculum phase 1) leaves the rates as they are.
            if sched.principal_learns {
                for (rate, &choice) in world.rates.iter_mut().zip(choices) {
                    *rate = principal::apply_choice(
                        *rate,
                        choice,
                        sched.rate_cap_tenths,
                        game.max_rate_change_tenths,
                    );
                }
            }
        }
    }

    /// `move.wgsl` (SPEC §2, movement and eating): the players act one at a time in a fresh
    /// random order; a move succeeds when its target is on the grid, not a wall and free at
    /// that moment; entering a live apple eats it. `scratch.before` keeps the apples as they were.
    fn move_players(&self, key: u32, world: &mut Env<'_>, actions: &[u32], scratch: &mut Scratch) {
        let map = &self.game.map;
        let n = world.pose.len();
        let (ate, order) = (&mut scratch.ate, &mut scratch.order);
        ate.fill(0);
        for (i, slot) in order.iter_mut().enumerate() {
            *slot = i as u32;
        }
        let shuffle = Stream::new(key, stream::MOVE_ORDER);
        for i in (1..n).rev() {
            let j = shuffle.below(i as u32, i as u32 + 1) as usize;
            order.swap(i, j);
        }
        scratch.before.copy_from_slice(world.apples);
        let cols = map.cols as i32;
        for &i in order.iter() {
            let i = i as usize;
            let pose = Pose(world.pose[i]);
            let action = Action::ALL[actions[i] as usize];
            let Some(q) = action.move_quarter_turns() else {
                world.pose[i] =
                    Pose::new(pose.cell(), pose.facing() + action.turn_quarter_turns()).0;
                continue;
            };
            let (dr, dc) = facing::delta(pose.facing() + q);
            let (r, c) = (
                pose.cell() as i32 / cols + dr,
                pose.cell() as i32 % cols + dc,
            );
            if r < 0 || c < 0 || r >= map.rows as i32 || c >= cols {
                continue;
            }
            let target = (r * cols + c) as u32;
            if self.wall[target as usize] || scratch.occupant[self.padded(target)] != 0 {
                continue;
            }
            scratch.occupant[self.padded(pose.cell())] = 0;
            scratch.occupant[self.padded(target)] = i as u32 + 1;
            world.pose[i] = Pose::new(target, pose.facing()).0;
            let a = map.apple_index[target as usize];
            if a != Map::NOT_APPLE && bit(world.apples, a) {
                world.apples[(a >> 5) as usize] &= !(1 << (a & 31));
                ate[i] = 1;
            }
        }
    }

    /// `regrow.wgsl` (SPEC §2, regrowth with Melting Pot's timing): an apple cell empty at
    /// the end of steps t−2 (`apples_prev`) and t−1 (`scratch.before`) regrows with
    /// `p[min(k, len − 1)]`, k its live neighbours at the end of step t−2; an apple that
    /// grows under a player is eaten by it at once.
    fn regrow(&self, key: u32, world: &mut Env<'_>, scratch: &mut Scratch) {
        let game = &self.game;
        let map = &game.map;
        let regrow = Stream::new(key, stream::REGROW);
        let last = game.regrowth_thresholds.len() - 1;
        for w in 0..scratch.before.len() {
            let mut eligible = !scratch.before[w] & !world.apples_prev[w] & self.apple_mask[w];
            while eligible != 0 {
                let a = (w as u32) * 32 + eligible.trailing_zeros();
                eligible &= eligible - 1;
                let live = map
                    .neighbours_of(a as usize)
                    .iter()
                    .filter(|&&b| bit(world.apples_prev, b))
                    .count();
                let threshold = game.regrowth_thresholds[live.min(last)];
                if regrow.draw(a) < threshold {
                    let cell = map.apple_cells[a as usize];
                    match scratch.occupant[self.padded(cell)] {
                        0 => world.apples[w] |= 1 << (a & 31),
                        eater => scratch.ate[eater as usize - 1] += 1,
                    }
                }
            }
        }
        world.apples_prev.copy_from_slice(&scratch.before);
    }

    /// `reward.wgsl` (SPEC §4): on a period's last step taxes are settled and shared;
    /// players' rewards (both forms) and the principal's welfare-delta reward are written.
    /// Returns the period and round flags.
    fn reward(
        &self,
        params: &StepParams,
        world: &mut Env<'_>,
        out: &mut EnvOut<'_>,
        scratch: &mut Scratch,
    ) -> u32 {
        let game = &self.game;
        let n = world.pose.len();
        let (t, tick) = (*world.t, *world.tick);
        let sched = params.schedule;
        let settle = t % game.tax_period == game.tax_period - 1;
        let Scratch {
            ate,
            net,
            taxed,
            start,
            end,
            occupant,
            ..
        } = scratch;
        let cur_apples = &mut world.stats[stats::cur_apples(n)..stats::cur_apples(n) + n];
        for (i, &a) in ate.iter().enumerate() {
            world.period_income[i] += a;
            world.round_apples[i] += a;
            cur_apples[i] += a;
        }
        net.fill(0);
        if settle && sched.tax_enabled {
            let revenue = tax::settle(
                world.period_income,
                &game.brackets,
                world.rates,
                sched.multiplier_tenths,
                net,
            );
            world.stats[stats::CUR_REVENUE] += revenue;
        }
        let unit = apple_unit(n as u32);
        for i in 0..n {
            taxed[i] = ate[i] as i32 * unit - net[i];
            world.period_net[i] += taxed[i];
            world.round_net[i] += taxed[i];
            let s = &mut world.stats[stats::cur_post_tax(n) + i];
            *s = (*s as i32 + taxed[i]) as u32;
        }
        let types = &game.types;
        for i in 0..n {
            let mut seen = Share::default();
            self.for_each_seen(world.pose, i, occupant, |j, _| {
                seen.taxed += i64::from(taxed[j]);
                seen.raw += i64::from(ate[j]);
            });
            let own = Share {
                taxed: i64::from(taxed[i]),
                raw: i64::from(ate[i]),
            };
            let num = game.reward_form.numerator(
                i64::from(unit),
                own,
                seen,
                i64::from(types.selfishness[i]),
                i64::from(types.trust[i]),
            );
            out.reward[i] = exact_f32(num) * game.reward_scale;
        }
        let mut flag_bits = 0;
        *out.principal_reward = 0.0;
        if settle {
            flag_bits |= flags::PERIOD_END;
            // The round's totals at the period's start and end, in the objective's units.
            for i in 0..n {
                let (round, period) = match game.welfare_of {
                    WelfareOf::RawApples => {
                        (world.round_apples[i] as i64, world.period_income[i] as i64)
                    }
                    WelfareOf::PostTaxIncome => {
                        (world.round_net[i] as i64, world.period_net[i] as i64)
                    }
                };
                end[i] = round;
                start[i] = round - period;
            }
            *out.principal_reward =
                principal::period_reward(&params.welfare, start, end, game.welfare_unit());
            if (tick / game.tax_period + 1).is_multiple_of(game.round_periods) {
                flag_bits |= flags::ROUND_END;
            }
        }
        flag_bits
    }

    /// `reward.wgsl` (the clock), `final_obs.wgsl` and `auto_reset` (SPEC §2, episode): time
    /// advances; at `episode_len` the env is truncated, its final observation kept, its
    /// statistics closed, and the world reset (rates persist unless configured otherwise).
    fn advance(
        &self,
        env: u32,
        world: &mut Env<'_>,
        out: &mut EnvOut<'_>,
        mut flag_bits: u32,
        scratch: &mut Scratch,
    ) {
        let game = &self.game;
        let n = world.pose.len();
        let (t, tick) = (*world.t, *world.tick);
        *world.tick = tick + 1;
        *world.t = t + 1;
        *out.terminated = 0;
        *out.truncated = 0;
        if *world.t == game.episode_len {
            flag_bits |= flags::EPISODE_END;
            *out.truncated = 1;
            self.write_obs(
                world,
                out.final_obs,
                out.principal_map,
                out.principal_features,
                scratch,
            );
            let live: u32 = world.apples.iter().map(|w| w.count_ones()).sum();
            let episode_stats = &mut *world.stats;
            episode_stats[stats::EPISODES] += 1;
            episode_stats[stats::LAST_REVENUE] = episode_stats[stats::CUR_REVENUE];
            episode_stats[stats::CUR_REVENUE] = 0;
            episode_stats[stats::LAST_APPLES_LEFT] = live;
            episode_stats.copy_within(
                stats::cur_apples(n)..stats::cur_apples(n) + 2 * n,
                stats::last_apples(n),
            );
            episode_stats[stats::cur_apples(n)..stats::cur_apples(n) + 2 * n].fill(0);
            self.vacate(world.pose, &mut scratch.occupant);
            self.reset_world(env, tick + 1, world, &mut scratch.occupant);
            *world.t = 0;
            if game.reset_rates_each_episode {
                world.rates.fill(0);
            }
        }
        if (*world.t).is_multiple_of(game.tax_period) {
            flag_bits |= flags::DECISION_NEXT;
        }
        *out.flags = flag_bits;
    }

    /// Writes the players' windows, the principal's map and its features.
    fn write_obs(
        &self,
        world: &Env<'_>,
        obs: &mut [u8],
        pmap: &mut [u8],
        pfeat: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let game = &self.game;
        let map = &game.map;
        let n = world.pose.len();
        // Dynamic bits of the padded grid: apples and grass.
        for (a, &cell) in map.apple_cells.iter().enumerate() {
            let a = a as u32;
            let p = self.padded_cell[cell as usize] as usize;
            scratch.grid[p] = if bit(world.apples, a) {
                bits::APPLE
            } else if map
                .neighbours_of(a as usize)
                .iter()
                .any(|&b| bit(world.apples, b))
            {
                bits::GRASS
            } else {
                0
            };
        }
        for (i, win) in obs.chunks_exact_mut(OBS_STRIDE).enumerate() {
            let me = Pose(world.pose[i]);
            let centre = self.padded_cell[me.cell() as usize] as i32;
            for (dst, &off) in win.iter_mut().zip(&self.window[me.facing() as usize]) {
                *dst = scratch.grid[(centre + off) as usize];
            }
            win[WINDOW_CELLS..].fill(0);
            win[obs::SELF_ROW * obs::WINDOW_COLS + obs::SELF_COL] |= bits::SELF;
            self.for_each_seen(world.pose, i, &scratch.occupant, |j, slot| {
                let rel = (Pose(world.pose[j]).facing() + 4 - me.facing()) & 3;
                win[slot] |= bits::OTHER | (rel as u8) << bits::FACING_SHIFT;
            });
        }
        // The principal's map: the inner grid plus every player with its facing.
        let (rows, cols) = (map.rows as usize, map.cols as usize);
        let pcols = cols + 2 * PAD as usize;
        for r in 0..rows {
            let src = (r + PAD as usize) * pcols + PAD as usize;
            pmap[r * cols..(r + 1) * cols].copy_from_slice(&scratch.grid[src..src + cols]);
        }
        pmap[rows * cols..].fill(0);
        for &p in world.pose.iter() {
            let p = Pose(p);
            pmap[p.cell() as usize] |= bits::OTHER | (p.facing() as u8) << bits::FACING_SHIFT;
        }
        let unit_scale = 1.0 / apple_unit(n as u32) as f32;
        for (dst, &net) in pfeat[..n].iter_mut().zip(world.period_net.iter()) {
            *dst = exact_f32(net.into()) * unit_scale;
        }
        for (dst, &rate) in pfeat[n..].iter_mut().zip(world.rates.iter()) {
            *dst = exact_f32(rate.into()) * 0.1;
        }
        let k = n + world.rates.len();
        pfeat[k] = exact_f32((*world.t % game.tax_period).into()) * (1.0 / game.tax_period as f32);
        let period_in_round = (*world.tick / game.tax_period) % game.round_periods;
        pfeat[k + 1] = exact_f32(period_in_round.into()) * (1.0 / game.round_periods as f32);
    }
}
