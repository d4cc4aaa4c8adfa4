//! The run's configuration: the game (`sed-core`'s [`Config`]) plus the `[train]` section,
//! read from one TOML file, with dotted `--set` overrides on both, validated into a
//! [`RunConfig`] whose every invalid value is rejected with an error that names its field.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sed_core::config::{Config, ConfigError, Resolved, origin_with, parse_table};
use sed_core::principal::rate_tenths;
use serde::{Deserialize, Serialize};

/// PPO settings of one learner (`[train.players]` or `[train.principal]`), CleanRL's names
/// and defaults (SPEC §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Adam's learning rate at the start of training, > 0.
    pub learning_rate: f64,
    /// Anneal the learning rate linearly to 0 over the run (CleanRL's `anneal_lr`).
    pub anneal_lr: bool,
    /// Discount per step (players) or per tax period (principal), in [0, 1].
    pub gamma: f64,
    /// GAE's λ, in [0, 1].
    pub gae_lambda: f64,
    /// Passes over each rollout, ≥ 1.
    pub update_epochs: u32,
    /// Shuffled minibatches per epoch, ≥ 1 (at most the rollout's samples). Minibatches
    /// of more than a few hundred thousand rows are slow and may not fit a device buffer:
    /// raise this with the number of envs.
    pub minibatches: u32,
    /// PPO's clipping coefficient of the probability ratio, > 0.
    pub clip_coef: f64,
    /// Clip the value loss around the rollout's values too (CleanRL's `clip_vloss`).
    pub clip_value_loss: bool,
    /// Weight of the entropy bonus, ≥ 0.
    pub ent_coef: f64,
    /// Weight of the value loss, ≥ 0.
    pub vf_coef: f64,
    /// Largest global norm of the gradient over all parameters together, > 0.
    pub max_grad_norm: f64,
    /// Normalise advantages in each minibatch.
    pub norm_adv: bool,
    /// Adam's ε, > 0.
    pub adam_eps: f64,
    /// Hidden layer widths of the MLP torso (each ≥ 1; at least one layer).
    pub hidden: Vec<usize>,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2.5e-4,
            anneal_lr: true,
            gamma: 0.99,
            gae_lambda: 0.95,
            update_epochs: 4,
            minibatches: 4,
            clip_coef: 0.2,
            clip_value_loss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            norm_adv: true,
            adam_eps: 1e-5,
            hidden: vec![256, 256],
        }
    }
}

/// The most frames `train.frame_stack` allows.
pub const MAX_FRAMES: u32 = 8;

/// The players' network torso.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Torso {
    /// An MLP on the unpacked window (all matmuls).
    #[default]
    Mlp,
    /// SocialJax's small CNN: conv 32·5×5 → 32·3×3 → 32·3×3 (same padding) → dense 64.
    Cnn,
    /// The paper's fidelity setting: SPEC §3's RGB window (88 × 88 × 3, 8 px per cell,
    /// Melting Pot's look, rendered on the device from the symbolic window) into the
    /// released code's CNN: conv 32·8×8/4 → 64·4×4/2 → 64·3×3/1 → dense 512. About 190×
    /// the input floats of the symbolic window: use more minibatches or fewer envs.
    Rgb,
}

/// The `[train]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Env-steps to train for, summed over envs (CleanRL's `total_timesteps`), ≥ 1. The run
    /// takes `max(1, total_steps / (num_envs · sampling_horizon))` iterations.
    pub total_steps: u64,
    /// Steps per env per rollout (the paper's 200), a multiple of `tax.period`, so that
    /// every principal decision's period ends inside its rollout.
    pub sampling_horizon: u32,
    /// The players' torso.
    pub torso: Torso,
    /// Observations each player sees at once, in 1..=8 (SPEC §3's frame stacking; the
    /// released code stacks 4): the current window and the previous ones of the same
    /// episode, zeros before its first step (as supersuit's `frame_stack`). The frames
    /// enter the torso as extra channels.
    pub frame_stack: u32,
    /// Players see the current tax rates and the position in the tax period (the
    /// Stackelberg followers know the leader's policy, as AI Economist agents see theirs).
    pub player_sees_tax: bool,
    /// Write a checkpoint every this many iterations (≥ 1), and at the end.
    pub checkpoint_interval: u32,
    /// Checkpoints kept on disk (≥ 1); older ones are deleted.
    pub keep_checkpoints: u32,
    /// The players' PPO.
    pub players: PpoConfig,
    /// The principal's PPO (its `gamma` discounts per tax period).
    pub principal: PpoConfig,
    /// A fixed tax instead of a learned principal: on every decision step each bracket's
    /// rate is set to this value (in [0, 1], a multiple of 0.1), within the curriculum's
    /// cap and the divergence bound like any choice; the principal does not learn.
    /// Absent: the principal learns.
    pub fixed_rate: Option<f64>,
    /// The principal sees its map averaged over `principal_pool × principal_pool` blocks
    /// (1 = every cell; at most the map's longer side). The map feeds the principal's first
    /// layer, so large maps (`env.map_tiles`) need blocks: 8 turns the 242 × 244 map of
    /// `[15, 11]` tiles into 31 × 31.
    pub principal_pool: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            total_steps: 100_000_000,
            sampling_horizon: 200,
            torso: Torso::Mlp,
            frame_stack: 1,
            player_sees_tax: true,
            checkpoint_interval: 25,
            keep_checkpoints: 3,
            players: PpoConfig::default(),
            principal: PpoConfig::default(),
            fixed_rate: None,
            principal_pool: 1,
        }
    }
}

/// A validated run: the resolved game and the train settings.
#[derive(Debug)]
pub struct RunConfig {
    /// The game, resolved by `sed-core`.
    pub game: Resolved,
    /// The `[train]` section, validated.
    pub train: TrainConfig,
}

fn invalid(field: &str, message: impl Into<String>) -> anyhow::Error {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
    .into()
}

impl PpoConfig {
    fn validate(&self, section: &str) -> Result<()> {
        let f = |name: &str| format!("train.{section}.{name}");
        let positive = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    &f(name),
                    format!("{v} must be a finite number > 0"),
                ))
            }
        };
        let unit = |name: &str, v: f64| -> Result<()> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(invalid(&f(name), format!("{v} is outside [0, 1]")))
            }
        };
        let non_negative = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    &f(name),
                    format!("{v} must be a finite number ≥ 0"),
                ))
            }
        };
        positive("learning_rate", self.learning_rate)?;
        unit("gamma", self.gamma)?;
        unit("gae_lambda", self.gae_lambda)?;
        positive("clip_coef", self.clip_coef)?;
        non_negative("ent_coef", self.ent_coef)?;
        non_negative("vf_coef", self.vf_coef)?;
        positive("max_grad_norm", self.max_grad_norm)?;
        positive("adam_eps", self.adam_eps)?;
        if self.update_epochs == 0 {
            return Err(invalid(&f("update_epochs"), "must be at least 1"));
        }
        if self.minibatches == 0 {
            return Err(invalid(&f("minibatches"), "must be at least 1"));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(invalid(
                &f("hidden"),
                format!("{:?} needs at least one layer, each ≥ 1 wide", self.hidden),
            ));
        }
        Ok(())
    }
}

impl RunConfig {
    /// Reads a config file, applies `overrides` (`section.field=value`, the `train`
    /// section included) and validates everything. `env.map_file` is relative to the file.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config {}", path.display()))?;
        Self::parse(&text, overrides, &path.display().to_string(), path.parent())
    }

    /// Parses TOML text (`origin` names it in errors) with overrides; a relative
    /// `env.map_file` is taken relative to `base`.
    pub fn parse(
        text: &str,
        overrides: &[String],
        origin: &str,
        base: Option<&Path>,
    ) -> Result<Self> {
        let mut table = parse_table(text, overrides, origin)?;
        let origin = origin_with(origin, overrides);
        let train = match table.remove("train") {
            None => TrainConfig::default(),
            Some(toml::Value::Table(t)) => {
                TrainConfig::deserialize(t).map_err(|source| ConfigError::Parse {
                    origin: format!("{origin}, section [train]"),
                    source,
                })?
            }
            Some(_) => bail!("`train`: must be a section"),
        };
        let mut config = Config::from_table(table, &origin)?;
        if let Some(dir) = base {
            config.rebase_paths(dir);
        }
        Self::new(config.resolve()?, train)
    }

    /// Validates `train` against the resolved game.
    pub fn new(game: Resolved, train: TrainConfig) -> Result<Self> {
        if train.total_steps == 0 {
            return Err(invalid("train.total_steps", "must be at least 1"));
        }
        let period = game.game.tax_period;
        if train.sampling_horizon == 0 || !train.sampling_horizon.is_multiple_of(period) {
            return Err(invalid(
                "train.sampling_horizon",
                format!(
                    "{} must be a positive multiple of tax.period ({period})",
                    train.sampling_horizon
                ),
            ));
        }
        if train.checkpoint_interval == 0 {
            return Err(invalid("train.checkpoint_interval", "must be at least 1"));
        }
        if train.keep_checkpoints == 0 {
            return Err(invalid("train.keep_checkpoints", "must be at least 1"));
        }
        if !(1..=MAX_FRAMES).contains(&train.frame_stack) {
            return Err(invalid(
                "train.frame_stack",
                format!("{} is outside 1..={MAX_FRAMES}", train.frame_stack),
            ));
        }
        train.players.validate("players")?;
        train.principal.validate("principal")?;
        let map = &game.game.map;
        let longest = map.rows.max(map.cols);
        if !(1..=longest).contains(&train.principal_pool) {
            return Err(invalid(
                "train.principal_pool",
                format!(
                    "{} is outside 1..={longest} (the map is {}x{})",
                    train.principal_pool, map.rows, map.cols
                ),
            ));
        }
        if let Some(rate) = train.fixed_rate
            && rate_tenths(rate).is_none()
        {
            return Err(invalid(
                "train.fixed_rate",
                format!("{rate} is not one of 0, 0.1, ..., 1"),
            ));
        }
        let rows = game.num_envs as u64 * game.game.players as u64 * train.sampling_horizon as u64;
        if (train.players.minibatches as u64) > rows {
            return Err(invalid(
                "train.players.minibatches",
                format!(
                    "{} minibatches but a rollout has only {rows} player rows",
                    train.players.minibatches
                ),
            ));
        }
        let decisions = game.num_envs as u64 * (train.sampling_horizon / period) as u64;
        if (train.principal.minibatches as u64) > decisions {
            return Err(invalid(
                "train.principal.minibatches",
                format!(
                    "{} minibatches but a rollout has only {decisions} principal decisions",
                    train.principal.minibatches
                ),
            ));
        }
        Ok(Self { game, train })
    }

    /// The fixed tax's choice per bracket head (the rate in tenths), if the principal is
    /// replaced by one.
    #[must_use]
    pub fn fixed_choice(&self) -> Option<u32> {
        self.train.fixed_rate.and_then(rate_tenths)
    }

    /// Iterations of the run.
    #[must_use]
    pub fn iterations(&self) -> u64 {
        (self.train.total_steps / self.steps_per_iteration()).max(1)
    }

    /// Env-steps of one iteration (all envs).
    #[must_use]
    pub fn steps_per_iteration(&self) -> u64 {
        self.game.num_envs as u64 * self.train.sampling_horizon as u64
    }

    /// The whole config as TOML, map inlined, `[train]` included: written beside every
    /// run's outputs, and it resolves to the same run.
    #[must_use]
    pub fn to_toml(&self) -> String {
        let mut table = toml::Table::try_from(&self.game.config).expect("a config serialises");
        table.insert(
            "train".into(),
            toml::Value::try_from(&self.train).expect("a config serialises"),
        );
        toml::to_string(&table).expect("a table serialises")
    }
}
