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

/// Which adapter to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// The best one: a discrete GPU first, the software rasteriser last.
    Best,
    /// The adapter at this index of [`adapters`] (as `sed-train devices` lists them).
    Index(usize),
    /// The adapter on this PCI bus (`AdapterInfo::device_pci_bus_id`, e.g. `0000:65:00.0`):
    /// identical GPUs share a name but not a bus.
    PciBusId(String),
    /// The first adapter (best first) whose name contains this, ignoring case.
    Name(String),
}

impl AdapterChoice {
    /// Reads `--gpu`'s value: digits are an index, a PCI bus id (`domain:bus:device.fn`
    /// or `bus:device.fn`) a bus, anything else a name.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        let hex_parts = |s: &str| {
            s.split([':', '.'])
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()))
        };
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            Self::Index(t.parse().unwrap_or(usize::MAX))
        } else if t.contains(':') && t.contains('.') && hex_parts(t) {
            Self::PciBusId(t.to_lowercase())
        } else {
            Self::Name(t.to_owned())
        }
    }
}

/// A PCI address `[domain:]bus:device.function` as numbers (the domain `None` where it is
/// left out).
fn pci_address(text: &str) -> Option<(Option<u32>, u32, u32, u32)> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let (rest, function) = text.trim().rsplit_once('.')?;
    let mut parts: Vec<&str> = rest.split(':').collect();
    let device = hex(parts.pop()?)?;
    let bus = hex(parts.pop()?)?;
    let domain = match parts.as_slice() {
        [] => None,
        [d] => Some(hex(d)?),
        _ => return None,
    };
    Some((domain, bus, device, hex(function)?))
}

/// Whether an adapter's PCI bus id and a `--gpu` value name one slot, however each writes
/// it: wgpu `0000:65:00.0`, nvidia-smi `00000000:65:00.0`, lspci `65:00.0`.
fn same_pci_bus(adapter: &str, wanted: &str) -> bool {
    match (pci_address(adapter), pci_address(wanted)) {
        (Some((d1, b1, v1, f1)), Some((d2, b2, v2, f2))) => {
            (b1, v1, f1) == (b2, v2, f2) && (d1.is_none() || d2.is_none() || d1 == d2)
        }
        _ => false,
    }
}

/// The process's adapter choice for [`GpuContext::new`] (set once, e.g. from `--gpu`).
static CHOICE: std::sync::OnceLock<AdapterChoice> = std::sync::OnceLock::new();

/// Sets the adapter every later [`GpuContext::new`] picks. Returns `false` (and changes
/// nothing) when a choice was set before.
pub fn set_adapter_choice(choice: AdapterChoice) -> bool {
    CHOICE.set(choice).is_ok()
}

/// The backends to look at: `WGPU_BACKEND`, else all.
fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())
}

/// Every adapter wgpu finds, in its order (the indices `--gpu` takes).
#[must_use]
pub fn adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: backends(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(backends()))
        .iter()
        .map(wgpu::Adapter::get_info)
        .collect()
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
    /// Picks the adapter of [`set_adapter_choice`] (the best one by default) and requests
    /// a device with all its features and limits.
    ///
    /// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) restricts the backends; without a choice,
    /// `WGPU_ADAPTER_NAME` picks the first adapter whose name contains it (ignoring case).
    /// Without a GPU, Mesa's lavapipe (Vulkan on the CPU) is used.
    pub fn new() -> Result<Self, GpuError> {
        let choice = match (CHOICE.get(), std::env::var("WGPU_ADAPTER_NAME")) {
            (Some(choice), _) => choice.clone(),
            (None, Ok(name)) => AdapterChoice::Name(name),
            (None, Err(_)) => AdapterChoice::Best,
        };
        Self::with_choice(&choice)
    }

    /// Like [`GpuContext::new`], on the adapter `choice` names.
    pub fn with_choice(choice: &AdapterChoice) -> Result<Self, GpuError> {
        pollster::block_on(Self::new_async(choice))
    }

    async fn new_async(choice: &AdapterChoice) -> Result<Self, GpuError> {
        let backends = backends();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let mut adapters = instance.enumerate_adapters(backends).await;
        let listing: Vec<String> = adapters
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let i = a.get_info();
                format!("{k}: {} (PCI {:?})", i.name, i.device_pci_bus_id)
            })
            .collect();
        let none = |what: String| {
            GpuError::NotFound(format!("{what}; the adapters: {}", listing.join(", ")))
        };
        match choice {
            AdapterChoice::Best => {}
            AdapterChoice::Index(k) => {
                if *k >= adapters.len() {
                    return Err(none(format!(
                        "--gpu {k}: there are {} adapters",
                        adapters.len()
                    )));
                }
                adapters = vec![adapters.swap_remove(*k)];
            }
            AdapterChoice::PciBusId(bus) => {
                adapters.retain(|a| same_pci_bus(&a.get_info().device_pci_bus_id, bus));
                if adapters.is_empty() {
                    return Err(none(format!("--gpu {bus}: no adapter on that PCI bus")));
                }
            }
            AdapterChoice::Name(name) => {
                let wanted = name.to_lowercase();
                adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
                if adapters.is_empty() {
                    return Err(none(format!("--gpu {name:?}: no adapter name contains it")));
                }
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

#[cfg(test)]
mod tests {
    use super::{AdapterChoice, same_pci_bus};

    #[test]
    fn pci_bus_ids_match_however_they_are_written() {
        let wgpu = "0000:65:00.0";
        for same in [
            "0000:65:00.0",
            "00000000:65:00.0",
            "65:00.0",
            " 0000:65:00.0 ",
        ] {
            assert!(same_pci_bus(wgpu, same), "{same}");
        }
        for other in ["0000:66:00.0", "0001:65:00.0", "65:00.1", "", "65:00"] {
            assert!(!same_pci_bus(wgpu, other), "{other}");
        }
        assert!(!same_pci_bus("", "65:00.0"), "an adapter without a bus id");
    }

    #[test]
    fn gpu_choices_read_as_index_bus_or_name() {
        assert_eq!(AdapterChoice::parse("0"), AdapterChoice::Index(0));
        assert_eq!(AdapterChoice::parse(" 12 "), AdapterChoice::Index(12));
        assert_eq!(
            AdapterChoice::parse("0000:65:00.0"),
            AdapterChoice::PciBusId("0000:65:00.0".into())
        );
        assert_eq!(
            AdapterChoice::parse("3B:00.0"),
            AdapterChoice::PciBusId("3b:00.0".into())
        );
        assert_eq!(
            AdapterChoice::parse("H100"),
            AdapterChoice::Name("H100".into())
        );
        assert_eq!(
            AdapterChoice::parse("NVIDIA H100 80GB HBM3"),
            AdapterChoice::Name("NVIDIA H100 80GB HBM3".into())
        );
    }
}
