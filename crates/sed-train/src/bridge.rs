//! One device for the env kernels and the networks, and tensors as env buffers.
//!
//! The decision (Path B): `sed-gpu` keeps its own wgpu pipelines, and the device it
//! creates is registered with Burn ([`burn_device`]). cubecl cannot adopt a foreign buffer
//! as a tensor, so observation, reward and action buffers are Burn-owned tensors; the env
//! binds the region of each tensor's buffer ([`tensor_region`],
//! [`sed_gpu::GpuEngine::bind_external`]). Launching our WGSL through Burn's
//! custom-kernel path (Path A) would need the `template` feature and tie the shaders to
//! Burn's launch conventions (entry point `main`, layouts derived from the WGSL, no bounds
//! checks), and `sed-gpu` could not be built or tested without Burn.
//!
//! Ordering: Burn queues its work on its own stream. Before the env submits, call
//! [`flush`] so pending Burn work reaches the shared queue first; Burn work issued after
//! the env's submit runs after it in queue order. Keep a bound tensor alive (and do not
//! write it with Burn) while the env uses its region.

use anyhow::{Context, Result, anyhow};
use burn::backend::Wgpu;
use burn::backend::wgpu::{AutoCompiler, CubeTensor, WgpuSetup};
use burn::prelude::{Device, Int, Tensor};
use sed_gpu::{GpuContext, Region};

type Server = cubecl::wgpu::WgpuServer<AutoCompiler>;

/// Registers the env's device and queue with Burn; returns the Burn device that runs on it.
/// Call once per context.
pub fn burn_device(ctx: &GpuContext) -> Result<Device> {
    let setup = WgpuSetup {
        instance: ctx.instance.clone(),
        adapter: ctx.adapter.clone(),
        device: ctx.device.clone(),
        queue: ctx.queue.clone(),
        backend: ctx.info.backend,
    };
    Device::wgpu_options()
        .setup(setup)
        .init()
        .context("registering the sed-gpu device with Burn")
}

/// A tensor's buffer region, with the tensor kept alive alongside.
pub struct BoundTensor {
    /// The tensor's primitive; rebuild a [`Tensor`] from it to use it in Burn.
    pub primitive: CubeTensor,
    /// Its device memory, for [`sed_gpu::GpuEngine::bind_external`].
    pub region: Region,
}

impl BoundTensor {
    /// The tensor, for Burn ops that read it.
    #[must_use]
    pub fn tensor(&self) -> Tensor<1, Int> {
        Tensor::from_primitive::<Wgpu>(self.primitive.clone())
    }
}

/// The device memory of an integer tensor on the shared wgpu device (not autodiff).
pub fn tensor_region(tensor: Tensor<1, Int>) -> Result<BoundTensor> {
    let primitive: CubeTensor = tensor
        .try_into_primitive::<Wgpu>()
        .map_err(|e| anyhow!("the tensor is not a wgpu tensor: {e:?}"))?;
    let managed = primitive
        .client
        .get_resource::<Server>(primitive.handle.clone())
        .map_err(|e| anyhow!("getting the tensor's buffer: {e:?}"))?;
    let r = managed.resource();
    let region = Region {
        buffer: r.buffer.clone(),
        offset: r.offset,
        size: r.size,
    };
    Ok(BoundTensor { primitive, region })
}

/// Submits Burn's pending work on `tensor`'s stream to the shared queue.
pub fn flush(tensor: &BoundTensor) -> Result<()> {
    tensor
        .primitive
        .client
        .flush()
        .map_err(|e| anyhow!("flushing Burn: {e:?}"))
}
