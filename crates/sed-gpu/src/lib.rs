//! # sed-gpu: the apple-picking game as WGSL compute kernels
//!
//! The same game as `sed-core`, bit for bit, stepping tens of thousands of envs per
//! dispatch. The buffers are `sed-core`'s structure-of-arrays layout
//! ([`sed_core::engine::Layout`]), one wgpu storage buffer per field; the kernels in the
//! repository's `shaders/` run one phase each (move, regrow, reward, principal map, final
//! observations, auto-reset, features, observations); every constant and binding reaches
//! WGSL from Rust ([`kernels`]).
//!
//! ## Sharing the device with Burn
//!
//! [`GpuContext`] requests its device the way Burn's cubecl does (all adapter features and
//! limits), so `sed-train` can register it with Burn (`WgpuSetup`) and both run on one
//! device and queue. cubecl cannot adopt a foreign buffer as a tensor, so the tensors own
//! the memory: [`GpuEngine::bind_external`] rebinds an engine buffer to a region of a Burn
//! tensor's buffer, and our own pipelines read and write it in place. This keeps the
//! kernels plain wgpu (testable without Burn, no Burn build for `sed-gpu`'s tests) and
//! free of Burn's kernel-launch conventions.

#![warn(missing_docs)]

pub mod context;
pub mod engine;
pub mod kernels;

pub use context::{AdapterChoice, GpuContext, adapters, set_adapter_choice};
pub use engine::{GpuEngine, NoiseTarget, Region};
pub use kernels::Buf;

/// What can go wrong on the GPU side.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No usable adapter or device.
    #[error("no GPU device: {0}")]
    NoAdapter(String),
    /// No adapter is the one asked for (by index, PCI bus id or name).
    #[error("no such GPU: {0}")]
    NotFound(String),
    /// The batch needs more than a device limit allows.
    #[error(
        "the device limit `{limit}` is {available} but this batch needs {needed}; use fewer envs"
    )]
    Limit {
        /// The wgpu limit's name.
        limit: &'static str,
        /// What the batch needs.
        needed: u64,
        /// What the device offers.
        available: u64,
    },
    /// A kernel failed to compile or validate.
    #[error("kernel `{kernel}` failed to build: {message}")]
    Shader {
        /// The kernel.
        kernel: &'static str,
        /// The validation error.
        message: String,
    },
    /// An external region is too small.
    #[error("region bound as `{buffer}` has {size} bytes, needs {needed}")]
    Region {
        /// The buffer.
        buffer: &'static str,
        /// Its size.
        size: u64,
        /// Needed size.
        needed: u64,
    },
    /// An external region starts at an offset the device cannot bind.
    #[error(
        "region bound as `{buffer}` starts at byte {offset}, not a multiple of the device's storage offset alignment {alignment}"
    )]
    Misaligned {
        /// The buffer.
        buffer: &'static str,
        /// The region's offset.
        offset: u64,
        /// `min_storage_buffer_offset_alignment`.
        alignment: u64,
    },
    /// A feature the GPU engine does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// Device or mapping failure.
    #[error("device error: {0}")]
    Device(String),
}
