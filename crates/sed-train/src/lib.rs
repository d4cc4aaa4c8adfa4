//! # sed-train: PPO for the players and the principal of Social Environment Design
//!
//! The trainer of the paper's apple-picking game (SPEC §5): one PPO policy shared by all
//! players, a PPO principal that sets bracket taxes on decision steps (a semi-MDP), the
//! players' vote on the principal's objective, and the tax curriculum. It runs on either
//! engine through one interface ([`env::VecEnv`]):
//!
//! * GPU: `sed-gpu`'s kernels and Burn's wgpu backend on one device and queue. Env state,
//!   observations, actions and rewards stay on the device; sampled actions reach the env
//!   without a host round trip ([`bridge`]); the host reads small per-iteration statistics.
//! * CPU: `sed-core`'s rayon engine and Burn's flex backend, the same loop.
//!
//! Layout: [`config`] (the `[train]` section), [`device`] (choosing the path), [`env`] (the
//! engine boundary), [`features`] (unpacking observations on the device), [`nets`] (the
//! networks), [`policy`] (sampling, the principal's mask), [`ppo`] (GAE and the loss),
//! [`adam`] (the optimizer with global gradient clipping), [`trainer`] (the loop),
//! [`checkpoint`], [`metrics`] and [`session`] (a run's files), [`bench`] (throughput), [`replay`] (GIFs of episodes).
//!
//! Reproducibility: the same seed on the same kind of device gives the same run. On the CPU
//! path this is exact: the engine, the sampling noise (the counter RNG), the minibatch
//! shuffles (a seeded ChaCha generator) and Burn's flex kernels are deterministic. On a GPU
//! the env and the noise are exact, but Burn's wgpu reductions and matmuls may sum in a
//! different order from run to run, so the networks, and hence the actions, can drift
//! apart after a while.

#![warn(missing_docs)]

pub mod adam;
pub mod bench;
pub mod bridge;
pub mod chart;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod env;
pub mod experiment;
pub mod features;
pub mod metrics;
pub mod nets;
pub mod policy;
pub mod ppo;
pub mod replay;
pub mod session;
pub mod trainer;
