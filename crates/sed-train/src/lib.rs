//! # sed-train: PPO for the players and the principal, on Burn
//!
//! The trainer itself is the next piece of work; this crate holds what it stands on: Burn
//! pinned to 0.22.1 with a fixed feature set, and the bridge that lets Burn and `sed-gpu`
//! share one device and one set of buffers ([`bridge`]).

#![warn(missing_docs)]

pub mod bridge;
