//! Configuration: TOML files in `configs/` → [`Config`] (raw, every field documented) →
//! dotted command-line overrides → [`Config::resolve`] → [`Resolved`] (validated, derived).
//!
//! Every invalid value is rejected with a [`ConfigError`] that names the field and says
//! what is allowed; nothing is clamped silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::map::Map;
use crate::principal::{Curriculum, CurriculumMode, TaxSchedule};
use crate::reward::RewardForm;
use crate::rng::probability_threshold;
use crate::tax::Bracket;
use crate::types::PlayerTypes;
use crate::voting::{MajorityVote, MeanVote, MedianVote, SocialChoice};
use crate::welfare::WelfareSpec;

/// The default map, Melting Pot's `commons_harvest__open` (SPEC §2).
pub const COMMONS_HARVEST_OPEN: &str =
    include_str!("../../../configs/maps/commons_harvest_open.txt");

/// Most players a game may have: the exact reward arithmetic is proven up to this many
/// (the test at the end of this file).
pub const MAX_PLAYERS: u32 = 4096;

/// The most steps an episode or a voting round may last with `players` players, so that
/// one player's post-tax income over it stays exact in `i32` ([`crate::reward::post_tax_bound`]).
#[must_use]
pub fn longest_exact_span(players: u32) -> u64 {
    (i32::MAX as i128 / crate::reward::post_tax_bound(players, 1)) as u64
}

/// A config value that is not allowed, or a file that cannot be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A field has a value outside its allowed range.
    #[error("`{field}`: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The TOML does not parse or does not match the schema.
    #[error("{origin}: {source}")]
    Parse {
        /// The file, or "override".
        origin: String,
        /// The parser's error (it names the field and the line).
        source: toml::de::Error,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A whole run's configuration, as written in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seed of the run. Player types, spawns, movement order and regrowth all derive from
    /// it through the counter-based RNG: the same seed gives the same run.
    /// `0..=2⁶³ − 1` (TOML integers are signed 64-bit).
    pub seed: u64,
    /// The world.
    pub env: EnvConfig,
    /// Taxes and the principal's action space.
    pub tax: TaxConfig,
    /// Player rewards and types.
    pub reward: RewardConfig,
    /// Voting on the principal's objective.
    pub vote: VoteConfig,
    /// How taxes are phased in during training.
    pub curriculum: CurriculumConfig,
}

/// The world (SPEC §2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvConfig {
    /// Number of envs stepped in parallel (≥ 1).
    pub num_envs: u32,
    /// Number of players n (1..=4096, at most the map's spawn cells).
    pub players: u32,
    /// Steps per episode; a multiple of `tax.period`. The world resets after it. At most
    /// 2³¹ / (200 n) steps, so that post-tax incomes stay exact (1000 steps work up to
    /// 4096 players).
    pub episode_len: u32,
    /// The map as ASCII art (`W` wall, `A` apple, `P` spawn, `Q` inside spawn, space
    /// floor). Give either `map` or `map_file`.
    pub map: Option<String>,
    /// A file holding the map, relative to the config file. Give either `map` or
    /// `map_file`; with neither, Melting Pot's `commons_harvest__open` is used.
    pub map_file: Option<PathBuf>,
    /// Tiles the map `[down, across]` times (each ≥ 1; the result at most 255 × 255) for
    /// large economies: apple patches and spawn cells scale with the copies. A map walled
    /// all round is tiled by its interior inside one wall ring. `[1, 1]` is the map itself.
    pub map_tiles: [u32; 2],
    /// Regrowth counts live apples within this Euclidean radius (1..=5; 2 = SPEC).
    pub regrowth_radius: u32,
    /// Regrowth probability per step of an empty apple cell with k live neighbours, for
    /// k = 0, 1, …; the last entry applies to all larger counts. Each in [0, 1].
    pub regrowth_probabilities: Vec<f64>,
}

/// Taxes (SPEC §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaxConfig {
    /// Whether taxes exist at all. `false` turns every settlement off, whatever the
    /// curriculum says.
    pub enabled: bool,
    /// Inclusive brackets `[lo, hi]` of apples per tax period, increasing and disjoint,
    /// `lo ≥ 1`. One principal head per bracket.
    pub brackets: Vec<[u32; 2]>,
    /// Steps per tax period (≥ 1). The principal decides on the first step of a period;
    /// taxes are settled on its last.
    pub period: u32,
    /// Reset every rate to 0 at each episode start (default: rates persist).
    pub reset_rates_each_episode: bool,
    /// The L∞ divergence bound δ on rate changes between decisions, in [0, 1] and a
    /// multiple of 0.1; absent = unconstrained.
    pub max_rate_change: Option<f64>,
}

/// Player rewards and types (SPEC §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// `paper` (eq. 8, taxed social term) or `released_code` (trust-weighted, untaxed
    /// social term).
    pub form: RewardForm,
    /// Fixed selfishness σᵢ per player, each in [0, 1] (stored to 1/256). Absent: drawn
    /// from U[0, 1] once per run from the seed.
    pub selfishness: Option<Vec<f64>>,
    /// Fixed trust βᵢ per player (released-code form), each in [0, 1]. Absent: drawn.
    pub trust: Option<Vec<f64>>,
}

/// Voting (SPEC §1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoteConfig {
    /// The social choice function.
    pub social_choice: SocialChoiceSpec,
    /// Tax periods per voting round (≥ 1). Rounds are online: a new round continues from
    /// the world as it is; only an episode end resets the world. A round lasts at most
    /// 2³¹ / (200 n) steps, as an episode.
    pub round_periods: u32,
    /// What the welfare objective is computed over: `raw_apples` (the paper's `A`, apples
    /// collected before tax) or `post_tax_income` (apples after taxes and redistribution,
    /// the AI Economist's convention for equality).
    pub welfare_of: WelfareOf,
}

/// The per-player quantity the principal's welfare objective is computed over (SPEC §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WelfareOf {
    /// Raw apples collected since the voting round began (the paper).
    #[default]
    RawApples,
    /// Apples after tax and redistribution since the voting round began.
    PostTaxIncome,
}

/// A social choice function as written in a config.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SocialChoiceSpec {
    /// η = mean(σ) (the paper's default).
    Mean,
    /// η = median(σ).
    Median,
    /// Majority between two objectives: σᵢ ≥ `threshold` votes for `first`.
    Majority {
        /// The objective of the players at or above the threshold.
        first: WelfareSpec,
        /// The objective of the others.
        second: WelfareSpec,
        /// The threshold in [0, 1].
        threshold: f64,
    },
    /// No vote: a fixed objective.
    Fixed {
        /// The objective.
        welfare: WelfareSpec,
    },
}

/// The tax curriculum (SPEC §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CurriculumConfig {
    /// `rate_cap` (AI Economist two phases), `transfer_multiplier` (released code) or
    /// `none`.
    pub mode: CurriculumMode,
    /// Episodes of phase 1: players learn with taxes off, principal frozen (`rate_cap`).
    pub phase1_episodes: u64,
    /// Episodes of phase 2 over which the rate cap rises from 0.1 to 1.0 (`rate_cap`).
    pub anneal_episodes: u64,
    /// Episodes from the start over which the transfer multiplier rises from 0.1 to 1.0
    /// (`transfer_multiplier`; the released code anneals over the first 2% of its
    /// episodes: 100 is 2% of the default 1000 + 4000 episodes).
    pub multiplier_episodes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            env: EnvConfig::default(),
            tax: TaxConfig::default(),
            reward: RewardConfig::default(),
            vote: VoteConfig::default(),
            curriculum: CurriculumConfig::default(),
        }
    }
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            num_envs: 1024,
            players: 7,
            episode_len: 1000,
            map: None,
            map_file: None,
            map_tiles: [1, 1],
            regrowth_radius: 2,
            regrowth_probabilities: vec![0.0, 0.0025, 0.005, 0.025],
        }
    }
}

impl Default for TaxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            brackets: vec![[1, 10], [11, 20], [21, 10_000]],
            period: 50,
            reset_rates_each_episode: false,
            max_rate_change: None,
        }
    }
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            form: RewardForm::Paper,
            selfishness: None,
            trust: None,
        }
    }
}

impl Default for VoteConfig {
    fn default() -> Self {
        Self {
            social_choice: SocialChoiceSpec::Mean,
            round_periods: 20,
            welfare_of: WelfareOf::RawApples,
        }
    }
}

impl Default for CurriculumConfig {
    fn default() -> Self {
        Self {
            mode: CurriculumMode::RateCap,
            phase1_episodes: 1000,
            anneal_episodes: 4000,
            multiplier_episodes: 100,
        }
    }
}

/// Sets `key.path = value` in a TOML table; `value` is read as a TOML value (`3`, `0.5`,
/// `true`, `[1, 2]`, `"text"`), and as a plain string when it is not one.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let (key, raw) = assignment.split_once('=').ok_or_else(|| {
        invalid(
            assignment,
            "an override must look like `section.field=value`",
        )
    })?;
    let key = key.trim();
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("the key just written"),
        Err(_) => toml::Value::String(raw.to_owned()),
    };
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(key, "empty key"))?;
    let mut node = table;
    for part in parts {
        node = node
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| invalid(key, format!("`{part}` is not a section")))?;
    }
    node.insert(last.to_owned(), value);
    Ok(())
}

/// Parses TOML text into a table and applies dotted overrides to it.
pub fn parse_table(
    text: &str,
    overrides: &[String],
    origin: &str,
) -> Result<toml::Table, ConfigError> {
    let mut table: toml::Table = text.parse().map_err(|source| ConfigError::Parse {
        origin: origin.to_owned(),
        source,
    })?;
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    Ok(table)
}

/// How errors name a text that overrides were applied to.
#[must_use]
pub fn origin_with(origin: &str, overrides: &[String]) -> String {
    if overrides.is_empty() {
        origin.to_owned()
    } else {
        format!("{origin} with overrides")
    }
}

impl Config {
    /// Reads a config file and applies overrides. `map_file` is made relative to the
    /// file's directory.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text, overrides, &path.display().to_string())?;
        config.rebase_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Parses TOML text and applies overrides; `origin` names the text in errors.
    pub fn from_toml(text: &str, overrides: &[String], origin: &str) -> Result<Self, ConfigError> {
        let table = parse_table(text, overrides, origin)?;
        Self::from_table(table, &origin_with(origin, overrides))
    }

    /// The config of a parsed TOML table (overrides already applied); `origin` names it
    /// in errors. A `[train]` section belongs to the trainer (`sed-train`) and is ignored.
    pub fn from_table(mut table: toml::Table, origin: &str) -> Result<Self, ConfigError> {
        table.remove("train");
        Self::deserialize(table).map_err(|source| ConfigError::Parse {
            origin: origin.to_owned(),
            source,
        })
    }

    /// Makes a relative `env.map_file` relative to `dir` (the config file's directory).
    pub fn rebase_paths(&mut self, dir: &Path) {
        if let Some(file) = &self.env.map_file
            && file.is_relative()
        {
            self.env.map_file = Some(dir.join(file));
        }
    }

    /// The config as TOML, with the map inlined so the file stands alone.
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always serialises")
    }

    /// Validates the config and derives everything the engines need: the map, the env's
    /// and the tax's rules, the players' types, the vote and the game the engines run.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let e = &self.env;
        let t = &self.tax;
        let (map_text, map) = self.load_map()?;
        self.check_env(&map)?;
        let (brackets, max_rate_change_tenths) = self.tax_rules()?;
        let types = self.player_types()?;
        self.check_exact_range()?;
        let social_choice = self.social_choice()?;
        let c = &self.curriculum;
        let curriculum = Curriculum {
            mode: if t.enabled {
                c.mode
            } else {
                CurriculumMode::None
            },
            phase1_episodes: c.phase1_episodes,
            anneal_episodes: c.anneal_episodes,
            multiplier_episodes: c.multiplier_episodes,
        };
        let game = Game {
            players: e.players,
            episode_len: e.episode_len,
            tax_period: t.period,
            round_periods: self.vote.round_periods,
            welfare_of: self.vote.welfare_of,
            regrowth_thresholds: e
                .regrowth_probabilities
                .iter()
                .map(|&p| probability_threshold(p))
                .collect(),
            brackets,
            reward_form: self.reward.form,
            reward_scale: self.reward.form.scale(e.players),
            types,
            max_rate_change_tenths,
            reset_rates_each_episode: t.reset_rates_each_episode,
            run_key: crate::rng::run_key(self.seed),
            map,
        };
        let vote = social_choice.choose(&game.types.selfishness, None);
        if !game.welfare_is_exact(&vote) {
            return Err(invalid(
                "vote.welfare_of",
                format!(
                    "the voted objective {vote} over {:?} with {} players and tax periods of {} steps leaves the exact 64-bit range of the principal's reward; use raw_apples, fewer players or shorter periods",
                    game.welfare_of, game.players, game.tax_period
                ),
            ));
        }
        let mut config = self.clone();
        config.env.map = Some(map_text);
        config.env.map_file = None;
        Ok(Resolved {
            config,
            num_envs: e.num_envs,
            game,
            social_choice,
            curriculum,
            tax_enabled: t.enabled,
        })
    }

    /// The map: from `env.map`, `env.map_file` or the default, parsed with the regrowth
    /// radius. Returns its text (written into the resolved config) and the parsed map.
    fn load_map(&self) -> Result<(String, Map), ConfigError> {
        let e = &self.env;
        let map_text = match (&e.map, &e.map_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "env.map",
                    "give either `map` or `map_file`, not both",
                ));
            }
            (Some(text), None) => text.clone(),
            (None, Some(path)) => {
                std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?
            }
            (None, None) => COMMONS_HARVEST_OPEN.to_owned(),
        };
        if !(1..=5).contains(&e.regrowth_radius) {
            return Err(invalid(
                "env.regrowth_radius",
                format!("{} is outside 1..=5", e.regrowth_radius),
            ));
        }
        let map = Map::parse(&map_text, e.regrowth_radius)
            .map_err(|err| invalid("env.map", err.to_string()))?;
        let [down, across] = e.map_tiles;
        if [down, across] == [1, 1] {
            return Ok((map_text, map));
        }
        if down == 0 || across == 0 {
            return Err(invalid(
                "env.map_tiles",
                format!("[{down}, {across}]: each count must be at least 1"),
            ));
        }
        let (rows, cols) = map.tiled_size(down, across);
        if rows > 255 || cols > 255 {
            let (one_rows, one_cols) = map.tiled_size(1, 1);
            let [max_down, max_across] = map.max_tiles();
            return Err(invalid(
                "env.map_tiles",
                format!(
                    "[{down}, {across}] makes a {rows}x{cols} map from the {one_rows}x{one_cols} one; at most 255 x 255 is supported, so at most [{max_down}, {max_across}]"
                ),
            ));
        }
        let tiled = Map::parse(&map.tiled_text(down, across), e.regrowth_radius)
            .map_err(|err| invalid("env.map_tiles", err.to_string()))?;
        Ok((map_text, tiled))
    }

    /// The env's sizes against the map, and the regrowth probabilities.
    fn check_env(&self, map: &Map) -> Result<(), ConfigError> {
        let e = &self.env;
        if e.num_envs == 0 {
            return Err(invalid("env.num_envs", "must be at least 1"));
        }
        if !(1..=MAX_PLAYERS).contains(&e.players) {
            return Err(invalid(
                "env.players",
                format!("{} is outside 1..={MAX_PLAYERS}", e.players),
            ));
        }
        if e.players as usize > map.spawn_capacity() {
            return Err(invalid(
                "env.players",
                format!(
                    "{} players but the map has only {} spawn cells ('P' and 'Q')",
                    e.players,
                    map.spawn_capacity()
                ),
            ));
        }
        if e.regrowth_probabilities.is_empty() {
            return Err(invalid(
                "env.regrowth_probabilities",
                "needs at least one entry",
            ));
        }
        for (i, &p) in e.regrowth_probabilities.iter().enumerate() {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    &format!("env.regrowth_probabilities[{i}]"),
                    format!("{p} is outside [0, 1]"),
                ));
            }
        }
        Ok(())
    }

    /// The exact integer ranges (see `crate::reward`): one player's post-tax income over an
    /// episode or a voting round must fit in `i32`. The `i64` numerators of the players' and
    /// the principal's rewards then fit too, up to [`MAX_PLAYERS`] (tested below).
    fn check_exact_range(&self) -> Result<(), ConfigError> {
        let (e, t) = (&self.env, &self.tax);
        let round = u64::from(self.vote.round_periods) * u64::from(t.period);
        let (field, what, steps) = if round > u64::from(e.episode_len) {
            ("vote.round_periods", "a voting round", round)
        } else {
            ("env.episode_len", "an episode", u64::from(e.episode_len))
        };
        let bound = crate::reward::post_tax_bound(e.players, steps);
        if bound > i32::MAX as i128 {
            return Err(invalid(
                field,
                format!(
                    "with {} players, post-tax income over {what} of {steps} steps can reach {bound} apple units, beyond the exact 32-bit range; at most {} steps with {} players",
                    e.players,
                    longest_exact_span(e.players),
                    e.players
                ),
            ));
        }
        Ok(())
    }

    /// The tax period against the episode, the brackets and the divergence bound.
    fn tax_rules(&self) -> Result<(Vec<Bracket>, Option<u32>), ConfigError> {
        let e = &self.env;
        let t = &self.tax;
        if t.period == 0 {
            return Err(invalid("tax.period", "must be at least 1"));
        }
        if e.episode_len == 0 || !e.episode_len.is_multiple_of(t.period) {
            return Err(invalid(
                "env.episode_len",
                format!(
                    "{} must be a positive multiple of tax.period ({})",
                    e.episode_len, t.period
                ),
            ));
        }
        if t.brackets.is_empty() || t.brackets.len() > 8 {
            return Err(invalid("tax.brackets", "needs 1..=8 brackets"));
        }
        let mut brackets = Vec::with_capacity(t.brackets.len());
        for (i, &[lo, hi]) in t.brackets.iter().enumerate() {
            let field = format!("tax.brackets[{i}]");
            if lo == 0 || lo > hi {
                return Err(invalid(
                    &field,
                    format!("[{lo}, {hi}] must satisfy 1 ≤ lo ≤ hi"),
                ));
            }
            if let Some(prev) = brackets.last().map(|b: &Bracket| b.hi)
                && lo <= prev
            {
                return Err(invalid(
                    &field,
                    format!("brackets must increase: lo {lo} is not above the previous hi {prev}"),
                ));
            }
            brackets.push(Bracket { lo, hi });
        }
        let max_rate_change_tenths = match t.max_rate_change {
            None => None,
            Some(d) => Some(crate::principal::rate_tenths(d).ok_or_else(|| {
                invalid(
                    "tax.max_rate_change",
                    format!("{d} must be a multiple of 0.1 in [0, 1]"),
                )
            })?),
        };
        Ok((brackets, max_rate_change_tenths))
    }

    /// The players' types: given in the config, or drawn once from the seed.
    fn player_types(&self) -> Result<PlayerTypes, ConfigError> {
        let e = &self.env;
        let n = e.players as usize;
        let types_from = |field: &str,
                          given: &Option<Vec<f64>>,
                          drawn: Vec<u32>|
         -> Result<Vec<u32>, ConfigError> {
            let Some(values) = given else {
                return Ok(drawn);
            };
            if values.len() != n {
                return Err(invalid(
                    field,
                    format!("has {} values for {n} players", values.len()),
                ));
            }
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if (0.0..=1.0).contains(&v) {
                        Ok(PlayerTypes::quantise(v))
                    } else {
                        Err(invalid(
                            &format!("{field}[{i}]"),
                            format!("{v} is outside [0, 1]"),
                        ))
                    }
                })
                .collect()
        };
        let drawn = PlayerTypes::draw(self.seed, n);
        let types = PlayerTypes {
            selfishness: types_from(
                "reward.selfishness",
                &self.reward.selfishness,
                drawn.selfishness,
            )?,
            trust: types_from("reward.trust", &self.reward.trust, drawn.trust)?,
        };
        Ok(types)
    }

    /// The social choice function of the vote, with its parameters checked.
    fn social_choice(&self) -> Result<Box<dyn SocialChoice>, ConfigError> {
        if self.vote.round_periods == 0 {
            return Err(invalid("vote.round_periods", "must be at least 1"));
        }
        let check_welfare = |field: &str, w: &WelfareSpec| match *w {
            WelfareSpec::Interpolated { eta } if !(0.0..=1.0).contains(&eta) => {
                Err(invalid(field, format!("eta {eta} is outside [0, 1]")))
            }
            WelfareSpec::PMean { p } if !p.is_finite() => Err(invalid(field, "p must be finite")),
            _ => Ok(()),
        };
        let social_choice: Box<dyn SocialChoice> = match self.vote.social_choice {
            SocialChoiceSpec::Mean => Box::new(MeanVote),
            SocialChoiceSpec::Median => Box::new(MedianVote),
            SocialChoiceSpec::Majority {
                first,
                second,
                threshold,
            } => {
                check_welfare("vote.social_choice.first", &first)?;
                check_welfare("vote.social_choice.second", &second)?;
                if !(0.0..=1.0).contains(&threshold) {
                    return Err(invalid(
                        "vote.social_choice.threshold",
                        format!("{threshold} is outside [0, 1]"),
                    ));
                }
                Box::new(MajorityVote {
                    first: first.welfare(),
                    second: second.welfare(),
                    threshold: PlayerTypes::quantise(threshold),
                })
            }
            SocialChoiceSpec::Fixed { welfare } => {
                check_welfare("vote.social_choice.welfare", &welfare)?;
                Box::new(FixedChoice(welfare))
            }
        };
        Ok(social_choice)
    }
}

#[derive(Debug)]
struct FixedChoice(WelfareSpec);

impl SocialChoice for FixedChoice {
    fn choose(&self, _reports: &[u32], _principal_type: Option<u32>) -> crate::welfare::Welfare {
        self.0.welfare()
    }
}

/// The static description of one game, shared by every env of a batch and by every
/// engine (CPU and GPU).
#[derive(Clone, Debug, PartialEq)]
pub struct Game {
    /// The map and its tables.
    pub map: Map,
    /// n.
    pub players: u32,
    /// Steps per episode.
    pub episode_len: u32,
    /// Steps per tax period.
    pub tax_period: u32,
    /// Tax periods per voting round.
    pub round_periods: u32,
    /// What the welfare objective is computed over.
    pub welfare_of: WelfareOf,
    /// `draw < regrowth_thresholds[min(k, len − 1)]` regrows a cell with k live neighbours.
    pub regrowth_thresholds: Vec<u32>,
    /// The tax brackets.
    pub brackets: Vec<Bracket>,
    /// The reward form.
    pub reward_form: RewardForm,
    /// `1 / reward denominator`.
    pub reward_scale: f32,
    /// The players' fixed types.
    pub types: PlayerTypes,
    /// The L∞ bound on rate changes, in tenths.
    pub max_rate_change_tenths: Option<u32>,
    /// Reset rates to 0 at each episode start.
    pub reset_rates_each_episode: bool,
    /// [`crate::rng::run_key`] of the seed.
    pub run_key: u32,
}

impl Game {
    /// Units per apple of the quantity the welfare objective is computed over: 1 for raw
    /// apples, [`crate::reward::apple_unit`] for post-tax income.
    #[must_use]
    pub fn welfare_unit(&self) -> i64 {
        match self.welfare_of {
            WelfareOf::RawApples => 1,
            WelfareOf::PostTaxIncome => crate::reward::apple_unit(self.players) as i64,
        }
    }

    /// Whether the principal's reward under `welfare` is computed exactly in 64 bits
    /// (always true for Nash and p-means, which are evaluated in `f64` on the CPU).
    #[must_use]
    pub fn welfare_is_exact(&self, welfare: &crate::welfare::Welfare) -> bool {
        welfare.linear().is_none_or(|eta| {
            crate::principal::exact_welfare_bound(
                eta.den,
                self.players,
                self.tax_period,
                self.welfare_unit(),
            ) <= i64::MAX as i128
        })
    }
}

/// A validated config with everything derived from it.
#[derive(Debug)]
pub struct Resolved {
    /// The config as it was resolved (map inlined): write it beside a run's outputs.
    pub config: Config,
    /// Envs per batch.
    pub num_envs: u32,
    /// The game.
    pub game: Game,
    /// The social choice function.
    pub social_choice: Box<dyn SocialChoice>,
    /// The tax curriculum.
    pub curriculum: Curriculum,
    /// `tax.enabled`.
    pub tax_enabled: bool,
}

impl Resolved {
    /// The tax parameters after `episode` completed episodes.
    #[must_use]
    pub fn schedule(&self, episode: u64) -> TaxSchedule {
        if self.tax_enabled {
            self.curriculum.at(episode)
        } else {
            TaxSchedule::OFF
        }
    }

    /// The objective the players' vote selects (types are fixed per run, so every round
    /// votes the same way unless the social choice function looks at more).
    #[must_use]
    pub fn vote(&self) -> crate::welfare::Welfare {
        self.social_choice
            .choose(&self.game.types.selfishness, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::{apple_unit, post_tax_bound};

    /// The 32-bit limit on one player's post-tax income is the only range limit a config
    /// can meet: under it every 64-bit numerator fits, for every player count up to
    /// [`MAX_PLAYERS`] and the longest tax period; and it allows the paper's 1000-step
    /// episode at every player count.
    #[test]
    fn the_income_limit_implies_the_64_bit_numerators_and_allows_the_paper_episode() {
        for players in [1, 2, 7, 64, 1024, MAX_PLAYERS] {
            let span = longest_exact_span(players);
            assert!(post_tax_bound(players, span) <= i32::MAX as i128);
            assert!(post_tax_bound(players, span + 1) > i32::MAX as i128);
            assert!(span >= 1000, "{players} players: {span} steps");
            let period = span as u32;
            for form in [RewardForm::Paper, RewardForm::ReleasedCode] {
                let bound = form.numerator_bound(players, period);
                assert!(
                    bound <= i64::MAX as i128,
                    "{form:?}, {players} players: {bound}"
                );
            }
            // The finest weights: the mean vote's 1/(256 n) and a configured η's 1/65536.
            let den = (256 * players).max(65_536);
            for unit in [1, apple_unit(players) as i64] {
                let bound = crate::principal::exact_welfare_bound(den, players, period, unit);
                assert!(bound <= i64::MAX as i128, "{players} players: {bound}");
            }
        }
    }
}
