//! # sed-core: the apple-picking game of Social Environment Design
//!
//! The executable form of the project's SPEC: the rules of Melting Pot's
//! `commons_harvest__open` without zapping (§2), the observations (§3), bracket taxes and
//! the SED framework of voting, welfare and a tax-setting principal (§1, §4), one
//! counter-based RNG, and a batched CPU engine.
//!
//! ## The central design choice: one exact game for every engine
//!
//! `sed-gpu` runs the same game as WGSL kernels and must agree with this crate bit for
//! bit. So everything that could drift between devices is integer:
//!
//! * randomness is a pure integer hash of `(seed, env, tick, stream, index)` ([`rng`]),
//!   and probabilities are integer thresholds;
//! * taxes are in tenths of an apple, player types in 1/256, and every reward is an exact
//!   integer numerator turned into a float by one integer rounding and one multiplication
//!   ([`reward`]);
//! * statistics are integer counters ([`stats`]).
//!
//! State and outputs live in flat structure-of-arrays buffers ([`engine`]) that the caller
//! owns and the GPU engine mirrors; the parameters that change during training (the tax
//! curriculum, the voted objective) are passed at step time ([`engine::StepParams`]).
//!
//! ```
//! use sed_core::{config::Config, engine::{Engine, StepParams}};
//! let resolved = Config::default().resolve().unwrap();
//! let engine = Engine::new(resolved.game.clone(), 4);
//! let (mut state, mut out) = (engine.new_state(), engine.new_outputs());
//! engine.reset(&mut state, &mut out).unwrap();
//! let params = StepParams { schedule: resolved.schedule(0), welfare: resolved.vote() };
//! let actions = engine.new_actions();
//! engine.step(&params, &actions, &mut state, &mut out).unwrap();
//! assert_eq!(state.t, vec![1; 4]);
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod map;
pub mod obs;
pub mod principal;
pub mod render;
pub mod reward;
pub mod rng;
pub mod stats;
pub mod tax;
pub mod types;
pub mod voting;
pub mod welfare;
