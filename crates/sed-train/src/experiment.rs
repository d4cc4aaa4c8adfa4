//! Experiments: a base config, seeds, and arms that differ by `--set` overrides
//! (`configs/experiments/*.toml`). `sed-train experiment` trains every arm on every seed
//! into `OUT/<experiment>/<arm>/seed-<seed>` and draws the figures with `plot`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::config::RunConfig;
use crate::session::InputError;

/// An experiment file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The question the experiment asks, for the figures' readers.
    pub question: String,
    /// The base config, relative to the experiment file.
    pub config: PathBuf,
    /// Seeds every arm runs with (at least one).
    pub seeds: Vec<u64>,
    /// Overrides for every arm (`KEY=VALUE`, as `--set`), e.g. the budget.
    #[serde(default)]
    pub set: Vec<String>,
    /// The arms, each a name and its own overrides (applied after `set`).
    pub arm: Vec<Arm>,
}

/// One arm of an experiment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// The arm's name (its directory; letters, digits, `-` and `_`).
    pub name: String,
    /// Its overrides.
    #[serde(default)]
    pub set: Vec<String>,
}

/// One training run of an experiment, validated.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The arm's name.
    pub arm: String,
    /// The seed.
    pub seed: u64,
    /// The base config file.
    pub config: PathBuf,
    /// All overrides, in order: the experiment's, the arm's, the command line's, the seed.
    pub overrides: Vec<String>,
    /// The run directory.
    pub dir: PathBuf,
}

impl Experiment {
    /// Reads an experiment file; the base config becomes relative to the current directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut e: Self = toml::from_str(&text)
            .map_err(|err| InputError(format!("{}: {err}", path.display())))?;
        e.config = path.parent().unwrap_or(Path::new(".")).join(&e.config);
        let bad = |m: String| Err(InputError(format!("{}: {m}", path.display())).into());
        if e.seeds.is_empty() {
            return bad("`seeds` needs at least one seed".into());
        }
        if e.arm.is_empty() {
            return bad("needs at least one [[arm]]".into());
        }
        for (i, a) in e.arm.iter().enumerate() {
            let ok = !a.name.is_empty()
                && a.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return bad(format!(
                    "arm[{i}].name {:?}: use letters, digits, '-' and '_'",
                    a.name
                ));
            }
            if e.arm[..i].iter().any(|b| b.name == a.name) {
                return bad(format!("arm[{i}].name {:?} appears twice", a.name));
            }
        }
        let mut seeds = e.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != e.seeds.len() {
            return bad("`seeds` lists a seed twice".into());
        }
        Ok(e)
    }

    /// Every run under `out`, arm by arm, seed by seed, each config resolved and validated
    /// (so a bad key or value is reported before anything trains).
    pub fn entries(&self, out: &Path, extra: &[String]) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for arm in &self.arm {
            for &seed in &self.seeds {
                let mut overrides = self.set.clone();
                overrides.extend_from_slice(&arm.set);
                overrides.extend_from_slice(extra);
                overrides.push(format!("seed={seed}"));
                RunConfig::load(&self.config, &overrides)
                    .with_context(|| format!("arm {:?}, seed {seed}", arm.name))?;
                entries.push(Entry {
                    arm: arm.name.clone(),
                    seed,
                    config: self.config.clone(),
                    overrides,
                    dir: out.join(&arm.name).join(format!("seed-{seed}")),
                });
            }
        }
        Ok(entries)
    }
}
