//! The workspace's root package: it holds the cross-crate tests (`tests/`) and the
//! benchmarks (`benches/`) of the engines. The game is in `sed-core`, the GPU engine in
//! `sed-gpu`, the trainer and the `sed-train` command in `sed-train`.

pub use sed_core;
pub use sed_gpu;
