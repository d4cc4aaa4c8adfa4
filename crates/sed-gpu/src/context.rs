//! The wgpu device: the best adapter on the machine, requested the way Burn's cubecl
//! requests it, so that one device can serve the env kernels and the networks.

use crate::GpuError;

/// An instance, adapter, device and queue.
#[derive(Clone, Debug)]
pub struct GpuContext {
    /// The wgpu instance.
    pub instance: wgpu::Instance,
    /// The chosen adapter.
    pub adapter: wgpu::Adapter,
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is.
    pub info: wgpu::AdapterInfo,
}

/// Preference order of device types: a real GPU first, the software rasteriser
/// (Mesa lavapipe) last.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (device, backend)
}

impl GpuContext {
    /// Picks the best adapter and requests a device with all its features and limits.
    ///
    /// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) restricts the backends; `WGPU_ADAPTER_NAME`
    /// picks the first adapter whose name contains it (case-insensitive). Without a GPU,
    /// Mesa's lavapipe (Vulkan on the CPU) is used.
    pub fn new() -> Result<Self, GpuError> {
        pollster::block_on(Self::new_async())
    }

    async fn new_async() -> Result<Self, GpuError> {
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let mut adapters = instance.enumerate_adapters(backends).await;
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
            })
            .collect();
        if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
            let wanted = wanted.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
            if adapters.is_empty() {
                return Err(GpuError::NoAdapter(format!(
                    "no adapter name contains WGPU_ADAPTER_NAME={wanted:?}; available: {names:?}"
                )));
            }
        }
        adapters.sort_by_key(|a| rank(&a.get_info()));
        let adapter = adapters.into_iter().next().ok_or_else(|| {
            GpuError::NoAdapter(format!(
                "no wgpu adapter for backends {backends:?} (install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers)"
            ))
        })?;
        let info = adapter.get_info();
        tracing::info!(
            adapter = %info.name,
            backend = ?info.backend,
            device_type = ?info.device_type,
            driver = %info.driver,
            "sed-gpu device"
        );
        // As cubecl-wgpu requests it: every adapter feature (cubecl chooses kernels by the
        // adapter's features) and the adapter's own limits.
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("sed-gpu"),
                required_features: adapter
                    .features()
                    .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
                required_limits: adapter.limits(),
                memory_hints: wgpu::MemoryHints::MemoryUsage,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(format!("request_device on {}: {e}", info.name)))?;
        Ok(Self {
            instance,
            adapter,
            device,
            queue,
            info,
        })
    }

    /// A one-line description of the device, for logs and benchmark tables.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }
}
