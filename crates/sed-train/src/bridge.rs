//! One device for the env kernels and the networks, and tensors as env buffers.
//!
//! The decision (Path B): `sed-gpu` keeps its own wgpu pipelines, and the device it
//! creates is registered with Burn ([`burn_device`]). cubecl cannot adopt a foreign buffer
//! as a tensor, so the tensors own the memory the two share: the env copies its outputs
//! into Burn tensors inside each step's submit ([`sed_gpu::GpuEngine::mirror`]) and copies
//! sampled actions out of them ([`sed_gpu::GpuEngine::step_with`]), device to device; it can
//! also bind a tensor's region directly ([`sed_gpu::GpuEngine::bind_external`]). Copies are
//! the default because Burn sub-allocates tensors from shared buffers, and wgpu refuses a
//! dispatch that binds one buffer both read-only and writable. Launching our WGSL through Burn's
//! custom-kernel path (Path A) would need the `template` feature and tie the shaders to
//! Burn's launch conventions (entry point `main`, layouts derived from the WGSL, no bounds
//! checks), and `sed-gpu` could not be built or tested without Burn.
//!
//! Ordering: Burn queues its work on its own stream. Before the env submits, call
//! [`flush`] so pending Burn work reaches the shared queue first; Burn work issued after
//! the env's submit runs after it in queue order. Keep a bound tensor alive (and do not
//! write it with Burn) while the env uses its region: a [`BoundTensor`] holds a reference,
//! so Burn never reuses its memory or writes it in place.

use std::marker::PhantomData;

use anyhow::{Context, Result, anyhow};
use burn::backend::Wgpu;
use burn::backend::wgpu::{AutoCompiler, CubeTensor, WgpuSetup};
use burn::prelude::{Device, Tensor};
use burn::tensor::BackendPrimitive;
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

/// A tensor kind (`Float` or `Int`) whose wgpu primitive is a [`CubeTensor`].
pub trait CubeKind: BackendPrimitive<Wgpu, Primitive = CubeTensor> {}
impl<K: BackendPrimitive<Wgpu, Primitive = CubeTensor>> CubeKind for K {}

/// A tensor's buffer region, with the tensor kept alive alongside.
pub struct BoundTensor<const D: usize, K> {
    /// The tensor's primitive; [`BoundTensor::tensor`] rebuilds a [`Tensor`] from it.
    pub primitive: CubeTensor,
    /// Its device memory, for [`sed_gpu::GpuEngine::mirror`] and friends.
    pub region: Region,
    kind: PhantomData<K>,
}

impl<const D: usize, K: CubeKind> BoundTensor<D, K>
where
    Tensor<D, K>: Sized,
    K: burn::tensor::kind::Basic,
{
    /// The tensor, for Burn ops that read it (a new handle on the same memory).
    #[must_use]
    pub fn tensor(&self) -> Tensor<D, K> {
        Tensor::from_primitive::<Wgpu>(self.primitive.clone())
    }
}

/// The device memory of a tensor on the shared wgpu device (not autodiff).
pub fn tensor_region<const D: usize, K>(tensor: Tensor<D, K>) -> Result<BoundTensor<D, K>>
where
    K: CubeKind + burn::tensor::kind::Basic,
{
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
    Ok(BoundTensor {
        primitive,
        region,
        kind: PhantomData,
    })
}

/// Submits Burn's pending work on `tensor`'s stream to the shared queue.
pub fn flush<const D: usize, K>(tensor: &BoundTensor<D, K>) -> Result<()> {
    tensor
        .primitive
        .client
        .flush()
        .map_err(|e| anyhow!("flushing Burn: {e:?}"))
}
