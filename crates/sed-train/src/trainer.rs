//! The SED training loop (SPEC §1, §4, §5): rollouts of `sampling_horizon` steps in which
//! the shared player policy acts every step and the principal on decision steps, then PPO
//! updates of both, the vote at every round, the tax curriculum, metrics and checkpoints.
//!
//! The loop is the same on both paths ([`crate::env::VecEnv`]); rollout storage, GAE and
//! minibatch gathers stay on the training device. The host reads, once per iteration, the
//! env's statistics and one batch of tensors (losses, diagnostics, a finiteness check of
//! every parameter, returns, rates); [`Trainer::host_reads`] counts them.
//!
//! Players: one transition per player and step; truncation at the episode's end bootstraps
//! from the value of the final observation, the rollout's cut from the value of the next
//! observation; nothing in this game is terminal. Principal: a semi-MDP with one transition
//! per env and tax period, taken on the period's decision step, rewarded with the change of
//! the voted welfare over the period (paid on the settlement step) and discounted per
//! period; a voting round's end is terminal for it (the next round may vote another
//! objective, and its welfare restarts from zero).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::{Device, Int, Tensor, TensorData};
use burn::tensor::Transaction;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sed_core::engine::StepParams;
use sed_core::principal::{CHOICES, CurriculumMode, KEEP, TaxSchedule};
use sed_core::stats;
use sed_core::types::Action;
use sed_core::voting::SocialChoice as _;
use sed_core::welfare::Welfare;

use crate::adam::Adam;
use crate::checkpoint::{self, EnvSnapshot, TrainerState, env_file, write_atomic};
use crate::config::{PpoConfig, RunConfig};
use crate::device::{Devices, Picked};
use crate::env::{CpuEnv, GpuEnv, Noise, VecEnv};
use crate::features::{Inputs, push_frame, stack_frames};
use crate::metrics::Row;
use crate::nets::{PlayerNet, PrincipalNet, materialise};
use crate::policy::{choice_mask, sample};
use crate::ppo::{self, Samples};
use crate::session::InputError;

/// The version written into checkpoints; a checkpoint of another version is refused.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What an iteration's rollout left for the update.
struct Rollout {
    /// `[T, R, W]` packed player observations.
    obs: Tensor<3, Int>,
    /// `[T, E, F]` principal features of each step (the players' tax inputs).
    features: Tensor<3>,
    actions: Tensor<2, Int>,
    logp: Tensor<2>,
    values: Tensor<2>,
    rewards: Tensor<2>,
    /// `[T, R]` value of the state after each step.
    next_values: Tensor<2>,
    /// 0 where an episode ended after the step.
    trace: Vec<f32>,
    principal: Option<PrincipalRollout>,
    /// Mean episodic return of each episode that ended, `[1]` each.
    episode_returns: Vec<Tensor<1>>,
    /// Mean principal return of each round that ended, `[1]` each.
    round_returns: Vec<Tensor<1>>,
    env_seconds: f64,
    inference_seconds: f64,
}

struct PrincipalRollout {
    /// Steps of the rollout that were decisions, in order.
    steps: Vec<usize>,
    /// `[K, E, MW]` packed maps.
    maps: Tensor<3, Int>,
    choices: Tensor<3, Int>,
    logp: Tensor<2>,
    values: Tensor<2>,
    masks: Tensor<4>,
    rewards: Tensor<2>,
    next_values: Tensor<2>,
    /// 0 where a round ended with the decision's period.
    trace: Vec<f32>,
}

/// Seconds spent in each part of training, measured with a device sync around each part
/// when profiling is on ([`Trainer::set_profile`]); the syncs slow a GPU down, so
/// throughput is measured without them.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Profile {
    /// Env steps (kernels or the CPU engine).
    pub env: f64,
    /// Rollout inference: unpacking, forward passes, sampling, storage.
    pub inference: f64,
    /// Update forward and backward passes (GAE, gathers and losses included).
    pub backward: f64,
    /// Optimizer steps (norm, clipping, Adam).
    pub optimizer: f64,
    /// With several devices: forking the networks to the other devices and moving their
    /// gradients to the first (left out of `backward`).
    pub transfer: f64,
}

/// Waits until the device has finished the work `t` depends on (and everything queued
/// before it), by reading one element.
fn sync<const D: usize>(t: &Tensor<D>) {
    let _ = t.clone().reshape([-1]).narrow(0, 0, 1).into_data();
}

/// How a policy acts in an evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Actor {
    /// The trained network, sampling.
    Trained,
    /// Uniformly random actions (players) or choices (principal).
    Uniform,
    /// The principal always makes this choice (`0..=10` a rate, 11 keep), players NOOP.
    Fixed(u32),
}

/// Means over the envs and episodes of an evaluation.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Episodes per env.
    pub episodes: u32,
    /// Raw apples per player per episode.
    pub apples_per_player: f64,
    /// The run's objective on each episode's per-player totals.
    pub welfare: f64,
    /// The objective the players' types vote for by the mean (`social/welfare_voted`).
    pub welfare_voted: f64,
    /// 1 − Gini of post-tax incomes.
    pub equality: f64,
    /// Apples alive at the end of an episode.
    pub apples_left: f64,
    /// Mean tax rate over brackets and envs at the end.
    pub mean_rate: f64,
}

/// One device's share of the run: its envs, their inputs, the trainer's accumulators for
/// them, and the generator of its minibatch shuffles (seeded with the run's shuffle seed
/// plus its rank).
struct Shard {
    picked: Picked,
    env: Box<dyn VecEnv + Send>,
    dev: Device,
    inputs: Inputs,
    episode_return: Tensor<1>,
    round_return: Tensor<1>,
    keep: Tensor<1, Int>,
    /// The fixed tax's choices, `[envs · brackets]`, when it replaces the principal.
    fixed: Option<Tensor<1, Int>>,
    rng: ChaCha8Rng,
    /// With `train.frame_stack` K > 1: the K − 1 previous observations of this episode,
    /// `[K − 1, rows, words]`, oldest first (zeros before the episode's first step).
    history: Option<Tensor<3, Int>>,
}

impl Shard {
    fn new(
        run: &RunConfig,
        picked: Picked,
        rank: usize,
        inputs: Inputs,
        shuffle_seed: u64,
    ) -> Result<Self> {
        let l = inputs.layout();
        let dev = picked.burn();
        let mut env = make_env(run, &picked, l.num_envs, rank)?;
        env.reset()?;
        Ok(Self {
            episode_return: Tensor::zeros([l.num_envs * l.players], &dev),
            round_return: Tensor::zeros([l.num_envs], &dev),
            keep: Tensor::full([l.num_envs * l.brackets], KEEP as i32, &dev),
            fixed: run
                .fixed_choice()
                .map(|c| Tensor::full([l.num_envs * l.brackets], c as i32, &dev)),
            rng: ChaCha8Rng::seed_from_u64(shuffle_seed.wrapping_add(rank as u64)),
            history: (run.train.frame_stack > 1).then(|| {
                Tensor::zeros(
                    [
                        run.train.frame_stack as usize - 1,
                        l.num_envs * l.players,
                        inputs.frame_words(),
                    ],
                    &dev,
                )
            }),
            picked,
            env,
            dev,
            inputs,
        })
    }
}

/// The trainer: both learners, their optimizers, the envs of every device and the
/// counters of the run.
///
/// With several devices (`--gpus`), the networks and the optimizers live on the first;
/// every device steps its own share of the envs, and in each minibatch computes the
/// gradients of its own samples on a fork of the networks; the gradients are summed on
/// the first device (Burn's `GradientsParams::to_device` and `GradientsAccumulator`), the
/// optimizer steps there, and the next minibatch forks the updated networks again.
pub struct Trainer {
    run: RunConfig,
    shards: Vec<Shard>,
    players: PlayerNet,
    principal: PrincipalNet,
    opt_players: Adam,
    opt_principal: Adam,
    shuffle_seed: u64,
    tick: u64,
    iteration: u64,
    host_reads: u64,
    elapsed: f64,
    profile: Option<Profile>,
}

/// The envs of rank `rank`: the run's game under the rank's key ([`sed_core::rng::shard_key`]).
fn make_env(
    run: &RunConfig,
    picked: &Picked,
    num_envs: usize,
    rank: usize,
) -> Result<Box<dyn VecEnv + Send>> {
    let mut game = run.game.game.clone();
    game.run_key = sed_core::rng::shard_key(game.run_key, rank as u32);
    Ok(match picked {
        Picked::Cpu => Box::new(CpuEnv::new(game, num_envs, picked.burn())),
        Picked::Gpu(ctx, device) => Box::new(GpuEnv::new(ctx, device.clone(), game, num_envs)?),
    })
}

/// Bytes of the largest rollout tensor and of all of them together.
fn rollout_bytes(run: &RunConfig, l: &sed_core::engine::Layout) -> (u64, u64) {
    let t = run.train.sampling_horizon as u64;
    let rows = (l.num_envs * l.players) as u64;
    let obs = 4 * t * rows * (l.obs_stride / 4) as u64 * u64::from(run.train.frame_stack);
    // Per player row and step: action, log-prob, value, reward, advantage, return.
    let floats = 4 * t * rows * 6;
    let features = 4 * t * (l.num_envs * l.principal_features) as u64;
    let maps = 4 * (t / run.game.game.tax_period as u64) * (l.num_envs * l.map_stride / 4) as u64;
    (obs, obs + floats + features + maps)
}

/// A refusal of the run's settings: the user's to fix ([`InputError`]).
fn input(message: String) -> anyhow::Error {
    InputError(message).into()
}

/// Refuses a batch the device cannot hold, naming the field to change.
fn check_capacity(run: &RunConfig, l: &sed_core::engine::Layout, picked: &Picked) -> Result<()> {
    let (largest, total) = rollout_bytes(run, l);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    match picked {
        Picked::Gpu(ctx, _) => {
            let limits = ctx.device.limits();
            let max = limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size);
            // The largest update tensors: a minibatch's unpacked windows or maps.
            let cell_bytes = (4 * crate::features::CHANNELS) as u64;
            let t = run.train.sampling_horizon as u64;
            let player_cell_bytes = if run.train.torso == crate::config::Torso::Rgb {
                (4 * crate::features::PATCH) as u64
            } else {
                cell_bytes
            } * u64::from(run.train.frame_stack);
            for (field, samples, cells, mb, cell_bytes) in [
                (
                    "train.players.minibatches",
                    t * (l.num_envs * l.players) as u64,
                    sed_core::obs::WINDOW_CELLS as u64,
                    run.train.players.minibatches,
                    player_cell_bytes,
                ),
                (
                    "train.principal.minibatches",
                    t / run.game.game.tax_period as u64 * l.num_envs as u64,
                    run.game.game.map.cells() as u64,
                    run.train.principal.minibatches,
                    cell_bytes,
                ),
            ] {
                let rows = samples.div_ceil(mb as u64);
                let bytes = rows * cells * cell_bytes;
                if bytes > max {
                    return Err(input(format!(
                        "`{field}`: minibatches of {rows} samples need {:.2} GiB of unpacked inputs, more than this device's largest buffer ({:.2} GiB); raise {field} to at least {}",
                        gib(bytes),
                        gib(max),
                        (samples * cells * cell_bytes).div_ceil(max)
                    )));
                }
            }
            let step_windows =
                (l.num_envs * l.players * sed_core::obs::WINDOW_CELLS) as u64 * player_cell_bytes;
            if step_windows > max {
                return Err(input(format!(
                    "`env.num_envs`: one step's unpacked windows of {} envs need {:.2} GiB, more than this device's largest buffer ({:.2} GiB); use at most {} envs (per device)",
                    l.num_envs,
                    gib(step_windows),
                    gib(max),
                    max / (step_windows / l.num_envs as u64)
                )));
            }
            if largest > max {
                return Err(input(format!(
                    "`env.num_envs`: {} envs with train.sampling_horizon = {} need a {:.2} GiB observation buffer, more than this device's largest buffer ({:.2} GiB); use fewer envs or a shorter horizon",
                    l.num_envs,
                    run.train.sampling_horizon,
                    gib(largest),
                    gib(max)
                )));
            }
        }
        Picked::Cpu => {
            if let Some(available) = available_memory()
                && total > available
            {
                return Err(input(format!(
                    "`env.num_envs`: {} envs with train.sampling_horizon = {} need about {:.1} GiB for a rollout, more than the {:.1} GiB of memory available; use fewer envs or a shorter horizon",
                    l.num_envs,
                    run.train.sampling_horizon,
                    gib(total),
                    gib(available)
                )));
            }
        }
    }
    Ok(())
}

/// `MemAvailable` of `/proc/meminfo`, where there is one.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Float values of a read tensor.
fn floats(data: TensorData) -> Result<Vec<f32>> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow!("reading back a tensor: {e:?}"))
}

impl Trainer {
    /// A fresh run: networks initialised from the seed, every env reset. With several
    /// devices, `env.num_envs` is split evenly over them.
    pub fn new(run: RunConfig, devices: impl Into<Devices>) -> Result<Self> {
        let Devices(devices) = devices.into();
        let ranks = devices.len();
        if ranks == 0 {
            bail!("no device to train on");
        }
        let num_envs = run.game.num_envs as usize;
        if !num_envs.is_multiple_of(ranks) {
            return Err(input(format!(
                "`env.num_envs`: {num_envs} envs do not split evenly over {ranks} devices; use a multiple of {ranks}"
            )));
        }
        let l = sed_core::engine::Layout::new(&run.game.game, num_envs / ranks);
        let horizon = run.train.sampling_horizon as usize;
        let decisions = l.num_envs * (horizon / run.game.game.tax_period as usize);
        for (field, minibatches, rows, what) in [
            (
                "train.players.minibatches",
                run.train.players.minibatches,
                l.num_envs * l.players * horizon,
                "player rows",
            ),
            (
                "train.principal.minibatches",
                run.train.principal.minibatches,
                decisions,
                "principal decisions",
            ),
        ] {
            if ranks > 1 && minibatches as usize > rows {
                return Err(input(format!(
                    "`{field}`: {minibatches} minibatches but each of the {ranks} devices has only {rows} {what} per rollout; use more envs or fewer minibatches"
                )));
            }
        }
        for picked in &devices {
            check_capacity(&run, &l, picked)?;
        }
        let dev = devices[0].burn();
        // Burn draws initial weights from one process-wide generator: seed it and draw
        // every weight under a lock, so trainers created at the same time stay reproducible.
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let init = INIT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        dev.seed(run.game.config.seed);
        let game = &run.game.game;
        let rgb = run.train.torso == crate::config::Torso::Rgb;
        let frames = run.train.frame_stack as usize;
        let inputs = Inputs::new(game, l, run.train.player_sees_tax, rgb, frames, &dev);
        let train_dev = dev.clone().autodiff();
        let players = PlayerNet::new(
            run.train.torso,
            sed_core::obs::WINDOW_CELLS,
            frames,
            inputs.player_extras(),
            &run.train.players.hidden,
            Action::COUNT as usize,
            &train_dev,
        );
        materialise(&players);
        let principal = PrincipalNet::pooled(
            [
                game.map.rows as usize,
                game.map.cols as usize,
                run.train.principal_pool as usize,
            ],
            l.principal_features,
            &run.train.principal.hidden,
            l.brackets,
            CHOICES as usize,
            &train_dev,
        );
        materialise(&principal);
        drop(init);
        let shuffle_seed = run.game.config.seed ^ 0x5ed_7a1e_5eed;
        let mut shards = Vec::with_capacity(ranks);
        for (rank, picked) in devices.into_iter().enumerate() {
            let inputs = if rank == 0 {
                inputs.clone()
            } else {
                Inputs::new(
                    game,
                    l,
                    run.train.player_sees_tax,
                    rgb,
                    frames,
                    &picked.burn(),
                )
            };
            shards.push(Shard::new(&run, picked, rank, inputs, shuffle_seed)?);
        }
        Ok(Self {
            opt_players: Adam::new(run.train.players.adam_eps),
            opt_principal: Adam::new(run.train.principal.adam_eps),
            shuffle_seed,
            tick: 0,
            iteration: 0,
            host_reads: 0,
            elapsed: 0.0,
            profile: None,
            run,
            shards,
            players,
            principal,
        })
    }

    /// The run's config.
    #[must_use]
    pub fn run(&self) -> &RunConfig {
        &self.run
    }

    /// Iterations completed.
    #[must_use]
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Env-steps taken by every env so far.
    #[must_use]
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// What runs the env and the networks.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.shards.as_slice() {
            [one] => one.env.describe(),
            many => {
                let mut names: Vec<String> = many.iter().map(|s| s.env.describe()).collect();
                names.dedup();
                format!(
                    "{} devices, {} envs each: {}",
                    many.len(),
                    many[0].env.layout().num_envs,
                    names.join("; ")
                )
            }
        }
    }

    /// The first device, which holds the networks and the optimizers.
    fn dev(&self) -> &Device {
        &self.shards[0].dev
    }

    /// Devices the run's envs are split over.
    #[must_use]
    pub fn devices(&self) -> usize {
        self.shards.len()
    }

    /// The players' network as device `rank` runs its rollouts with it (a copy of
    /// [`Trainer::players`] on that device).
    #[must_use]
    pub fn players_on(&self, rank: usize) -> PlayerNet {
        self.players.valid().to_device(&self.shards[rank].dev)
    }

    /// Device-to-host reads so far (the envs' and the trainer's).
    #[must_use]
    pub fn host_reads(&self) -> u64 {
        self.host_reads + self.shards.iter().map(|s| s.env.host_reads()).sum::<u64>()
    }

    /// The players' network (for tests and evaluation).
    #[must_use]
    pub fn players(&self) -> &PlayerNet {
        &self.players
    }

    /// The principal's network.
    #[must_use]
    pub fn principal(&self) -> &PrincipalNet {
        &self.principal
    }

    fn read(&mut self, tx: Transaction) -> Result<Vec<TensorData>> {
        self.host_reads += 1;
        tx.try_execute()
            .map_err(|e| anyhow!("reading back from the device: {e:?}"))
    }

    /// The tax schedule after `episodes` completed episodes.
    fn schedule(&self, episodes: u64) -> TaxSchedule {
        self.run.game.schedule(episodes)
    }

    /// `1` in phase 1 of the rate-cap curriculum (taxes off, principal frozen), else `2`.
    #[must_use]
    pub fn phase(&self) -> u32 {
        let c = &self.run.game.curriculum;
        let episodes = self.tick / self.run.game.game.episode_len as u64;
        if c.mode == CurriculumMode::RateCap && episodes < c.phase1_episodes {
            1
        } else {
            2
        }
    }

    fn lr(&self, cfg: &PpoConfig) -> f64 {
        if cfg.anneal_lr {
            let frac = 1.0 - self.iteration as f64 / self.run.iterations() as f64;
            cfg.learning_rate * frac.max(0.0)
        } else {
            cfg.learning_rate
        }
    }

    /// The objective the players vote for this round: their reports go through the
    /// configured social choice function.
    fn vote(&self) -> Welfare {
        vote(&self.run)
    }

    /// Turns the per-part timing syncs on (`Some` zeroes the totals) or off.
    pub fn set_profile(&mut self, on: bool) {
        self.profile = on.then(Profile::default);
    }

    /// The per-part totals since profiling was turned on.
    #[must_use]
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }

    /// One rollout on every device (the first on this thread, the others each on a thread
    /// of its own), in rank order.
    fn collect_all(&mut self, progress: &mut dyn FnMut(u64)) -> Result<Vec<Rollout>> {
        let run = &self.run;
        let tick = self.tick;
        let profile = self.profile.is_some();
        let ranks = self.shards.len() as u64;
        let players = self.players.valid();
        let principal = self.principal.valid();
        let (first, rest) = self.shards.split_at_mut(1);
        let rollouts = std::thread::scope(|scope| -> Result<Vec<Rollout>> {
            let others: Vec<_> = rest
                .iter_mut()
                .map(|sh| {
                    let players = players.clone().to_device(&sh.dev);
                    let principal = principal.clone().to_device(&sh.dev);
                    scope.spawn(move || {
                        collect(run, sh, &players, &principal, tick, profile, &mut |_| {})
                    })
                })
                .collect();
            let mut all = vec![collect(
                run,
                &mut first[0],
                &players,
                &principal,
                tick,
                profile,
                &mut |steps| progress(steps * ranks),
            )?];
            for h in others {
                all.push(
                    h.join()
                        .map_err(|_| anyhow!("a device's rollout thread panicked"))??,
                );
            }
            Ok(all)
        })?;
        self.tick += self.run.train.sampling_horizon as u64;
        if let Some(p) = &mut self.profile {
            p.env += rollouts[0].env_seconds;
            p.inference += rollouts[0].inference_seconds;
        }
        Ok(rollouts)
    }
}

/// The objective the players vote for: their reports through the run's social choice
/// function.
fn vote(run: &RunConfig) -> Welfare {
    run.game
        .social_choice
        .choose(&run.game.game.types.selfishness, None)
}

/// Player windows and extras of one step's observations.
fn player_inputs(
    inputs: &Inputs,
    obs: Tensor<2, Int>,
    features: Tensor<2>,
) -> (Tensor<3>, Tensor<2>) {
    (inputs.windows(obs), inputs.step_extras(features))
}

/// One rollout of `sampling_horizon` steps of one device's envs from `tick0`, with the
/// policies on that device; `profile` syncs around the parts it times.
fn collect(
    run: &RunConfig,
    sh: &mut Shard,
    policy: &PlayerNet,
    ppolicy: &PrincipalNet,
    tick0: u64,
    profile: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Rollout> {
    let g = run.game.game.clone();
    let l = sh.env.layout();
    let t_len = run.train.sampling_horizon as usize;
    let (e, n, b) = (l.num_envs, l.players, l.brackets);
    let r = e * n;
    let (w, mw, f) = (sh.inputs.words(), l.map_stride / 4, l.principal_features);
    let (period, episode_len) = (g.tax_period as u64, g.episode_len as u64);
    let round_len = period * g.round_periods as u64;
    let dev = sh.dev.clone();

    let mut obs_buf = Tensor::<3, Int>::zeros([t_len, r, w], &dev);
    let mut feat_buf = Tensor::<3>::zeros([t_len, e, f], &dev);
    let mut rew_buf = Tensor::<2>::zeros([t_len, r], &dev);
    let k_max = t_len / period as usize;
    let mut map_buf = Tensor::<3, Int>::zeros([k_max, e, mw], &dev);
    let mut prew_buf = Tensor::<2>::zeros([k_max, e], &dev);
    let (mut actions, mut logps, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let mut finals: Vec<(usize, Tensor<1>)> = Vec::new();
    let mut trace = vec![1.0f32; t_len];
    let (mut dsteps, mut dchoices, mut dlogp, mut dvalues, mut dmasks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut dtrace: Vec<f32> = Vec::new();
    let mut episode_returns = Vec::new();
    let mut round_returns = Vec::new();
    let welfare = vote(run);
    let (mut env_seconds, mut inference_seconds) = (0.0, 0.0);

    #[allow(clippy::needless_range_loop)] // `s` indexes the step in several buffers
    for s in 0..t_len {
        let clock = Instant::now();
        let tick = tick0 + s as u64;
        let t = tick % episode_len;
        let schedule = run.game.schedule(tick / episode_len);
        let obs = sh.env.obs();
        let stacked = stack_frames(sh.history.as_ref(), obs.clone());
        let features = sh.env.principal_features();
        let (window, extras) = player_inputs(&sh.inputs, stacked.clone(), features.clone());
        let (logits, value) = policy.forward(window, extras);
        let noise = sh.env.noise(Noise::Players, tick as u32)?;
        let act = sample(logits.clone().reshape([r, Action::COUNT as usize]), noise);
        let (logp, _) = ppo::log_prob_entropy(logits, act.clone().reshape([r, 1]));
        obs_buf = obs_buf.slice_assign([s..s + 1, 0..r, 0..w], stacked.reshape([1, r, w]));
        feat_buf =
            feat_buf.slice_assign([s..s + 1, 0..e, 0..f], features.clone().reshape([1, e, f]));
        actions.push(act.clone());
        logps.push(logp.clone());
        values.push(value);

        let decides = t.is_multiple_of(period) && schedule.principal_learns;
        let choices = if decides && let Some(fixed) = &sh.fixed {
            fixed.clone()
        } else if decides {
            let k = dsteps.len();
            let words = sh.env.principal_map();
            map_buf =
                map_buf.slice_assign([k..k + 1, 0..e, 0..mw], words.clone().reshape([1, e, mw]));
            let (plogits, pvalue) =
                ppolicy.forward(sh.inputs.principal_map(words), features.clone());
            let rates = features.narrow(1, n, b);
            let mask = choice_mask(rates, schedule.rate_cap_tenths, g.max_rate_change_tenths);
            let masked = plogits + mask.clone();
            let noise = sh.env.noise(Noise::Principal, tick as u32)?;
            let ch = sample(masked.clone().reshape([e * b, CHOICES as usize]), noise);
            let (plogp, _) = ppo::log_prob_entropy(masked, ch.clone().reshape([e, b]));
            dsteps.push(s);
            dchoices.push(ch.clone().reshape([e, b]));
            dlogp.push(plogp);
            dvalues.push(pvalue);
            dmasks.push(mask);
            dtrace.push(1.0);
            ch
        } else {
            sh.keep.clone()
        };
        if profile {
            sync(&logp);
        }
        inference_seconds += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let params = StepParams { schedule, welfare };
        // Queued before the step, which overwrites the env's observation memory on the GPU.
        let pushed = sh.history.take().map(|h| push_frame(h, obs));
        sh.env.step(act, choices, &params)?;
        sh.history = pushed;
        let reward = sh.env.reward();
        if profile {
            sync(&reward);
        }
        env_seconds += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        rew_buf = rew_buf.slice_assign([s..s + 1, 0..r], reward.clone().reshape([1, r]));
        sh.episode_return = sh.episode_return.clone() + reward;
        let settles = t % period == period - 1;
        if settles && dsteps.last().is_some_and(|&d| s - d < period as usize) {
            let k = dsteps.len() - 1;
            let pr = sh.env.principal_reward();
            prew_buf = prew_buf.slice_assign([k..k + 1, 0..e], pr.clone().reshape([1, e]));
            sh.round_return = sh.round_return.clone() + pr;
        }
        if t == episode_len - 1 {
            // Truncation: bootstrap from the final observation, cut the trace.
            let last = stack_frames(sh.history.as_ref(), sh.env.final_obs());
            let (window, extras) = player_inputs(&sh.inputs, last, sh.env.principal_features());
            finals.push((s, policy.value(window, extras)));
            // The next episode starts with no past frames.
            if let Some(h) = &mut sh.history {
                *h = h.zeros_like();
            }
            trace[s] = 0.0;
            episode_returns.push(sh.episode_return.clone().mean());
            sh.episode_return = sh.episode_return.clone().zeros_like();
        }
        if (tick + 1).is_multiple_of(round_len) {
            if let Some(last) = dtrace.last_mut()
                && dsteps.last().is_some_and(|&d| s - d < period as usize)
            {
                *last = 0.0;
                round_returns.push(sh.round_return.clone().mean());
            }
            sh.round_return = sh.round_return.clone().zeros_like();
        }
        inference_seconds += clock.elapsed().as_secs_f64();
        progress(e as u64);
    }

    let clock = Instant::now();
    let next = stack_frames(sh.history.as_ref(), sh.env.obs());
    let (window, extras) = player_inputs(&sh.inputs, next, sh.env.principal_features());
    let boot = policy.value(window, extras);
    let values_t = Tensor::stack::<2>(values, 0);
    let mut next: Vec<Tensor<1>> = (1..t_len)
        .map(|s| values_t.clone().slice([s..s + 1, 0..r]).reshape([r]))
        .collect();
    next.push(boot);
    for (s, v) in finals {
        next[s] = v;
    }
    let principal = if dsteps.is_empty() {
        None
    } else {
        let k = dsteps.len();
        let pvalues = Tensor::stack::<2>(dvalues, 0);
        let mut pnext: Vec<Tensor<1>> = (1..k)
            .map(|i| pvalues.clone().slice([i..i + 1, 0..e]).reshape([e]))
            .collect();
        // The rollout ends just before a decision step: that state is the next one.
        let (_, pboot) = ppolicy.forward(
            sh.inputs.principal_map(sh.env.principal_map()),
            sh.env.principal_features(),
        );
        pnext.push(pboot);
        Some(PrincipalRollout {
            steps: dsteps,
            maps: map_buf.slice([0..k, 0..e, 0..mw]),
            choices: Tensor::stack::<3>(dchoices, 0),
            logp: Tensor::stack::<2>(dlogp, 0),
            values: pvalues,
            masks: Tensor::stack::<4>(dmasks, 0),
            rewards: prew_buf.slice([0..k, 0..e]),
            next_values: Tensor::stack::<2>(pnext, 0),
            trace: dtrace,
        })
    };
    inference_seconds += clock.elapsed().as_secs_f64();
    Ok(Rollout {
        obs: obs_buf,
        features: feat_buf,
        actions: Tensor::stack::<2>(actions, 0),
        logp: Tensor::stack::<2>(logps, 0),
        values: values_t,
        rewards: rew_buf,
        next_values: Tensor::stack::<2>(next, 0),
        trace,
        principal,
        episode_returns,
        round_returns,
        env_seconds,
        inference_seconds,
    })
}

/// The bounds of minibatch `i` of `minibatches` near-equal parts of `0..rows`.
fn minibatch_range(rows: usize, minibatches: usize, i: usize) -> (usize, usize) {
    (i * rows / minibatches, (i + 1) * rows / minibatches)
}

/// Entries of a learner's metric vector, in order (summed over minibatches).
const LOSS_NAMES: [&str; 7] = [
    "policy_loss",
    "value_loss",
    "entropy",
    "old_approx_kl",
    "approx_kl",
    "clipfrac",
    "grad_norm",
];

/// PPO epochs over `rows` samples on each device: each device shuffles its own samples
/// (with its own generator) into minibatches; in each minibatch every device computes the
/// gradients of its own samples' mean loss on a fork of `model`, the gradients are moved to
/// the first device and summed there (weighted `1/devices`: the gradient of the mean over
/// devices), and one Adam step updates `model`. `forward(rank, model, rows)` gives a
/// minibatch's logits, new values and collected samples on that rank's device. Returns the
/// metric sums `[7]` (each minibatch's metrics averaged over devices) and the number of
/// minibatches.
#[allow(clippy::too_many_arguments)]
fn ppo_epochs<M: Module + Clone>(
    model: &mut M,
    adam: &mut Adam,
    cfg: &PpoConfig,
    lr: f64,
    rows: usize,
    rngs: &mut [&mut ChaCha8Rng],
    devices: &[Device],
    mut profile: Option<&mut Profile>,
    mut forward: impl FnMut(usize, &M, &[u32]) -> (Tensor<3>, Tensor<1>, Samples),
) -> (Tensor<1>, usize) {
    let ranks = devices.len();
    let main = &devices[0];
    let mut acc: Option<Tensor<1>> = None;
    let mut count = 0;
    for _ in 0..cfg.update_epochs {
        let perms: Vec<Vec<u32>> = rngs
            .iter_mut()
            .map(|rng| {
                let mut perm: Vec<u32> = (0..rows as u32).collect();
                perm.shuffle(&mut **rng);
                perm
            })
            .collect();
        for i in 0..cfg.minibatches as usize {
            let (lo, hi) = minibatch_range(rows, cfg.minibatches as usize, i);
            if lo == hi {
                continue;
            }
            let clock = Instant::now();
            let profiling = profile.is_some();
            let mut moving = 0.0;
            // Fork the networks to every other device, then queue every device's forward
            // and backward pass before moving any gradient, so that the devices compute
            // at the same time; then sum on the first device, in rank order.
            let mut replicas = vec![model.clone()];
            for dev in &devices[1..] {
                replicas.push(model.clone().fork(&dev.clone().autodiff()));
            }
            if profiling && ranks > 1 {
                for replica in &replicas[1..] {
                    sync(&Tensor::cat(param_sums(replica, "").1, 0));
                }
                moving += clock.elapsed().as_secs_f64();
            }
            let mut local = Vec::with_capacity(ranks);
            for (rank, (perm, replica)) in perms.iter().zip(&replicas).enumerate() {
                let (logits, new_values, samples) = forward(rank, replica, &perm[lo..hi]);
                let t = ppo::terms(logits, new_values, &samples, cfg);
                let loss = if ranks > 1 {
                    t.loss.div_scalar(ranks as f64)
                } else {
                    t.loss
                };
                let grads = GradientsParams::from_grads(loss.backward(), replica);
                let m = Tensor::cat(
                    vec![
                        t.policy_loss.inner(),
                        t.value_loss.inner(),
                        t.entropy.inner(),
                        t.old_approx_kl.inner(),
                        t.approx_kl.inner(),
                        t.clipfrac.inner(),
                    ],
                    0,
                );
                local.push((grads, m));
            }
            let mut grads_sum = GradientsAccumulator::<M>::new();
            let mut metrics: Option<Tensor<1>> = None;
            for (rank, ((mut grads, m), replica)) in local.into_iter().zip(&replicas).enumerate() {
                if rank > 0 {
                    if profiling && let Some(sq) = crate::adam::grad_sq_norm(replica, &grads) {
                        sync(&sq);
                    }
                    let clock = Instant::now();
                    grads = grads.to_device(main, replica);
                    if profiling && let Some(sq) = crate::adam::grad_sq_norm(model, &grads) {
                        sync(&sq);
                        moving += clock.elapsed().as_secs_f64();
                    }
                }
                grads_sum.accumulate(model, grads);
                let m = m.to_device(main);
                metrics = Some(match metrics {
                    Some(a) => a + m,
                    None => m,
                });
            }
            let grads = grads_sum.grads();
            if let Some(p) = profile.as_deref_mut() {
                if let Some(sq) = crate::adam::grad_sq_norm(model, &grads) {
                    sync(&sq);
                }
                p.backward += clock.elapsed().as_secs_f64() - moving;
                p.transfer += moving;
            }
            let clock = Instant::now();
            let (updated, norm) = adam.step(model.clone(), grads, lr, cfg.max_grad_norm);
            *model = updated;
            if let Some(p) = profile.as_deref_mut() {
                let (_, sums) = param_sums(model, "");
                sync(&Tensor::cat(sums, 0));
                p.optimizer += clock.elapsed().as_secs_f64();
            }
            let mut m = metrics.expect("at least one device");
            if ranks > 1 {
                m = m.div_scalar(ranks as f64);
            }
            let m = Tensor::cat(vec![m, norm], 0);
            acc = Some(match acc {
                Some(a) => a + m,
                None => m,
            });
            count += 1;
        }
    }
    (acc.expect("at least one minibatch"), count)
}

/// The sum of every parameter, by path (a NaN or Inf anywhere makes its sum non-finite).
///
/// Burn's `Module::visit` calls `visit_float` and `enter_module`/`exit_module`, never
/// `visit_float_with_path`, so the path is kept here.
fn param_sums<M: Module>(module: &M, prefix: &str) -> (Vec<String>, Vec<Tensor<1>>) {
    struct Sums {
        path: Vec<String>,
        names: Vec<String>,
        sums: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Sums {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_owned());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.names.push(self.path.join("."));
            self.sums.push(param.val().inner().sum());
        }
    }
    let mut v = Sums {
        path: (!prefix.is_empty())
            .then(|| prefix.to_owned())
            .into_iter()
            .collect(),
        names: Vec::new(),
        sums: Vec::new(),
    };
    module.visit(&mut v);
    assert!(!v.sums.is_empty(), "a network without parameters");
    (v.names, v.sums)
}

fn ids_of(indices: impl Iterator<Item = usize>, device: &Device) -> Tensor<1, Int> {
    let v: Vec<i32> = indices.map(|i| i as i32).collect();
    let len = v.len();
    Tensor::from_data(TensorData::new(v, [len]), device)
}

impl Trainer {
    /// The mean over devices of one `[1]` tensor per device, on the first device.
    fn mean_over(&self, parts: Vec<Tensor<1>>) -> Tensor<1> {
        let parts: Vec<Tensor<1>> = parts.into_iter().map(|t| t.to_device(self.dev())).collect();
        Tensor::cat(parts, 0).mean()
    }

    fn update_players(&mut self, ros: &[Rollout], lr: f64) -> (Tensor<1>, usize, Tensor<1>) {
        let cfg = self.run.train.players.clone();
        let l = self.shards[0].env.layout();
        let (e, n) = (l.num_envs, l.players);
        let [t_len, r] = ros[0].values.dims();
        let (w, f) = (self.shards[0].inputs.words(), l.principal_features);
        let rows = t_len * r;
        let mut batches = Vec::with_capacity(ros.len());
        let mut evs = Vec::with_capacity(ros.len());
        for (sh, ro) in self.shards.iter().zip(ros) {
            let adv = ppo::gae(
                ro.rewards.clone(),
                ro.values.clone(),
                ro.next_values.clone(),
                &vec![1.0; t_len],
                &ro.trace,
                cfg.gamma,
                cfg.gae_lambda,
            );
            let (flat, ev) = Samples::flatten(
                ro.actions.clone().reshape([rows, 1]),
                ro.logp.clone(),
                ro.values.clone(),
                adv,
            );
            evs.push(ev);
            batches.push((
                flat,
                ro.obs.clone().reshape([rows, w]),
                ro.features.clone().reshape([t_len * e, f]),
                sh.inputs.clone(),
                sh.dev.clone(),
            ));
        }
        let ev = self.mean_over(evs);
        let devices: Vec<Device> = self.shards.iter().map(|s| s.dev.clone()).collect();
        let mut rngs: Vec<&mut ChaCha8Rng> = self.shards.iter_mut().map(|s| &mut s.rng).collect();
        let (sums, count) = ppo_epochs(
            &mut self.players,
            &mut self.opt_players,
            &cfg,
            lr,
            rows,
            &mut rngs,
            &devices,
            self.profile.as_mut(),
            |rank, model, chunk| {
                let (flat, obs, features, inputs, dev) = &batches[rank];
                let it = || chunk.iter().map(|&i| i as usize);
                let idx = ids_of(it(), dev);
                let env_idx = ids_of(it().map(|i| (i / r) * e + (i % r) / n), dev);
                let player_idx = ids_of(it().map(|i| i % n), dev);
                let window = inputs.windows(obs.clone().select(0, idx.clone()));
                let extras = inputs.extras(features.clone(), env_idx, player_idx);
                let (logits, new_values) = model.forward(window, extras);
                (logits, new_values, flat.select(idx))
            },
        );
        (sums, count, ev)
    }

    fn update_principal(&mut self, ros: &[Rollout], lr: f64) -> (Tensor<1>, usize, Tensor<1>) {
        let cfg = self.run.train.principal.clone();
        let l = self.shards[0].env.layout();
        let (e, b, f, mw) = (
            l.num_envs,
            l.brackets,
            l.principal_features,
            l.map_stride / 4,
        );
        let mut batches = Vec::with_capacity(ros.len());
        let mut evs = Vec::with_capacity(ros.len());
        // Every device decides on the same steps.
        let steps = ros[0]
            .principal
            .as_ref()
            .expect("a principal rollout")
            .steps
            .clone();
        for (sh, ro) in self.shards.iter().zip(ros) {
            let p = ro
                .principal
                .as_ref()
                .expect("every device decides on the same steps");
            let k = p.steps.len();
            let adv = ppo::gae(
                p.rewards.clone(),
                p.values.clone(),
                p.next_values.clone(),
                &p.trace,
                &p.trace,
                cfg.gamma,
                cfg.gae_lambda,
            );
            let rows = k * e;
            let (flat, ev) = Samples::flatten(
                p.choices.clone().reshape([rows, b]),
                p.logp.clone(),
                p.values.clone(),
                adv,
            );
            evs.push(ev);
            let t_len = ro.features.dims()[0];
            batches.push((
                flat,
                ro.features.clone().reshape([t_len * e, f]),
                p.maps.clone().reshape([rows, mw]),
                p.masks.clone().reshape([rows, b, CHOICES as usize]),
                sh.inputs.clone(),
                sh.dev.clone(),
            ));
        }
        let rows = steps.len() * e;
        let ev = self.mean_over(evs);
        let devices: Vec<Device> = self.shards.iter().map(|s| s.dev.clone()).collect();
        let mut rngs: Vec<&mut ChaCha8Rng> = self.shards.iter_mut().map(|s| &mut s.rng).collect();
        let (sums, count) = ppo_epochs(
            &mut self.principal,
            &mut self.opt_principal,
            &cfg,
            lr,
            rows,
            &mut rngs,
            &devices,
            self.profile.as_mut(),
            |rank, model, chunk| {
                let (flat, features, maps, masks, inputs, dev) = &batches[rank];
                let it = || chunk.iter().map(|&j| j as usize);
                let idx = ids_of(it(), dev);
                let feat_idx = ids_of(it().map(|j| steps[j / e] * e + j % e), dev);
                let map = inputs.principal_map(maps.clone().select(0, idx.clone()));
                let (logits, new_values) = model.forward(map, features.clone().select(0, feat_idx));
                let masked = logits + masks.clone().select(0, idx.clone());
                (masked, new_values, flat.select(idx))
            },
        );
        (sums, count, ev)
    }

    /// One iteration: a rollout, the players' and the principal's updates, one read of the
    /// results. Returns the iteration's metrics; fails, naming the value, when a loss or a
    /// parameter is not finite.
    pub fn iterate(&mut self, mut progress: impl FnMut(u64)) -> Result<Row> {
        let start = Instant::now();
        let l = self.shards[0].env.layout();
        // Envs over all devices.
        let e = l.num_envs * self.shards.len();
        let (n, b) = (l.players, l.brackets);
        let lr = self.lr(&self.run.train.players.clone());
        let plr = self.lr(&self.run.train.principal.clone());
        let phase = self.phase();
        let ros = self.collect_all(&mut progress)?;
        let mut stats = Vec::new();
        for sh in &mut self.shards {
            stats.extend(sh.env.read_stats()?);
        }
        let update = Instant::now();
        let (player_sums, player_count, player_ev) = self.update_players(&ros, lr);
        let principal = ros[0]
            .principal
            .is_some()
            .then(|| self.update_principal(&ros, plr));

        // Everything the host needs from this iteration, in one read.
        let mut parts = vec![player_sums.div_scalar(player_count as f64), player_ev];
        if let Some((sums, count, ev)) = &principal {
            parts.push(sums.clone().div_scalar(*count as f64));
            parts.push(ev.clone());
        }
        // Every device ends as many episodes and rounds: the mean over all is the mean of
        // the devices' means.
        let has_return = !ros[0].episode_returns.is_empty();
        if has_return {
            parts
                .push(self.mean_over(ros.iter().flat_map(|r| r.episode_returns.clone()).collect()));
        }
        let has_round = !ros[0].round_returns.is_empty();
        if has_round {
            parts.push(self.mean_over(ros.iter().flat_map(|r| r.round_returns.clone()).collect()));
        }
        let rates: Vec<Tensor<2>> = self
            .shards
            .iter()
            .map(|sh| {
                sh.env
                    .principal_features()
                    .narrow(1, n, b)
                    .to_device(self.dev())
            })
            .collect();
        parts.push(Tensor::cat(rates, 0).mean_dim(0).reshape([b]));
        let (mut names, sums) = param_sums(&self.players, "players");
        let (pnames, psums) = param_sums(&self.principal, "principal");
        names.extend(pnames);
        parts.extend(sums);
        parts.extend(psums);
        let data = self.read(Transaction::default().register(Tensor::cat(parts, 0)))?;
        let values = floats(data.into_iter().next().expect("one tensor"))?;
        let update_seconds = update.elapsed().as_secs_f64();

        let mut it = values.into_iter().map(f64::from);
        let mut next = |k: usize| -> Vec<f64> { (&mut it).take(k).collect() };
        let mut row = Row::new();
        let mut put = |k: &str, v: f64| {
            row.insert(k.to_owned(), v);
        };
        let iteration = self.iteration + 1;
        let check = |section: &str, vals: &[f64]| -> Result<()> {
            for (name, &v) in LOSS_NAMES.iter().zip(vals) {
                if !v.is_finite() {
                    bail!(
                        "non-finite {section}/{name} ({v}) in iteration {iteration}; stopping (the last checkpoint is left as it was)"
                    );
                }
            }
            Ok(())
        };
        let pl = next(7);
        check("losses", &pl)?;
        for (name, v) in LOSS_NAMES.iter().zip(&pl) {
            put(&format!("losses/{name}"), *v);
        }
        put("losses/explained_variance", next(1)[0]);
        if principal.is_some() {
            let pp = next(7);
            check("principal", &pp)?;
            for (name, v) in LOSS_NAMES.iter().zip(&pp) {
                if *name != "old_approx_kl" {
                    put(&format!("principal/{name}"), *v);
                }
            }
            put("principal/explained_variance", next(1)[0]);
            put("principal/learning_rate", plr);
        }
        if has_return {
            put("charts/episodic_return", next(1)[0]);
            put(
                "charts/episodic_length",
                self.run.game.game.episode_len as f64,
            );
        }
        if has_round {
            put("principal/return", next(1)[0]);
        }
        for (k, v) in next(b).into_iter().enumerate() {
            put(&format!("principal/rate_{k}"), v);
        }
        for (name, v) in names.iter().zip(next(names.len())) {
            if !v.is_finite() {
                bail!(
                    "non-finite parameter {name} after iteration {iteration}; stopping (the last checkpoint is left as it was)"
                );
            }
        }

        let seconds = start.elapsed().as_secs_f64();
        let env_steps = (e * self.run.train.sampling_horizon as usize) as f64;
        put("iteration", iteration as f64);
        put("global_step", (self.tick * e as u64) as f64);
        put("phase", phase as f64);
        put("charts/SPS", env_steps / seconds);
        put("charts/learning_rate", lr);
        put(
            "perf/agent_steps_per_second",
            env_steps * n as f64 / seconds,
        );
        put("perf/env_seconds", ros[0].env_seconds);
        put("perf/inference_seconds", ros[0].inference_seconds);
        put("perf/update_seconds", update_seconds);
        let schedule = self.schedule(self.tick / self.run.game.game.episode_len as u64);
        put(
            "principal/rate_cap",
            if schedule.tax_enabled {
                schedule.rate_cap_tenths as f64 / 10.0
            } else {
                0.0
            },
        );
        let welfare = self.vote();
        if let Some(eta) = welfare.linear() {
            put("social/eta", eta.value());
        }
        if has_return {
            for (k, v) in self.social(&stats, &welfare) {
                put(k, v);
            }
        }
        self.iteration = iteration;
        self.elapsed += seconds;
        Ok(row)
    }

    /// Episode metrics of the envs' last completed episodes (`social/*`).
    fn social(&self, stats: &[u32], welfare: &Welfare) -> Vec<(&'static str, f64)> {
        let n = self.run.game.game.players as usize;
        let s = stats::summarise(stats, n);
        if s.envs == 0 {
            return Vec::new();
        }
        let unit = sed_core::reward::apple_unit(n as u32) as f64;
        let post_tax = self.run.game.game.welfare_of == sed_core::config::WelfareOf::PostTaxIncome;
        // The objective the players' types vote for by the paper's mean, whatever the
        // principal serves, so that runs with other objectives compare on it.
        let voted = sed_core::voting::MeanVote.choose(&self.run.game.game.types.selfishness, None);
        let (mut w, mut w_voted) = (0.0, 0.0);
        for env in stats
            .chunks_exact(stats::len(n))
            .filter(|s| s[stats::EPISODES] > 0)
        {
            let u: Vec<f64> = if post_tax {
                env[stats::last_post_tax(n)..stats::last_post_tax(n) + n]
                    .iter()
                    .map(|&v| v as i32 as f64 / unit)
                    .collect()
            } else {
                env[stats::last_apples(n)..stats::last_apples(n) + n]
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            };
            w += welfare.eval(&u);
            w_voted += voted.eval(&u);
        }
        let gini = if n > 1 {
            (1.0 - s.equality) * (n as f64 - 1.0) / n as f64
        } else {
            0.0
        };
        vec![
            ("social/apples", s.apples),
            ("social/apples_per_player", s.apples / n as f64),
            ("social/apples_left", s.apples_left),
            ("social/equality", s.equality),
            ("social/gini", gini),
            ("social/welfare", w / s.envs as f64),
            ("social/welfare_voted", w_voted / s.envs as f64),
            ("social/tax_revenue", s.tax_revenue),
        ]
    }

    /// Writes a checkpoint of the whole training state into `run_dir/checkpoints/`.
    pub fn save(&mut self, run_dir: &Path) -> Result<PathBuf> {
        let tmp = checkpoint::begin(run_dir, self.iteration)?;
        self.players
            .clone()
            .save_file(tmp.join("players.bpk"))
            .map_err(|e| anyhow!("saving the players' network: {e:?}"))?;
        self.principal
            .clone()
            .save_file(tmp.join("principal.bpk"))
            .map_err(|e| anyhow!("saving the principal's network: {e:?}"))?;
        write_atomic(&tmp.join("players.adam"), &self.opt_players.to_bytes()?)?;
        write_atomic(&tmp.join("principal.adam"), &self.opt_principal.to_bytes()?)?;
        for rank in 0..self.shards.len() {
            let sh = &mut self.shards[rank];
            let (state, outputs) = sh.env.snapshot()?;
            let mut tx = Transaction::default()
                .register(sh.episode_return.clone())
                .register(sh.round_return.clone());
            if let Some(h) = &sh.history {
                tx = tx.register(h.clone());
            }
            let mut data = self.read(tx)?.into_iter();
            let snapshot = EnvSnapshot {
                state,
                outputs,
                episode_return: floats(data.next().expect("registered"))?,
                round_return: floats(data.next().expect("registered"))?,
                history: match data.next() {
                    Some(h) => h
                        .convert::<i32>()
                        .try_into_vec::<i32>()
                        .map_err(|e| anyhow!("reading back the frame history: {e:?}"))?,
                    None => Vec::new(),
                },
            };
            write_atomic(&tmp.join(env_file(rank)), &snapshot.to_bytes())?;
        }
        let st = TrainerState {
            version: VERSION.into(),
            config: self.run.to_toml(),
            iteration: self.iteration,
            tick: self.tick,
            shuffle_seed: self.shuffle_seed,
            shuffle_word_pos: self.shards[0].rng.get_word_pos(),
            devices: self.shards.len(),
            rank_word_pos: self.shards[1..]
                .iter()
                .map(|s| s.rng.get_word_pos())
                .collect(),
            elapsed_seconds: self.elapsed,
        };
        write_atomic(
            &tmp.join("trainer.json"),
            serde_json::to_string_pretty(&st)?.as_bytes(),
        )?;
        checkpoint::commit(
            run_dir,
            &tmp,
            self.iteration,
            self.run.train.keep_checkpoints as usize,
        )
    }

    /// Continues the run in `run_dir` from its latest checkpoint, as an uninterrupted run
    /// would. `total_steps` may extend (or shorten) the run; nothing else of the config
    /// changes. Returns the trainer and the checkpoint it loaded.
    pub fn resume(
        run_dir: &Path,
        devices: impl Into<Devices>,
        total_steps: Option<u64>,
    ) -> Result<(Self, PathBuf)> {
        Self::open(run_dir, devices.into(), total_steps, true)
    }

    /// The networks and counters of the latest checkpoint in `run_dir`, on `picked`, for
    /// evaluating and rendering (which play fresh envs): a run trained on several devices
    /// loads on one, its envs not restored.
    pub fn load(run_dir: &Path, picked: Picked) -> Result<(Self, PathBuf)> {
        Self::open(run_dir, picked.into(), None, false)
    }

    /// [`Trainer::resume`] (`whole`: the optimizers, envs and generators too) or
    /// [`Trainer::load`].
    fn open(
        run_dir: &Path,
        devices: Devices,
        total_steps: Option<u64>,
        whole: bool,
    ) -> Result<(Self, PathBuf)> {
        let ckpt = checkpoint::latest(run_dir)?.ok_or_else(|| {
            anyhow!(
                "--resume {}: no checkpoint in it (checkpoints/latest is missing)",
                run_dir.display()
            )
        })?;
        let text = std::fs::read_to_string(ckpt.join("trainer.json"))
            .with_context(|| format!("reading {}", ckpt.join("trainer.json").display()))?;
        let st: TrainerState = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a checkpoint of this version", ckpt.display()))?;
        if st.version != VERSION {
            bail!(
                "--resume {}: the checkpoint was written by sed-train {}, this is {VERSION}",
                run_dir.display(),
                st.version
            );
        }
        let mut run = RunConfig::parse(&st.config, &[], "the checkpoint's config", None)?;
        if let Some(steps) = total_steps {
            run.train.total_steps = steps;
            run = RunConfig::new(run.game, run.train)?;
        }
        if whole && (st.devices != devices.0.len() || st.rank_word_pos.len() + 1 != st.devices) {
            bail!(
                "--resume {}: the run trained on {} device(s); resume it on as many (`--gpus` with {} entries{})",
                run_dir.display(),
                st.devices,
                st.devices,
                if st.devices == 1 { ", or none" } else { "" }
            );
        }
        let mut t = Self::new(run, devices)?;
        t.players = t
            .players
            .clone()
            .try_load_file(ckpt.join("players.bpk"))
            .map_err(|e| anyhow!("loading {}: {e:?}", ckpt.join("players.bpk").display()))?;
        t.principal = t
            .principal
            .clone()
            .try_load_file(ckpt.join("principal.bpk"))
            .map_err(|e| anyhow!("loading {}: {e:?}", ckpt.join("principal.bpk").display()))?;
        t.tick = st.tick;
        t.iteration = st.iteration;
        t.shuffle_seed = st.shuffle_seed;
        t.elapsed = st.elapsed_seconds;
        if !whole {
            return Ok((t, ckpt));
        }
        let read = |name: &str| {
            std::fs::read(ckpt.join(name))
                .with_context(|| format!("reading {}", ckpt.join(name).display()))
        };
        let dev = t.dev().clone();
        t.opt_players.load_bytes(&read("players.adam")?, &dev)?;
        t.opt_principal.load_bytes(&read("principal.adam")?, &dev)?;
        for (rank, sh) in t.shards.iter_mut().enumerate() {
            let snap = EnvSnapshot::from_bytes(&read(&env_file(rank))?)?;
            sh.env.restore(&snap.state, &snap.outputs)?;
            let l = sh.env.layout();
            if snap.episode_return.len() != l.num_envs * l.players
                || snap.round_return.len() != l.num_envs
            {
                bail!(
                    "{}: the saved accumulators do not fit the config",
                    ckpt.display()
                );
            }
            sh.episode_return = Tensor::from_floats(snap.episode_return.as_slice(), &sh.dev);
            sh.round_return = Tensor::from_floats(snap.round_return.as_slice(), &sh.dev);
            if let Some(h) = &mut sh.history {
                let dims = h.dims();
                if snap.history.len() != dims.iter().product::<usize>() {
                    bail!(
                        "{}: the saved frame history does not fit train.frame_stack",
                        ckpt.display()
                    );
                }
                *h = Tensor::from_data(TensorData::new(snap.history, dims), &sh.dev);
            }
            sh.rng = ChaCha8Rng::seed_from_u64(st.shuffle_seed.wrapping_add(rank as u64));
            sh.rng.set_word_pos(if rank == 0 {
                st.shuffle_word_pos
            } else {
                st.rank_word_pos[rank - 1]
            });
        }
        Ok((t, ckpt))
    }

    /// Plays `episodes` whole episodes in fresh envs (the run's seed, so every policy meets
    /// the same world and the same noise) and reports their means over envs and episodes. Taxes follow the
    /// curriculum's current schedule.
    pub fn evaluate(&self, episodes: u32, players: Actor, principal: Actor) -> Result<Evaluation> {
        let g = &self.run.game.game;
        let mut sums = std::collections::BTreeMap::<&str, f64>::new();
        let env = self.play(episodes, players, principal, |env, tick, welfare| {
            if (tick + 1).is_multiple_of(g.episode_len as u64) {
                // Every env ended an episode: add its statistics.
                let stats = env.read_stats()?;
                for (k, v) in self.social(&stats, welfare) {
                    *sums.entry(k).or_insert(0.0) += v / episodes as f64;
                }
            }
            Ok(())
        })?;
        let l = env.layout();
        let rates = floats(
            env.principal_features()
                .narrow(1, l.players, l.brackets)
                .mean()
                .into_data(),
        )?;
        let mean = |k: &str| sums.get(k).copied().unwrap_or(0.0);
        Ok(Evaluation {
            episodes,
            apples_per_player: mean("social/apples_per_player"),
            welfare: mean("social/welfare"),
            welfare_voted: mean("social/welfare_voted"),
            equality: mean("social/equality"),
            apples_left: mean("social/apples_left"),
            mean_rate: rates[0] as f64,
        })
    }

    /// Plays `episodes` whole episodes in fresh envs like [`Trainer::evaluate`], calling
    /// `after_step(env, tick, objective)` after every step; returns the envs at the end.
    pub fn play(
        &self,
        episodes: u32,
        players: Actor,
        principal: Actor,
        mut after_step: impl FnMut(&mut dyn VecEnv, u64, &Welfare) -> Result<()>,
    ) -> Result<Box<dyn VecEnv>> {
        let sh = &self.shards[0];
        let l = sh.env.layout();
        let (e, n, b) = (l.num_envs, l.players, l.brackets);
        let r = e * n;
        let g = &self.run.game.game;
        let mut env: Box<dyn VecEnv> = make_env(&self.run, &sh.picked, e, 0)?;
        env.reset()?;
        let policy = self.players.valid();
        let ppolicy = self.principal.valid();
        let schedule = self.schedule(self.tick / g.episode_len as u64);
        let (period, round_len) = (g.tax_period as u64, (g.tax_period * g.round_periods) as u64);
        let mut welfare = self.vote();
        let actions_n = Action::COUNT as usize;
        let mut history = sh.history.as_ref().map(Tensor::zeros_like);
        for tick in 0..episodes as u64 * g.episode_len as u64 {
            if tick.is_multiple_of(round_len) {
                welfare = self.vote();
            }
            let features = env.principal_features();
            let noise = env.noise(Noise::Players, tick as u32)?;
            let obs = env.obs();
            let act = match players {
                Actor::Trained => {
                    let (window, extras) = (
                        sh.inputs
                            .windows(stack_frames(history.as_ref(), obs.clone())),
                        sh.inputs.step_extras(features.clone()),
                    );
                    let (logits, _) = policy.forward(window, extras);
                    sample(logits.reshape([r, actions_n]), noise)
                }
                Actor::Uniform => sample(Tensor::zeros([r, actions_n], &sh.dev), noise),
                Actor::Fixed(_) => Tensor::zeros([r], &sh.dev),
            };
            let decision = tick.is_multiple_of(period) && schedule.principal_learns;
            let choices = if !decision {
                sh.keep.clone()
            } else if let (Actor::Trained, Some(fixed)) = (principal, &sh.fixed) {
                fixed.clone()
            } else {
                let mask = choice_mask(
                    features.clone().narrow(1, n, b),
                    schedule.rate_cap_tenths,
                    g.max_rate_change_tenths,
                );
                let logits = match principal {
                    Actor::Trained => {
                        ppolicy
                            .forward(sh.inputs.principal_map(env.principal_map()), features)
                            .0
                    }
                    Actor::Uniform => Tensor::zeros([e, b, CHOICES as usize], &sh.dev),
                    Actor::Fixed(c) => {
                        let mut v = vec![0.0f32; CHOICES as usize];
                        v[c as usize] = 1e9;
                        Tensor::<1>::from_floats(v.as_slice(), &sh.dev)
                            .reshape([1, 1, CHOICES as usize])
                            .expand([e, b, CHOICES as usize])
                    }
                };
                let noise = env.noise(Noise::Principal, tick as u32)?;
                sample((logits + mask).reshape([e * b, CHOICES as usize]), noise)
            };
            // Queued before the step, which overwrites the env's observations on the GPU.
            history = history.map(|h| {
                if (tick + 1).is_multiple_of(g.episode_len as u64) {
                    h.zeros_like()
                } else {
                    push_frame(h, obs)
                }
            });
            env.step(act, choices, &StepParams { schedule, welfare })?;
            after_step(env.as_mut(), tick, &welfare)?;
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::ModuleMapper;

    use super::*;
    use crate::nets::{PrincipalNet, flat_params};

    #[test]
    fn param_sums_names_every_parameter_and_sees_a_nan() {
        let dev = Device::flex().autodiff();
        let net = PrincipalNet::new(4, 3, &[8, 8], 2, CHOICES as usize, &dev);
        let (names, sums) = param_sums(&net, "principal");
        assert_eq!(
            names,
            [
                "principal.mlp.layers.0.weight",
                "principal.mlp.layers.0.bias",
                "principal.mlp.layers.1.weight",
                "principal.mlp.layers.1.bias",
                "principal.actor.weight",
                "principal.actor.bias",
                "principal.critic.weight",
                "principal.critic.bias",
            ]
        );
        let finite = |sums: Vec<Tensor<1>>| -> Vec<bool> {
            let v = floats(Tensor::cat(sums, 0).into_data()).unwrap();
            v.iter().map(|x| x.is_finite()).collect()
        };
        assert!(finite(sums).iter().all(|&f| f));

        // One NaN in the actor's bias shows in that parameter's sum and no other.
        struct Poison(usize);
        impl ModuleMapper for Poison {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                self.0 += 1;
                if self.0 != 6 {
                    return param;
                }
                param.map(|t| t.mul_scalar(f32::NAN))
            }
        }
        let (_, sums) = param_sums(&net.map(&mut Poison(0)), "principal");
        let flags = finite(sums);
        assert_eq!(flags.iter().filter(|&&f| !f).count(), 1);
        assert!(!flags[5], "the actor's bias: {flags:?}");
    }

    #[test]
    fn two_devices_with_the_same_samples_take_the_step_of_one() {
        use burn::tensor::Distribution;
        let dev = Device::flex();
        let ad = dev.clone().autodiff();
        dev.seed(3);
        let (rows, cells, features, heads) = (24, 4, 3, 2);
        let net = PrincipalNet::new(cells, features, &[8], heads, CHOICES as usize, &ad);
        materialise(&net);
        let map = Tensor::<3>::random(
            [rows, cells, crate::features::CHANNELS],
            Distribution::Default,
            &dev,
        );
        let feats = Tensor::<2>::random([rows, features], Distribution::Default, &dev);
        let actions = Tensor::<2, Int>::random(
            [rows, heads],
            Distribution::Uniform(0.0, CHOICES as f64),
            &dev,
        );
        let column = |seed: u64| {
            dev.seed(seed);
            Tensor::<2>::random([1, rows], Distribution::Normal(0.0, 1.0), &dev)
        };
        let (logp, values) = (column(5).sub_scalar(2.0), column(6));
        let samples = |advantages: Tensor<2>| {
            Samples::flatten(actions.clone(), logp.clone(), values.clone(), advantages).0
        };
        let (same, other) = (samples(column(7)), samples(column(8)));
        let cfg = PpoConfig {
            update_epochs: 2,
            minibatches: 3,
            ..PpoConfig::default()
        };
        // PPO epochs over `ranks` devices (all this one), rank k holding `data[k]`.
        let train = |data: &[&Samples]| {
            let mut model = net.clone();
            let mut adam = Adam::new(cfg.adam_eps);
            let mut gens: Vec<ChaCha8Rng> =
                data.iter().map(|_| ChaCha8Rng::seed_from_u64(11)).collect();
            let mut rngs: Vec<&mut ChaCha8Rng> = gens.iter_mut().collect();
            let devices = vec![dev.clone(); data.len()];
            let (sums, count) = ppo_epochs(
                &mut model,
                &mut adam,
                &cfg,
                1e-2,
                rows,
                &mut rngs,
                &devices,
                None,
                |rank, m: &PrincipalNet, chunk| {
                    let idx = ids_of(chunk.iter().map(|&i| i as usize), &dev);
                    let (logits, v) = m.forward(
                        map.clone().select(0, idx.clone()),
                        feats.clone().select(0, idx.clone()),
                    );
                    (logits, v, data[rank].select(idx))
                },
            );
            assert_eq!(count, 6);
            (flat_params(&model), floats(sums.into_data()).unwrap())
        };
        let (one, one_metrics) = train(&[&same]);
        let (two, two_metrics) = train(&[&same, &same]);
        let (mixed, _) = train(&[&same, &other]);
        let before = flat_params(&net);
        let max_diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(max_diff(&one, &before) > 1e-3, "the update moved nothing");
        assert!(
            max_diff(&one, &two) < 1e-6,
            "two devices with the same samples differ from one by {}",
            max_diff(&one, &two)
        );
        assert!(max_diff(&one_metrics, &two_metrics) < 1e-5);
        assert!(
            max_diff(&one, &mixed) > 1e-4,
            "the second device's samples were ignored"
        );
    }
}
