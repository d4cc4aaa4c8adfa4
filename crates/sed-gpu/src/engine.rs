//! The GPU engine: `sed-core`'s batch, step and reset as a sequence of compute passes over
//! device buffers laid out exactly as `sed-core`'s.
//!
//! A step writes a 32-byte uniform and submits one command buffer; it maps nothing and
//! reads nothing back. The host reads buffers only when it asks ([`GpuEngine::read_state`],
//! [`GpuEngine::read_outputs`], [`GpuEngine::read_stats`]), e.g. once per rollout.

use sed_core::config::Game;
use sed_core::engine::{Actions, Layout, Outputs, State, StepParams};

use crate::GpuError;
use crate::context::GpuContext;
use crate::kernels::{self, Buf, KernelSpec, NoiseParams, Params, Tables, Threads, WORKGROUP};

/// A byte range of a device buffer that an engine binds as one of its [`Buf`]s: its own
/// allocation, or a region of another library's buffer (a Burn tensor's).
#[derive(Clone, Debug)]
pub struct Region {
    /// The buffer.
    pub buffer: wgpu::Buffer,
    /// Offset in bytes (a multiple of the device's storage-buffer offset alignment).
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Region {
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.size),
        })
    }
}

struct Kernel {
    spec: KernelSpec,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
}

/// A buffer region that [`GpuEngine::fill_noise`] fills with sampling noise: its own
/// uniform and bind group, so several targets can be filled in one step.
pub struct NoiseTarget {
    /// The region written.
    pub region: Region,
    rows: u32,
    cols: u32,
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
}

/// The batched game on a GPU.
pub struct GpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    game: Game,
    layout: Layout,
    params: wgpu::Buffer,
    regions: Vec<Region>,
    tables_len: usize,
    reset_all: Kernel,
    step: Vec<Kernel>,
    observe: Vec<Kernel>,
    noise: (wgpu::ComputePipeline, wgpu::BindGroupLayout),
    max_dim: u32,
    mirrors: Vec<(Buf, Region)>,
}

/// Checks that `region` can stand for `name`: at least `needed` bytes, starting at a
/// multiple of `alignment`.
fn check_region(
    name: &'static str,
    region: &Region,
    needed: u64,
    alignment: u64,
) -> Result<(), GpuError> {
    if region.size < needed {
        return Err(GpuError::Region {
            buffer: name,
            size: region.size,
            needed,
        });
    }
    if !region.offset.is_multiple_of(alignment) {
        return Err(GpuError::Misaligned {
            buffer: name,
            offset: region.offset,
            alignment,
        });
    }
    Ok(())
}

/// Workgroups `(x, y)` covering `threads` invocations, spilling into `y` past the device's
/// per-dimension limit.
fn groups(threads: u64, max_per_dim: u32) -> Result<(u32, u32), GpuError> {
    let total = threads.div_ceil(WORKGROUP as u64).max(1);
    let x = total.min(max_per_dim as u64);
    let y = total.div_ceil(x);
    if y > max_per_dim as u64 {
        return Err(GpuError::Limit {
            limit: "max_compute_workgroups_per_dimension",
            needed: y,
            available: max_per_dim as u64,
        });
    }
    Ok((x as u32, y as u32))
}

impl GpuEngine {
    /// Compiles the kernels of `game` and allocates the buffers of `num_envs` envs.
    /// Fails with [`GpuError::Limit`] naming the device limit a batch this large exceeds.
    pub fn new(ctx: &GpuContext, game: Game, num_envs: usize) -> Result<Self, GpuError> {
        let device = ctx.device.clone();
        let layout = Layout::new(&game, num_envs);
        let tables = Tables::new(&game);
        let limits = device.limits();
        let mut regions = Vec::with_capacity(Buf::COUNT);
        for buf in Buf::ALL {
            let size = buf.bytes(&layout, tables.words.len());
            for (limit, available) in [
                (
                    "max_storage_buffer_binding_size",
                    limits.max_storage_buffer_binding_size,
                ),
                ("max_buffer_size", limits.max_buffer_size),
            ] {
                if size > available {
                    return Err(GpuError::Limit {
                        limit,
                        needed: size,
                        available,
                    });
                }
            }
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(buf.wgsl().0),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            regions.push(Region {
                buffer,
                offset: 0,
                size,
            });
        }
        ctx.queue.write_buffer(
            &regions[Buf::Tables as usize].buffer,
            0,
            bytemuck::cast_slice(&tables.words),
        );
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_bindings = kernels::STEP
            .iter()
            .map(|k| k.bindings.len())
            .max()
            .unwrap_or(0) as u64;
        if max_bindings > limits.max_storage_buffers_per_shader_stage as u64 {
            return Err(GpuError::Limit {
                limit: "max_storage_buffers_per_shader_stage",
                needed: max_bindings,
                available: limits.max_storage_buffers_per_shader_stage as u64,
            });
        }
        let max_dim = limits.max_compute_workgroups_per_dimension;
        let build = |spec: &KernelSpec| -> Result<Kernel, GpuError> {
            let source = kernels::source(&game, &layout, &tables, spec);
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(spec.name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }];
            for (k, &(_, write)) in spec.bindings.iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: k as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: !write },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(spec.name),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(spec.name),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.name),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(spec.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            if let Some(err) = pollster::block_on(scope.pop()) {
                return Err(GpuError::Shader {
                    kernel: spec.name,
                    message: err.to_string(),
                });
            }
            let threads = num_envs as u64
                * match spec.threads {
                    Threads::Env => 1,
                    Threads::Player => layout.players as u64,
                    Threads::MapWord => (layout.map_stride / 4) as u64,
                };
            let bind_group = Self::bind(&device, &bgl, spec, &params, &regions);
            Ok(Kernel {
                spec: *spec,
                pipeline,
                layout: bgl,
                bind_group,
                groups: groups(threads, max_dim)?,
            })
        };
        let reset_all = build(&kernels::RESET_ALL)?;
        let step = kernels::STEP
            .iter()
            .map(&build)
            .collect::<Result<Vec<_>, _>>()?;
        let observe = kernels::OBSERVE
            .iter()
            .map(&build)
            .collect::<Result<Vec<_>, _>>()?;
        let noise = Self::noise_pipeline(&device, &game)?;
        let tables_len = tables.words.len();
        Ok(Self {
            device,
            queue: ctx.queue.clone(),
            game,
            layout,
            params,
            regions,
            tables_len,
            reset_all,
            step,
            observe,
            noise,
            max_dim,
            mirrors: Vec::new(),
        })
    }

    fn noise_pipeline(
        device: &wgpu::Device,
        game: &Game,
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout), GpuError> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("noise"),
            source: wgpu::ShaderSource::Wgsl(kernels::noise_source(game).into()),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("noise"),
            entries: &[
                entry(0, wgpu::BufferBindingType::Uniform),
                entry(1, wgpu::BufferBindingType::Storage { read_only: false }),
            ],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("noise"),
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("noise"),
            layout: Some(&layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader {
                kernel: "noise",
                message: err.to_string(),
            });
        }
        Ok((pipeline, bgl))
    }

    /// Prepares `region` (at least `rows · cols` floats) as a target of sampling noise.
    pub fn noise_target(
        &self,
        region: Region,
        rows: u32,
        cols: u32,
    ) -> Result<NoiseTarget, GpuError> {
        let needed = 4 * rows as u64 * cols as u64;
        let alignment = self.device.limits().min_storage_buffer_offset_alignment as u64;
        check_region("noise", &region, needed, alignment)?;
        let uniform = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("noise params"),
            size: size_of::<NoiseParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let region = Region {
            size: needed,
            ..region
        };
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("noise"),
            layout: &self.noise.1,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: region.binding(),
                },
            ],
        });
        Ok(NoiseTarget {
            groups: groups(rows as u64 * cols as u64, self.max_dim)?,
            region,
            rows,
            cols,
            uniform,
            bind_group,
        })
    }

    /// Fills a noise target with `sed_core::rng::policy_uniform(run_key, stream, row, tick,
    /// col)` for every element: one submit, nothing read back.
    pub fn fill_noise(&self, target: &NoiseTarget, stream: u32, tick: u32) {
        let p = NoiseParams {
            len: target.rows * target.cols,
            cols: target.cols,
            stream,
            tick,
        };
        self.queue
            .write_buffer(&target.uniform, 0, bytemuck::bytes_of(&p));
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("noise"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("noise"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.noise.0);
            pass.set_bind_group(0, &target.bind_group, &[]);
            pass.dispatch_workgroups(target.groups.0, target.groups.1, 1);
        }
        self.queue.submit([encoder.finish()]);
    }

    fn bind(
        device: &wgpu::Device,
        bgl: &wgpu::BindGroupLayout,
        spec: &KernelSpec,
        params: &wgpu::Buffer,
        regions: &[Region],
    ) -> wgpu::BindGroup {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        }];
        for (k, &(buf, _)) in spec.bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: k as u32 + 1,
                resource: regions[buf as usize].binding(),
            });
        }
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(spec.name),
            layout: bgl,
            entries: &entries,
        })
    }

    /// The game.
    #[must_use]
    pub fn game(&self) -> &Game {
        &self.game
    }

    /// The buffer layout (the same as `sed-core`'s).
    #[must_use]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The region bound as `buf`.
    #[must_use]
    pub fn region(&self, buf: Buf) -> &Region {
        &self.regions[buf as usize]
    }

    /// Binds `region` (for instance a Burn tensor's buffer) as `buf` from now on, so the
    /// kernels read or write it in place. It must hold at least the bytes the layout needs.
    pub fn bind_external(&mut self, buf: Buf, region: Region) -> Result<(), GpuError> {
        let needed = buf.bytes(&self.layout, self.tables_len);
        let alignment = self.device.limits().min_storage_buffer_offset_alignment as u64;
        check_region(buf.wgsl().0, &region, needed, alignment)?;
        self.regions[buf as usize] = Region {
            size: needed,
            ..region
        };
        for kernel in std::iter::once(&mut self.reset_all)
            .chain(&mut self.step)
            .chain(&mut self.observe)
        {
            if kernel.spec.bindings.iter().any(|&(b, _)| b == buf) {
                kernel.bind_group = Self::bind(
                    &self.device,
                    &kernel.layout,
                    &kernel.spec,
                    &self.params,
                    &self.regions,
                );
            }
        }
        Ok(())
    }

    /// Copies `buf` into `region` at the end of every submit of the engine (reset, step,
    /// [`GpuEngine::write_state`]), in the same command buffer: another library's tensor
    /// (Burn's) then holds the engine's outputs without the engine binding its memory.
    ///
    /// Prefer this to [`GpuEngine::bind_external`] for buffers a kernel writes: a library
    /// that sub-allocates its tensors from shared buffers may put two of them in one
    /// buffer, and wgpu refuses a dispatch that binds one buffer both read-only and
    /// writable, whatever the ranges.
    pub fn mirror(&mut self, buf: Buf, region: Region) -> Result<(), GpuError> {
        let needed = buf.bytes(&self.layout, self.tables_len);
        check_region(buf.wgsl().0, &region, needed, wgpu::COPY_BUFFER_ALIGNMENT)?;
        self.mirrors.push((
            buf,
            Region {
                size: needed,
                ..region
            },
        ));
        Ok(())
    }

    fn write_params(&self, params: &StepParams) -> Result<(), GpuError> {
        let Some(eta) = params.welfare.linear() else {
            return Err(GpuError::Unsupported(format!(
                "the GPU engine computes the principal's reward exactly for linear welfare only (utilitarian, egalitarian, interpolated), not {}",
                params.welfare
            )));
        };
        if !self.game.welfare_is_exact(&params.welfare) {
            return Err(GpuError::Unsupported(format!(
                "welfare weight denominator {} is too fine for exact 64-bit rewards",
                eta.den
            )));
        }
        let s = params.schedule;
        let p = Params {
            num_envs: self.layout.num_envs as u32,
            tax_enabled: s.tax_enabled as u32,
            rate_cap: s.rate_cap_tenths,
            multiplier: s.multiplier_tenths,
            eta_num: eta.num,
            eta_den: eta.den,
            eta_scale_bits: sed_core::principal::welfare_scale(eta, self.game.welfare_unit())
                .to_bits(),
            principal_learns: params.schedule.principal_learns as u32,
        };
        self.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        Ok(())
    }

    /// One submit's commands: the input copies, `kernels` in one compute pass (or, with a
    /// query set, each in a pass of its own with timestamps `2i` and `2i + 1` at its start
    /// and end), then the mirror copies.
    fn encode(
        &self,
        inputs: &[(Buf, &Region)],
        kernels: &[&Kernel],
        timestamps: Option<&wgpu::QuerySet>,
    ) -> wgpu::CommandBuffer {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("sed-gpu"),
            });
        for &(buf, src) in inputs {
            let dst = &self.regions[buf as usize];
            encoder.copy_buffer_to_buffer(
                &src.buffer,
                src.offset,
                &dst.buffer,
                dst.offset,
                dst.size,
            );
        }
        let dispatch = |pass: &mut wgpu::ComputePass<'_>, k: &Kernel| {
            pass.set_pipeline(&k.pipeline);
            pass.set_bind_group(0, &k.bind_group, &[]);
            pass.dispatch_workgroups(k.groups.0, k.groups.1, 1);
        };
        match timestamps {
            None => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("sed-gpu"),
                    timestamp_writes: None,
                });
                for k in kernels {
                    dispatch(&mut pass, k);
                }
            }
            Some(query_set) => {
                for (i, k) in kernels.iter().enumerate() {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(k.spec.name),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set,
                            beginning_of_pass_write_index: Some(2 * i as u32),
                            end_of_pass_write_index: Some(2 * i as u32 + 1),
                        }),
                    });
                    dispatch(&mut pass, k);
                }
            }
        }
        for (buf, dst) in &self.mirrors {
            let src = &self.regions[*buf as usize];
            encoder.copy_buffer_to_buffer(
                &src.buffer,
                src.offset,
                &dst.buffer,
                dst.offset,
                dst.size,
            );
        }
        encoder.finish()
    }

    /// Starts the run on the device: every env at tick 0 (as [`sed_core::engine::Engine::reset`]).
    pub fn reset(&self) -> Result<(), GpuError> {
        let params = StepParams {
            schedule: sed_core::principal::TaxSchedule::OFF,
            welfare: sed_core::welfare::Welfare::Utilitarian,
        };
        self.write_params(&params)?;
        let kernels: Vec<&Kernel> = std::iter::once(&self.reset_all)
            .chain(&self.observe)
            .collect();
        self.queue.submit([self.encode(&[], &kernels, None)]);
        Ok(())
    }

    /// Steps every env once, reading the action buffers as they are on the device.
    /// Nothing is read back; out-of-range actions act as NOOP and out-of-range principal
    /// choices as "keep" (the CPU engine rejects them instead).
    pub fn step(&self, params: &StepParams) -> Result<(), GpuError> {
        self.step_with(params, &[])
    }

    /// Steps every env once after copying each `(buf, region)` of `inputs` into the
    /// engine's own `buf` in the same submit: e.g. the actions a network sampled into a
    /// tensor of its own. Each region must hold at least the buffer's bytes.
    pub fn step_with(
        &self,
        params: &StepParams,
        inputs: &[(Buf, &Region)],
    ) -> Result<(), GpuError> {
        for &(buf, src) in inputs {
            let needed = self.regions[buf as usize].size;
            if src.size < needed {
                return Err(GpuError::Region {
                    buffer: buf.wgsl().0,
                    size: src.size,
                    needed,
                });
            }
        }
        self.write_params(params)?;
        let kernels: Vec<&Kernel> = self.step.iter().collect();
        self.queue.submit([self.encode(inputs, &kernels, None)]);
        Ok(())
    }

    /// Steps every env once like [`GpuEngine::step`], but each kernel in a compute pass of
    /// its own between two GPU timestamps, and waits for the device: returns each kernel's
    /// name and time in nanoseconds, in step order. `None` (and no step taken) when the
    /// adapter has no timestamp queries (`wgpu::Features::TIMESTAMP_QUERY`).
    pub fn step_timed(
        &self,
        params: &StepParams,
    ) -> Result<Option<Vec<(&'static str, f64)>>, GpuError> {
        if !self
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Ok(None);
        }
        let count = 2 * self.step.len() as u32;
        let query_set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel times"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolved = Region {
            buffer: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel times"),
                size: 8 * u64::from(count),
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            offset: 0,
            size: 8 * u64::from(count),
        };
        self.write_params(params)?;
        let kernels: Vec<&Kernel> = self.step.iter().collect();
        let commands = self.encode(&[], &kernels, Some(&query_set));
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("kernel times"),
            });
        encoder.resolve_query_set(&query_set, 0..count, &resolved.buffer, 0);
        self.queue.submit([commands, encoder.finish()]);
        let ticks: Vec<u64> = self.read_region(&resolved)?;
        let ns_per_tick = f64::from(self.queue.get_timestamp_period());
        Ok(Some(
            kernels
                .iter()
                .zip(ticks.chunks_exact(2))
                .map(|(k, t)| (k.spec.name, t[1].saturating_sub(t[0]) as f64 * ns_per_tick))
                .collect(),
        ))
    }

    /// Uploads a whole state and set of outputs (e.g. from a checkpoint), as the engine's
    /// buffers hold them. The layouts must be this engine's.
    pub fn write_state(&self, state: &State, out: &Outputs) {
        let up = |buf: Buf, bytes: &[u8]| {
            let r = &self.regions[buf as usize];
            if !bytes.is_empty() {
                self.queue.write_buffer(&r.buffer, r.offset, bytes);
            }
        };
        use bytemuck::cast_slice as c;
        up(Buf::Tick, c(&state.tick));
        up(Buf::T, c(&state.t));
        up(Buf::Pose, c(&state.pose));
        up(Buf::Occupant, c(&self.occupancy(&state.pose)));
        up(Buf::Apples, c(&state.apples));
        up(Buf::ApplesPrev, c(&state.apples_prev));
        up(Buf::PeriodIncome, c(&state.period_income));
        up(Buf::PeriodNet, c(&state.period_net));
        up(Buf::RoundApples, c(&state.round_apples));
        up(Buf::RoundNet, c(&state.round_net));
        up(Buf::Rates, c(&state.rates));
        up(Buf::Stats, c(&state.stats));
        up(Buf::Obs, &out.obs);
        up(Buf::FinalObs, &out.final_obs);
        up(Buf::PrincipalMap, &out.principal_map);
        up(Buf::PrincipalFeatures, c(&out.principal_features));
        up(Buf::Reward, c(&out.reward));
        up(Buf::PrincipalReward, c(&out.principal_reward));
        up(Buf::Terminated, c(&out.terminated));
        up(Buf::Truncated, c(&out.truncated));
        up(Buf::Flags, c(&out.flags));
        if !self.mirrors.is_empty() {
            self.queue.submit([self.encode(&[], &[], None)]);
        }
    }

    /// The occupancy grid of `poses` ([`Buf::Occupant`]).
    fn occupancy(&self, poses: &[u32]) -> Vec<u32> {
        let l = self.layout;
        let mut grid = vec![0u32; l.num_envs * l.map_stride];
        for (env, players) in poses.chunks_exact(l.players).enumerate() {
            for (i, &pose) in players.iter().enumerate() {
                let cell = sed_core::types::Pose(pose).cell() as usize;
                grid[env * l.map_stride + cell] = i as u32 + 1;
            }
        }
        grid
    }

    /// Uploads actions (for tests and CPU-driven callers; a trainer writes them on the device).
    pub fn write_actions(&self, actions: &Actions) {
        let write = |buf: Buf, data: &[u32]| {
            let r = &self.regions[buf as usize];
            self.queue
                .write_buffer(&r.buffer, r.offset, bytemuck::cast_slice(data));
        };
        write(Buf::Actions, &actions.players);
        write(Buf::Choices, &actions.principal);
    }

    /// Copies a buffer back to the host (blocking).
    pub fn read<T: bytemuck::Pod>(&self, buf: Buf) -> Result<Vec<T>, GpuError> {
        self.read_region(&self.regions[buf as usize])
    }

    /// Copies any region of a buffer with `COPY_SRC` usage back to the host (blocking).
    pub fn read_region<T: bytemuck::Pod>(&self, r: &Region) -> Result<Vec<T>, GpuError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: r.size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        encoder.copy_buffer_to_buffer(&r.buffer, r.offset, &staging, 0, r.size);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |res| {
            let _ = tx.send(res);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Device(e.to_string()))?
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, T>(&data).to_vec();
        drop(data);
        staging.unmap();
        Ok(out)
    }

    /// The first `len` elements of a buffer (buffers of empty fields hold one padding word).
    fn read_len<T: bytemuck::Pod>(&self, buf: Buf, len: usize) -> Result<Vec<T>, GpuError> {
        let mut v = self.read(buf)?;
        v.truncate(len);
        Ok(v)
    }

    /// The whole state, as `sed-core`'s [`State`].
    pub fn read_state(&self) -> Result<State, GpuError> {
        let l = self.layout;
        let (e, n) = (l.num_envs, l.players);
        Ok(State {
            tick: self.read_len(Buf::Tick, e)?,
            t: self.read_len(Buf::T, e)?,
            pose: self.read_len(Buf::Pose, e * n)?,
            apples: self.read_len(Buf::Apples, e * l.apple_words)?,
            apples_prev: self.read_len(Buf::ApplesPrev, e * l.apple_words)?,
            period_income: self.read_len(Buf::PeriodIncome, e * n)?,
            period_net: self.read_len(Buf::PeriodNet, e * n)?,
            round_apples: self.read_len(Buf::RoundApples, e * n)?,
            round_net: self.read_len(Buf::RoundNet, e * n)?,
            rates: self.read_len(Buf::Rates, e * l.brackets)?,
            stats: self.read_stats()?,
        })
    }

    /// The statistics buffer (the one thing a trainer reads each rollout).
    pub fn read_stats(&self) -> Result<Vec<u32>, GpuError> {
        self.read_len(Buf::Stats, self.layout.num_envs * self.layout.stats)
    }

    /// Every output, as `sed-core`'s [`Outputs`].
    pub fn read_outputs(&self) -> Result<Outputs, GpuError> {
        let l = self.layout;
        let (e, n) = (l.num_envs, l.players);
        Ok(Outputs {
            obs: self.read_len(Buf::Obs, e * n * l.obs_stride)?,
            final_obs: self.read_len(Buf::FinalObs, e * n * l.obs_stride)?,
            principal_map: self.read_len(Buf::PrincipalMap, e * l.map_stride)?,
            principal_features: self.read_len(Buf::PrincipalFeatures, e * l.principal_features)?,
            reward: self.read_len(Buf::Reward, e * n)?,
            principal_reward: self.read_len(Buf::PrincipalReward, e)?,
            terminated: self.read_len(Buf::Terminated, e)?,
            truncated: self.read_len(Buf::Truncated, e)?,
            flags: self.read_len(Buf::Flags, e)?,
        })
    }
}
