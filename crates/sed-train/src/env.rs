//! The engine boundary: one trait over the two engines, so that everything above it (the
//! networks, sampling, PPO) is the same code on a CPU and on a GPU.
//!
//! * [`CpuEnv`]: `sed-core`'s rayon engine; outputs become tensors on Burn's flex device
//!   (a copy in host memory), actions come back the same way.
//! * [`GpuEnv`]: `sed-gpu`'s kernels on the device Burn shares; each step's submit ends by
//!   copying the observations, features and rewards into Burn tensors (device to device),
//!   and begins by copying the sampled actions from Burn's tensors into the engine. Nothing is read back except
//!   by [`VecEnv::read_stats`] and [`VecEnv::snapshot`], and those reads are counted.
//!
//! Envs run in lockstep: every env starts at tick 0 and episodes have a fixed length with
//! no early end, so decision steps, settlements, round and episode ends fall on the same
//! tick in every env and the trainer knows them without reading flags.
//!
//! On the GPU the tensors returned by the output accessors alias the env's live buffers:
//! use them (queue the ops that read them) before the next [`VecEnv::step`].

use anyhow::{Context, Result, anyhow};
use burn::prelude::{Device, Int, Tensor, TensorData};
use sed_core::config::Game;
use sed_core::engine::{Actions, Engine, Layout, Outputs, State, StepParams};
use sed_core::principal::CHOICES;
use sed_core::rng::{policy_uniform, stream};
use sed_core::types::Action;
use sed_gpu::{Buf, GpuContext, GpuEngine, NoiseTarget};

use crate::bridge::{BoundTensor, flush, tensor_region};

/// Which sampling noise to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// One row per player, one column per action: `[envs · players, 7]`.
    Players,
    /// One row per env and bracket head, one column per choice: `[envs · brackets, 12]`.
    Principal,
}

impl Noise {
    /// `(rows, cols, stream)` for a layout.
    #[must_use]
    pub fn shape(self, l: &Layout) -> (usize, usize, u32) {
        match self {
            Noise::Players => (
                l.num_envs * l.players,
                Action::COUNT as usize,
                stream::PLAYER_ACTION,
            ),
            Noise::Principal => (
                l.num_envs * l.brackets,
                CHOICES as usize,
                stream::PRINCIPAL_CHOICE,
            ),
        }
    }
}

/// A batch of envs whose inputs and outputs are Burn tensors.
pub trait VecEnv {
    /// The buffer layout.
    fn layout(&self) -> Layout;
    /// The game.
    fn game(&self) -> &Game;
    /// The (non-autodiff) Burn device the tensors live on.
    fn device(&self) -> &Device;
    /// What runs the env, for logs.
    fn describe(&self) -> String;
    /// Starts the run: every env at tick 0.
    fn reset(&mut self) -> Result<()>;
    /// Player observations as packed words, `[envs · players, OBS_STRIDE / 4]`.
    fn obs(&self) -> Tensor<2, Int>;
    /// Observations at the end of an episode (written on its last step), same shape.
    fn final_obs(&self) -> Tensor<2, Int>;
    /// The principal's map as packed words, `[envs, map_stride / 4]`.
    fn principal_map(&self) -> Tensor<2, Int>;
    /// The principal's features, `[envs, principal_features]` (SPEC §3).
    fn principal_features(&self) -> Tensor<2>;
    /// Player rewards of the last step, `[envs · players]`.
    fn reward(&self) -> Tensor<1>;
    /// The principal's reward of the last step (non-zero on settlements), `[envs]`.
    fn principal_reward(&self) -> Tensor<1>;
    /// Uniform noise in (0, 1) keyed by the counter RNG at `tick`
    /// (`sed_core::rng::policy_uniform`), the same bits on every engine.
    fn noise(&mut self, kind: Noise, tick: u32) -> Result<Tensor<2>>;
    /// Steps every env with player actions `[envs · players]` and principal choices
    /// `[envs · brackets]` (read on decision steps only).
    fn step(
        &mut self,
        actions: Tensor<1, Int>,
        choices: Tensor<1, Int>,
        params: &StepParams,
    ) -> Result<()>;
    /// The statistics buffer (a counted host read).
    fn read_stats(&mut self) -> Result<Vec<u32>>;
    /// The whole env, for a checkpoint (counted host reads on a GPU).
    fn snapshot(&mut self) -> Result<(State, Outputs)>;
    /// Puts a snapshot back.
    fn restore(&mut self, state: &State, out: &Outputs) -> Result<()>;
    /// Device-to-host reads so far.
    fn host_reads(&self) -> u64;
}

/// Packed bytes as little-endian `i32` words (Burn's integer dtype).
fn words(bytes: &[u8]) -> Vec<i32> {
    bytemuck::pod_collect_to_vec(bytes)
}

/// A tensor's values as `u32`, from host memory or after a device read.
pub fn to_u32(t: Tensor<1, Int>) -> Result<Vec<u32>> {
    let v: Vec<i32> = t
        .into_data()
        .convert::<i32>()
        .try_into_vec::<i32>()
        .map_err(|e| anyhow!("reading a tensor: {e:?}"))?;
    Ok(bytemuck::cast_vec(v))
}

/// The CPU path: `sed-core`'s engine and Burn's flex device.
pub struct CpuEnv {
    engine: Engine,
    state: State,
    out: Outputs,
    actions: Actions,
    device: Device,
}

impl CpuEnv {
    /// `num_envs` envs of `game` on `device` (a flex device).
    #[must_use]
    pub fn new(game: Game, num_envs: usize, device: Device) -> Self {
        let engine = Engine::new(game, num_envs);
        Self {
            state: engine.new_state(),
            out: engine.new_outputs(),
            actions: engine.new_actions(),
            engine,
            device,
        }
    }

    fn ints<const D: usize>(&self, data: Vec<i32>, shape: [usize; D]) -> Tensor<D, Int> {
        Tensor::from_data(TensorData::new(data, shape), &self.device)
    }

    fn floats<const D: usize>(&self, data: &[f32], shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(data.to_vec(), shape), &self.device)
    }
}

impl VecEnv for CpuEnv {
    fn layout(&self) -> Layout {
        self.engine.layout()
    }
    fn game(&self) -> &Game {
        self.engine.game()
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn describe(&self) -> String {
        format!(
            "CPU: sed-core engine on {} threads, networks on Burn's flex backend",
            rayon::current_num_threads()
        )
    }
    fn reset(&mut self) -> Result<()> {
        Ok(self.engine.reset(&mut self.state, &mut self.out)?)
    }
    fn obs(&self) -> Tensor<2, Int> {
        let l = self.layout();
        self.ints(
            words(&self.out.obs),
            [l.num_envs * l.players, l.obs_stride / 4],
        )
    }
    fn final_obs(&self) -> Tensor<2, Int> {
        let l = self.layout();
        self.ints(
            words(&self.out.final_obs),
            [l.num_envs * l.players, l.obs_stride / 4],
        )
    }
    fn principal_map(&self) -> Tensor<2, Int> {
        let l = self.layout();
        self.ints(
            words(&self.out.principal_map),
            [l.num_envs, l.map_stride / 4],
        )
    }
    fn principal_features(&self) -> Tensor<2> {
        let l = self.layout();
        self.floats(
            &self.out.principal_features,
            [l.num_envs, l.principal_features],
        )
    }
    fn reward(&self) -> Tensor<1> {
        self.floats(&self.out.reward, [self.out.reward.len()])
    }
    fn principal_reward(&self) -> Tensor<1> {
        self.floats(
            &self.out.principal_reward,
            [self.out.principal_reward.len()],
        )
    }
    fn noise(&mut self, kind: Noise, tick: u32) -> Result<Tensor<2>> {
        let l = self.layout();
        let (rows, cols, stream) = kind.shape(&l);
        let key = self.engine.game().run_key;
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| policy_uniform(key, stream, (i / cols) as u32, tick, (i % cols) as u32))
            .collect();
        Ok(self.floats(&data, [rows, cols]))
    }
    fn step(
        &mut self,
        actions: Tensor<1, Int>,
        choices: Tensor<1, Int>,
        params: &StepParams,
    ) -> Result<()> {
        self.actions.players = to_u32(actions)?;
        self.actions.principal = to_u32(choices)?;
        Ok(self
            .engine
            .step(params, &self.actions, &mut self.state, &mut self.out)?)
    }
    fn read_stats(&mut self) -> Result<Vec<u32>> {
        Ok(self.state.stats.clone())
    }
    fn snapshot(&mut self) -> Result<(State, Outputs)> {
        Ok((self.state.clone(), self.out.clone()))
    }
    fn restore(&mut self, state: &State, out: &Outputs) -> Result<()> {
        check_snapshot(&self.engine.layout(), state, out)?;
        self.state = state.clone();
        self.out = out.clone();
        Ok(())
    }
    fn host_reads(&self) -> u64 {
        0
    }
}

fn check_snapshot(l: &Layout, state: &State, out: &Outputs) -> Result<()> {
    let (e, n) = (l.num_envs, l.players);
    let ok = state.tick.len() == e
        && state.pose.len() == e * n
        && state.stats.len() == e * l.stats
        && out.obs.len() == e * n * l.obs_stride
        && out.principal_features.len() == e * l.principal_features;
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the saved env state does not fit {e} envs of {n} players"
        ))
    }
}

/// The GPU path: `sed-gpu`'s kernels writing into Burn tensors on the shared device.
pub struct GpuEnv {
    engine: GpuEngine,
    device: Device,
    description: String,
    obs: BoundTensor<2, Int>,
    final_obs: BoundTensor<2, Int>,
    principal_map: BoundTensor<2, Int>,
    principal_features: BoundTensor<2, burn::tensor::Float>,
    reward: BoundTensor<1, burn::tensor::Float>,
    principal_reward: BoundTensor<1, burn::tensor::Float>,
    noise_players: (BoundTensor<2, burn::tensor::Float>, NoiseTarget),
    noise_principal: (BoundTensor<2, burn::tensor::Float>, NoiseTarget),
    reads: u64,
}

impl GpuEnv {
    /// `num_envs` envs of `game` on the context's device; `device` is the Burn device
    /// registered on the same context ([`crate::bridge::burn_device`]).
    pub fn new(ctx: &GpuContext, device: Device, game: Game, num_envs: usize) -> Result<Self> {
        let mut engine = GpuEngine::new(ctx, game, num_envs)?;
        let l = engine.layout();
        let (e, n) = (l.num_envs, l.players);
        let ints = |shape: [usize; 2]| tensor_region(Tensor::<2, Int>::zeros(shape, &device));
        let floats2 = |shape: [usize; 2]| tensor_region(Tensor::<2>::zeros(shape, &device));
        let floats1 = |len: usize| tensor_region(Tensor::<1>::zeros([len], &device));
        let obs = ints([e * n, l.obs_stride / 4])?;
        let final_obs = ints([e * n, l.obs_stride / 4])?;
        let principal_map = ints([e, l.map_stride / 4])?;
        let principal_features = floats2([e, l.principal_features])?;
        let reward = floats1(e * n)?;
        let principal_reward = floats1(e)?;
        for (buf, region) in [
            (Buf::Obs, &obs.region),
            (Buf::FinalObs, &final_obs.region),
            (Buf::PrincipalMap, &principal_map.region),
            (Buf::PrincipalFeatures, &principal_features.region),
            (Buf::Reward, &reward.region),
            (Buf::PrincipalReward, &principal_reward.region),
        ] {
            engine
                .mirror(buf, region.clone())
                .with_context(|| format!("mirroring {buf:?} into a Burn tensor"))?;
        }
        let noise = |kind: Noise| -> Result<_> {
            let (rows, cols, _) = kind.shape(&l);
            let t = floats2([rows, cols])?;
            let target = engine.noise_target(t.region.clone(), rows as u32, cols as u32)?;
            Ok((t, target))
        };
        let noise_players = noise(Noise::Players)?;
        let noise_principal = noise(Noise::Principal)?;
        Ok(Self {
            description: format!(
                "GPU: sed-gpu kernels and Burn's wgpu backend on {}",
                ctx.describe()
            ),
            engine,
            device,
            obs,
            final_obs,
            principal_map,
            principal_features,
            reward,
            principal_reward,
            noise_players,
            noise_principal,
            reads: 0,
        })
    }

    fn flush(&self) -> Result<()> {
        flush(&self.obs)
    }
}

impl VecEnv for GpuEnv {
    fn layout(&self) -> Layout {
        self.engine.layout()
    }
    fn game(&self) -> &Game {
        self.engine.game()
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
    fn reset(&mut self) -> Result<()> {
        self.flush()?;
        Ok(self.engine.reset()?)
    }
    fn obs(&self) -> Tensor<2, Int> {
        self.obs.tensor()
    }
    fn final_obs(&self) -> Tensor<2, Int> {
        self.final_obs.tensor()
    }
    fn principal_map(&self) -> Tensor<2, Int> {
        self.principal_map.tensor()
    }
    fn principal_features(&self) -> Tensor<2> {
        self.principal_features.tensor()
    }
    fn reward(&self) -> Tensor<1> {
        self.reward.tensor()
    }
    fn principal_reward(&self) -> Tensor<1> {
        self.principal_reward.tensor()
    }
    fn noise(&mut self, kind: Noise, tick: u32) -> Result<Tensor<2>> {
        // Burn's reads of the previous noise must reach the queue before it is overwritten.
        self.flush()?;
        let (_, _, stream) = kind.shape(&self.layout());
        let (t, target) = match kind {
            Noise::Players => &self.noise_players,
            Noise::Principal => &self.noise_principal,
        };
        self.engine.fill_noise(target, stream, tick);
        Ok(t.tensor())
    }
    fn step(
        &mut self,
        actions: Tensor<1, Int>,
        choices: Tensor<1, Int>,
        params: &StepParams,
    ) -> Result<()> {
        let actions = tensor_region(actions)?;
        let choices = tensor_region(choices)?;
        self.flush()?;
        self.engine.step_with(
            params,
            &[
                (Buf::Actions, &actions.region),
                (Buf::Choices, &choices.region),
            ],
        )?;
        Ok(())
    }
    fn read_stats(&mut self) -> Result<Vec<u32>> {
        self.reads += 1;
        Ok(self.engine.read_stats()?)
    }
    fn snapshot(&mut self) -> Result<(State, Outputs)> {
        self.flush()?;
        self.reads += 2;
        Ok((self.engine.read_state()?, self.engine.read_outputs()?))
    }
    fn restore(&mut self, state: &State, out: &Outputs) -> Result<()> {
        check_snapshot(&self.engine.layout(), state, out)?;
        self.flush()?;
        self.engine.write_state(state, out);
        Ok(())
    }
    fn host_reads(&self) -> u64 {
        self.reads
    }
}
