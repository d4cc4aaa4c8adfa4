//! Helpers shared by the integration tests.
#![allow(dead_code)]

use sed_core::config::{Config, Resolved};
use sed_core::engine::{Actions, Engine, Outputs, State, StepParams};
use sed_core::principal::TaxSchedule;
use sed_core::types::Pose;

/// Resolves a config file of `configs/` with overrides.
pub fn resolved(file: &str, overrides: &[&str]) -> Resolved {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(file);
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(&path, &overrides)
        .expect("config loads")
        .resolve()
        .expect("config resolves")
}

/// An engine with its buffers, reset.
pub struct Sim {
    pub resolved: Resolved,
    pub engine: Engine,
    pub state: State,
    pub out: Outputs,
    pub actions: Actions,
    pub params: StepParams,
}

impl Sim {
    pub fn new(resolved: Resolved, num_envs: usize) -> Self {
        let engine = Engine::new(resolved.game.clone(), num_envs);
        let (mut state, mut out) = (engine.new_state(), engine.new_outputs());
        engine.reset(&mut state, &mut out).expect("reset");
        let params = StepParams {
            schedule: TaxSchedule::FULL,
            welfare: resolved.vote(),
        };
        let actions = engine.new_actions();
        Self {
            resolved,
            engine,
            state,
            out,
            actions,
            params,
        }
    }

    pub fn step(&mut self) {
        self.engine
            .step(&self.params, &self.actions, &mut self.state, &mut self.out)
            .expect("step");
    }

    pub fn players(&self) -> usize {
        self.engine.layout().players
    }

    pub fn cols(&self) -> u32 {
        self.resolved.game.map.cols
    }

    /// Puts `player` of `env` at `(row, col)` facing `facing`.
    pub fn place(&mut self, env: usize, player: usize, row: u32, col: u32, facing: u32) {
        let n = self.players();
        self.state.pose[env * n + player] = Pose::new(row * self.cols() + col, facing).0;
    }

    /// `(row, col, facing)` of `player` in `env`.
    pub fn pose(&self, env: usize, player: usize) -> (u32, u32, u32) {
        let p = Pose(self.state.pose[env * self.players() + player]);
        (p.cell() / self.cols(), p.cell() % self.cols(), p.facing())
    }

    /// Parks every player of every env on distinct floor cells of the bottom spawn rows
    /// (far from the apples), facing north, doing nothing.
    pub fn park_all(&mut self) {
        let spawn = self.resolved.game.map.spawn_cells.clone();
        let n = self.players();
        for env in 0..self.engine.layout().num_envs {
            for (pose, &cell) in self.state.pose[env * n..(env + 1) * n]
                .iter_mut()
                .zip(&spawn)
            {
                *pose = Pose::new(cell, 0).0;
            }
        }
        self.actions.players.fill(0);
    }

    pub fn apple_live(&self, env: usize, a: u32) -> bool {
        let w = self.engine.layout().apple_words;
        self.state.apples[env * w + (a / 32) as usize] >> (a % 32) & 1 == 1
    }

    pub fn set_apple(&mut self, env: usize, a: u32, live: bool) {
        let w = self.engine.layout().apple_words;
        set_bit(&mut self.state.apples[env * w..(env + 1) * w], a, live);
    }

    /// Sets apple `a` of `env` in the picture of two steps ago (SPEC §2, regrowth timing).
    pub fn set_apple_prev(&mut self, env: usize, a: u32, live: bool) {
        let w = self.engine.layout().apple_words;
        set_bit(&mut self.state.apples_prev[env * w..(env + 1) * w], a, live);
    }
}

fn set_bit(words: &mut [u32], a: u32, live: bool) {
    let word = &mut words[(a / 32) as usize];
    if live {
        *word |= 1 << (a % 32);
    } else {
        *word &= !(1 << (a % 32));
    }
}

/// A 40 × 40 map for crowds: apple rows along the top, 1,216 spawn cells below.
pub fn crowd_map() -> String {
    let (rows, cols) = (40, 40);
    let cell = |r: usize, c: usize| {
        if r == 0 || c == 0 || r == rows - 1 || c == cols - 1 {
            'W'
        } else if r <= 6 {
            if (r + c).is_multiple_of(4) { ' ' } else { 'A' }
        } else {
            'P'
        }
    };
    (0..rows)
        .map(|r| (0..cols).map(|c| cell(r, c)).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `--set` override that makes [`crowd_map`] the config's map file (written once per
/// test process under Cargo's temporary directory for integration tests).
pub fn crowd_map_override() -> String {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("crowd-map-{}.txt", std::process::id()));
        std::fs::write(&path, crowd_map()).expect("write the crowd map");
        path
    });
    format!("env.map_file={:?}", path.display().to_string())
}
