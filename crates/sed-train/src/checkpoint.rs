//! Checkpoints of the full training state, written atomically.
//!
//! A checkpoint is a directory `checkpoints/iter_NNNNNNNN/` of the run holding both
//! networks (`players.bpk`, `principal.bpk`, Burn's burnpack), both optimizers
//! (`players.adam`, `principal.adam`), the env and the trainer's accumulators (`env.bin`)
//! and the trainer's counters (`trainer.json`: iteration, tick, the shuffling generator's
//! position, the version and a digest of the config). It is written under a temporary name
//! and renamed into place, then `checkpoints/latest` names it (itself written by rename),
//! so a crash leaves the previous checkpoint intact.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sed_core::engine::{Outputs, State};
use serde::{Deserialize, Serialize};

/// Writes `contents` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}tmp",
        path.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The trainer's counters in a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// The `sed-train` version that wrote it.
    pub version: String,
    /// The run's resolved config (TOML, map inlined).
    pub config: String,
    /// Iterations completed.
    pub iteration: u64,
    /// Steps taken by every env.
    pub tick: u64,
    /// Seed of the host generator that shuffles minibatches.
    pub shuffle_seed: u64,
    /// Its position (ChaCha word position).
    pub shuffle_word_pos: u128,
    /// Devices the run's envs are split over (`--gpus`); each has an `env.bin` of its own
    /// (`env.bin` for the first, `env.K.bin` for rank K).
    #[serde(default = "one")]
    pub devices: usize,
    /// The positions of the shuffling generators of ranks 1, 2, ... (seeded with
    /// `shuffle_seed + rank`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_word_pos: Vec<u128>,
    /// Seconds of training before this checkpoint (for throughput after resume).
    pub elapsed_seconds: f64,
}

fn one() -> usize {
    1
}

/// The file of rank `rank`'s env snapshot in a checkpoint.
#[must_use]
pub fn env_file(rank: usize) -> String {
    if rank == 0 {
        "env.bin".into()
    } else {
        format!("env.{rank}.bin")
    }
}

/// The env and the trainer's device accumulators, as host arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSnapshot {
    /// The env's state.
    pub state: State,
    /// The env's outputs.
    pub outputs: Outputs,
    /// Each player's return in the current episode so far.
    pub episode_return: Vec<f32>,
    /// The principal's return in the current voting round so far, per env.
    pub round_return: Vec<f32>,
    /// With frame stacking: the previous observations of the episode, `[K − 1, rows,
    /// words]` (empty without).
    pub history: Vec<i32>,
}

struct Writer(Vec<u8>);

impl Writer {
    fn put<T: bytemuck::Pod>(&mut self, name: &str, data: &[T]) {
        self.0.extend_from_slice(&(name.len() as u32).to_le_bytes());
        self.0.extend_from_slice(name.as_bytes());
        self.0
            .extend_from_slice(&(size_of_val(data) as u64).to_le_bytes());
        self.0.extend_from_slice(bytemuck::cast_slice(data));
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.0.len() < n {
            bail!("env.bin is truncated");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn get<T: bytemuck::Pod>(&mut self, name: &str) -> Result<Vec<T>> {
        let len = u32::from_le_bytes(self.take(4)?.try_into()?) as usize;
        let found = String::from_utf8_lossy(self.take(len)?).into_owned();
        if found != name {
            bail!("env.bin holds `{found}` where `{name}` was expected");
        }
        let bytes = u64::from_le_bytes(self.take(8)?.try_into()?) as usize;
        Ok(bytemuck::pod_collect_to_vec(self.take(bytes)?))
    }
}

impl EnvSnapshot {
    /// The snapshot as bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(b"SEDENV02".to_vec());
        let (s, o) = (&self.state, &self.outputs);
        w.put("tick", &s.tick);
        w.put("t", &s.t);
        w.put("pose", &s.pose);
        w.put("apples", &s.apples);
        w.put("apples_prev", &s.apples_prev);
        w.put("period_income", &s.period_income);
        w.put("period_net", &s.period_net);
        w.put("round_apples", &s.round_apples);
        w.put("round_net", &s.round_net);
        w.put("rates", &s.rates);
        w.put("stats", &s.stats);
        w.put("obs", &o.obs);
        w.put("final_obs", &o.final_obs);
        w.put("principal_map", &o.principal_map);
        w.put("principal_features", &o.principal_features);
        w.put("reward", &o.reward);
        w.put("principal_reward", &o.principal_reward);
        w.put("terminated", &o.terminated);
        w.put("truncated", &o.truncated);
        w.put("flags", &o.flags);
        w.put("episode_return", &self.episode_return);
        w.put("round_return", &self.round_return);
        w.put("history", &self.history);
        w.0
    }

    /// Reads a snapshot written by [`EnvSnapshot::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        if r.take(8)? != b"SEDENV02" {
            bail!("env.bin is not an env snapshot of this version");
        }
        let state = State {
            tick: r.get("tick")?,
            t: r.get("t")?,
            pose: r.get("pose")?,
            apples: r.get("apples")?,
            apples_prev: r.get("apples_prev")?,
            period_income: r.get("period_income")?,
            period_net: r.get("period_net")?,
            round_apples: r.get("round_apples")?,
            round_net: r.get("round_net")?,
            rates: r.get("rates")?,
            stats: r.get("stats")?,
        };
        let outputs = Outputs {
            obs: r.get("obs")?,
            final_obs: r.get("final_obs")?,
            principal_map: r.get("principal_map")?,
            principal_features: r.get("principal_features")?,
            reward: r.get("reward")?,
            principal_reward: r.get("principal_reward")?,
            terminated: r.get("terminated")?,
            truncated: r.get("truncated")?,
            flags: r.get("flags")?,
        };
        Ok(Self {
            state,
            outputs,
            episode_return: r.get("episode_return")?,
            round_return: r.get("round_return")?,
            // Snapshots written before frame stacking end here.
            history: if r.0.is_empty() {
                Vec::new()
            } else {
                r.get("history")?
            },
        })
    }
}

/// The checkpoint directory of a run.
#[must_use]
pub fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// The directory name of the checkpoint after `iteration` iterations.
#[must_use]
pub fn name(iteration: u64) -> String {
    format!("iter_{iteration:08}")
}

/// The latest complete checkpoint of a run, if any.
pub fn latest(run: &Path) -> Result<Option<PathBuf>> {
    let pointer = checkpoints_dir(run).join("latest");
    match std::fs::read_to_string(&pointer) {
        Ok(name) => {
            let dir = checkpoints_dir(run).join(name.trim());
            if !dir.join("trainer.json").is_file() {
                bail!(
                    "{} names {}, which is not a complete checkpoint",
                    pointer.display(),
                    dir.display()
                );
            }
            Ok(Some(dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", pointer.display())),
    }
}

/// Makes the temporary directory a checkpoint is written into (removing a stale one).
pub fn begin(run: &Path, iteration: u64) -> Result<PathBuf> {
    let tmp = checkpoints_dir(run).join(format!("{}.tmp", name(iteration)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    Ok(tmp)
}

/// Renames a finished temporary directory into place, points `latest` at it and deletes
/// all but the newest `keep` checkpoints.
pub fn commit(run: &Path, tmp: &Path, iteration: u64, keep: usize) -> Result<PathBuf> {
    let dir = checkpoints_dir(run);
    let done = dir.join(name(iteration));
    if done.exists() {
        std::fs::remove_dir_all(&done).with_context(|| format!("removing {}", done.display()))?;
    }
    std::fs::rename(tmp, &done).with_context(|| format!("renaming to {}", done.display()))?;
    write_atomic(&dir.join("latest"), name(iteration).as_bytes())?;
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("iter_") && !n.ends_with(".tmp"))
        })
        .collect();
    all.sort();
    let excess = all.len().saturating_sub(keep);
    for old in &all[..excess] {
        std::fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(done)
}
