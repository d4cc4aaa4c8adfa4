//! Choosing where to train: a real GPU (the `sed-gpu` engine and Burn's wgpu backend on one
//! device), or the CPU (`sed-core`'s engine and Burn's flex backend).
//!
//! Software Vulkan drivers (Mesa's lavapipe) run the GPU path correctly but far slower than
//! the CPU path, so `auto` never trains on them; `software-gpu` asks for them on purpose
//! (tests, checking the GPU path on a machine without a GPU).

use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail};
use burn::prelude::Device;
use sed_gpu::GpuContext;

use crate::bridge::burn_device;
use crate::session::InputError;

/// What `--device` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// A real GPU when there is one, else the CPU.
    #[default]
    Auto,
    /// A real GPU; an error without one.
    Gpu,
    /// The CPU.
    Cpu,
    /// The GPU path on whatever adapter wgpu finds, software drivers included.
    SoftwareGpu,
}

/// Where a run trains.
#[derive(Clone, Debug)]
pub enum Picked {
    /// The CPU path.
    Cpu,
    /// The GPU path on a shared context and the Burn device registered on it.
    Gpu(&'static GpuContext, Device),
}

impl Picked {
    /// `cpu` or `gpu`, for checkpoints and tables.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Picked::Cpu => "cpu",
            Picked::Gpu(..) => "gpu",
        }
    }

    /// The Burn device the networks run on (without autodiff).
    #[must_use]
    pub fn burn(&self) -> Device {
        match self {
            Picked::Cpu => Device::flex(),
            Picked::Gpu(_, d) => d.clone(),
        }
    }
}

/// The devices a run trains on: one, or one per GPU of `--gpus`. The first holds the
/// networks and the optimizers; every device steps its own share of the envs.
#[derive(Clone, Debug)]
pub struct Devices(pub Vec<Picked>);

impl From<Picked> for Devices {
    fn from(picked: Picked) -> Self {
        Self(vec![picked])
    }
}

/// Opens one device per entry of `--gpus` (an index, PCI bus id or name each, as `--gpu`
/// takes; an adapter named twice gives two devices on it), each registered with Burn.
/// Returns them and a sentence saying what was opened.
pub fn pick_gpus(list: &str) -> Result<(Devices, String)> {
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    if entries.iter().any(|e| e.is_empty()) {
        return Err(InputError(format!(
            "--gpus {list:?}: give adapters separated by commas, e.g. `--gpus 0,1` (see `sed-train devices`)"
        ))
        .into());
    }
    let mut picked = Vec::with_capacity(entries.len());
    let mut names = Vec::with_capacity(entries.len());
    for entry in entries {
        let choice = sed_gpu::AdapterChoice::parse(entry);
        let ctx = GpuContext::with_choice(&choice)
            .map_err(gpu_error)
            .with_context(|| format!("--gpus {entry}"))?;
        // Burn keeps every registered device for the process's life; so does this.
        let ctx: &'static GpuContext = Box::leak(Box::new(ctx));
        let device = burn_device(ctx).map_err(|e| anyhow!("--gpus {entry}: {e:#}"))?;
        names.push(ctx.describe());
        picked.push(Picked::Gpu(ctx, device));
    }
    let why = format!(
        "{} devices (--gpus {list}): {}",
        picked.len(),
        names.join("; ")
    );
    Ok((Devices(picked), why))
}

/// The process's one GPU context, registered with Burn once (Burn keeps every registered
/// device for the process's life).
pub fn shared_gpu() -> Result<(&'static GpuContext, Device)> {
    static GPU: OnceLock<Result<(GpuContext, Device), (String, bool)>> = OnceLock::new();
    let r = GPU.get_or_init(|| {
        let ctx = GpuContext::new()
            .map_err(|e| (e.to_string(), matches!(e, sed_gpu::GpuError::NotFound(_))))?;
        let device = burn_device(&ctx).map_err(|e| (format!("{e:#}"), false))?;
        Ok((ctx, device))
    });
    match r {
        Ok((ctx, device)) => Ok((ctx, device.clone())),
        Err((e, true)) => Err(InputError(e.clone()).into()),
        Err((e, false)) => Err(anyhow!("{e}")),
    }
}

/// A GPU error as the CLI reports it: an adapter that does not exist (a bad `--gpu` or
/// `--gpus`) is the user's error ([`InputError`]).
#[must_use]
pub fn gpu_error(e: sed_gpu::GpuError) -> anyhow::Error {
    match e {
        sed_gpu::GpuError::NotFound(_) => InputError(e.to_string()).into(),
        other => anyhow!(other),
    }
}

/// Whether an adapter is a software driver.
#[must_use]
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

/// Resolves `choice`; returns the device and a sentence saying what was picked and why.
pub fn pick(choice: DeviceChoice) -> Result<(Picked, String)> {
    match choice {
        DeviceChoice::Cpu => Ok((Picked::Cpu, "CPU (--device cpu)".into())),
        DeviceChoice::SoftwareGpu => {
            let (ctx, d) = shared_gpu()?;
            Ok((
                Picked::Gpu(ctx, d),
                format!("GPU path on {} (--device software-gpu)", ctx.describe()),
            ))
        }
        DeviceChoice::Gpu => {
            let (ctx, d) = shared_gpu().context("--device gpu")?;
            if is_software(&ctx.info) {
                bail!(
                    "--device gpu: no GPU found, only the software driver {}; use --device cpu (or --device software-gpu to run the GPU path on it anyway)",
                    ctx.info.name
                );
            }
            Ok((
                Picked::Gpu(ctx, d),
                format!("GPU {} (--device gpu)", ctx.describe()),
            ))
        }
        DeviceChoice::Auto => match probe() {
            Probe::Gpu(info) => {
                let (ctx, d) = shared_gpu()?;
                Ok((
                    Picked::Gpu(ctx, d),
                    format!("GPU {info} (auto: a GPU is present)"),
                ))
            }
            Probe::Software(name) => Ok((
                Picked::Cpu,
                format!(
                    "CPU (auto: the only wgpu adapter is the software driver {name}, slower than the CPU path)"
                ),
            )),
            Probe::None(why) => Ok((Picked::Cpu, format!("CPU (auto: no wgpu adapter: {why})"))),
        },
    }
}

enum Probe {
    Gpu(String),
    Software(String),
    None(String),
}

/// Looks at the adapters without creating a device.
fn probe() -> Probe {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(wgpu::Adapter::get_info).collect();
    if let Some(gpu) = infos.iter().find(|i| !is_software(i)) {
        return Probe::Gpu(format!("{} ({:?})", gpu.name, gpu.backend));
    }
    match infos.first() {
        Some(soft) => Probe::Software(soft.name.clone()),
        None => Probe::None("install a GPU driver with Vulkan, Metal or DX12 support".into()),
    }
}

/// One line per adapter wgpu sees: its index (for `--gpu`), name, backend, type, driver and PCI bus id.
#[must_use]
pub fn list() -> Vec<String> {
    sed_gpu::adapters()
        .iter()
        .enumerate()
        .map(|(k, i)| {
            format!(
                "{k}: {} ({:?}, {:?}, driver {} {}) PCI {}{}",
                i.name,
                i.backend,
                i.device_type,
                i.driver,
                i.driver_info,
                if i.device_pci_bus_id.is_empty() {
                    "-"
                } else {
                    &i.device_pci_bus_id
                },
                if is_software(i) { " [software]" } else { "" }
            )
        })
        .collect()
}
