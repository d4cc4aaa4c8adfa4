//! Experiments: a base config, seeds, and arms that differ by `--set` overrides
//! (`configs/experiments/*.toml`). `sed-train experiment` trains every arm on every seed
//! into `OUT/<experiment>/<arm>/seed-<seed>` and draws the figures with `plot`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::checkpoint::write_atomic;
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
    /// A grid over config keys: every arm runs every combination of these values (after
    /// the arm's overrides), in `<arm>/<key=value,...>/seed-<seed>`. E.g.
    /// `grid = { "tax.period" = [25, 50], "train.players.learning_rate" = [1e-4, 2.5e-4] }`.
    #[serde(default)]
    pub grid: std::collections::BTreeMap<String, Vec<toml::Value>>,
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

/// One training run of an experiment, validated: a line of a sweep's `manifest.jsonl`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
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
            for combo in self.combinations()? {
                let mut arm_dir = out.join(&arm.name);
                if !combo.is_empty() {
                    arm_dir = arm_dir.join(combo.join(","));
                }
                for &seed in &self.seeds {
                    let mut overrides = self.set.clone();
                    overrides.extend_from_slice(&arm.set);
                    overrides.extend_from_slice(&combo);
                    overrides.extend_from_slice(extra);
                    overrides.push(format!("seed={seed}"));
                    RunConfig::load(&self.config, &overrides).with_context(|| {
                        format!("arm {:?} {}, seed {seed}", arm.name, combo.join(","))
                    })?;
                    entries.push(Entry {
                        arm: arm.name.clone(),
                        seed,
                        config: self.config.clone(),
                        overrides,
                        dir: arm_dir.join(format!("seed-{seed}")),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// Every combination of the grid's values as `key=value` overrides, keys in order
    /// (one empty combination without a grid).
    fn combinations(&self) -> Result<Vec<Vec<String>>> {
        let mut combos = vec![Vec::new()];
        for (key, values) in &self.grid {
            if values.is_empty() {
                return Err(InputError(format!("grid.{key:?} lists no values")).into());
            }
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push(format!("{key}={v}"));
                        c
                    })
                })
                .collect();
        }
        Ok(combos)
    }
}

/// An experiment file read and resolved into runs.
pub struct Plan {
    /// The file's stem.
    pub name: String,
    /// The file.
    pub experiment: Experiment,
    /// Its directory, `out/<name>`.
    pub dir: PathBuf,
    /// Its runs.
    pub entries: Vec<Entry>,
}

/// Experiment files with their runs under `out/<file stem>/`, every entry's config
/// resolved (`extra` overrides last) and no two entries writing one directory, in the
/// files' order.
pub fn plan(files: &[PathBuf], out: &Path, extra: &[String]) -> Result<Vec<Plan>> {
    let mut plans = Vec::new();
    for file in files {
        let experiment = Experiment::load(file)?;
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into());
        let dir = out.join(&name);
        let entries = experiment.entries(&dir, extra)?;
        plans.push(Plan {
            name,
            experiment,
            dir,
            entries,
        });
    }
    let all: Vec<Entry> = plans.iter().flat_map(|p| p.entries.clone()).collect();
    check_distinct(&all)?;
    Ok(plans)
}

/// A sweep's manifest: one JSON line per entry, in index order.
#[must_use]
pub fn manifest(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| serde_json::to_string(e).expect("an entry serialises") + "\n")
        .collect()
}

/// Entry `index` of the manifest at `path`, with a clear error for a bad index.
pub fn entry(path: &Path, index: usize) -> Result<Entry> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(line) = lines.get(index) else {
        return Err(InputError(format!(
            "--index {index}: the manifest {} has {} entries (0..={})",
            path.display(),
            lines.len(),
            lines.len().saturating_sub(1)
        ))
        .into());
    };
    serde_json::from_str(line).with_context(|| format!("{} line {}", path.display(), index + 1))
}

/// Refuses entries that would write one directory twice.
fn check_distinct(entries: &[Entry]) -> Result<()> {
    for (i, e) in entries.iter().enumerate() {
        if let Some(j) = entries[..i].iter().position(|o| o.dir == e.dir) {
            return Err(InputError(format!(
                "entries {j} and {i} both write {}: give the experiment files different names",
                e.dir.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Bash lines that set `where` to the arguments naming this task's `gpus` GPUs. Vulkan
/// lists every GPU of the node whatever `CUDA_VISIBLE_DEVICES` says, so the GPUs the
/// scheduler gave the task (`CUDA_VISIBLE_DEVICES`, else the first `gpus`) are named by PCI
/// bus id, which `nvidia-smi` reports; without `nvidia-smi`, the first adapters.
fn gpu_selection(gpus: usize, indent: &str) -> String {
    let fallback = if gpus == 1 {
        "--device gpu".to_owned()
    } else {
        format!(
            "--gpus {}",
            (0..gpus)
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let lines = [
        "# Vulkan sees every GPU of the node, whatever CUDA_VISIBLE_DEVICES says: name this",
        "# task's GPUs by PCI bus id.",
        "gpus=\"\"",
        "if command -v nvidia-smi >/dev/null; then",
        "    gpus=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader ${CUDA_VISIBLE_DEVICES:+-i \"$CUDA_VISIBLE_DEVICES\"} | head -n @GPUS@ | paste -sd, -) || gpus=\"\"",
        "fi",
        "if [ -n \"$gpus\" ]; then where=(--gpus \"$gpus\"); else where=(@FALLBACK@); fi",
    ];
    lines
        .iter()
        .map(|l| {
            format!(
                "{indent}{}\n",
                l.replace("@GPUS@", &gpus.to_string())
                    .replace("@FALLBACK@", &fallback)
            )
        })
        .collect()
}

/// Writes `manifest.jsonl`, a Slurm array script (`sweep.slurm`: `gpus` GPUs a task, at
/// most `workers` tasks at once, the index from `SLURM_ARRAY_TASK_ID`) and a SkyPilot task
/// (`sweep.sky.yaml`: a managed spot job per index, the index in `SED_INDEX`) into `dir`;
/// returns their paths.
pub fn write_sweep(
    dir: &Path,
    entries: &[Entry],
    workers: usize,
    gpus: usize,
) -> Result<[PathBuf; 3]> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let manifest_path = dir.join("manifest.jsonl");
    write_atomic(&manifest_path, manifest(entries).as_bytes())?;
    let n = entries.len();
    let m = manifest_path.display();
    let each = if gpus == 1 {
        "one GPU each".to_owned()
    } else {
        format!("{gpus} GPUs each (one run on all of them)")
    };
    let slurm = format!(
        r#"#!/usr/bin/env bash
# A Slurm array over the sweep's {n} entries, {each}, at most {workers} at once.
# Submit from the repository root after `cargo build -p sed-train --release`:
#   sbatch {d}/sweep.slurm
# A finished entry is skipped when resubmitted; a preempted one resumes from its last
# checkpoint.
#SBATCH --job-name=sed-sweep
#SBATCH --array=0-{last}%{workers}
#SBATCH --gpus={gpus}
#SBATCH --output={d}/slurm-%A_%a.out
set -euo pipefail
{select}exec "${{SED_TRAIN:-target/release/sed-train}}" --manifest {m} --index-var SLURM_ARRAY_TASK_ID "${{where[@]}}"
"#,
        d = dir.display(),
        last = n.saturating_sub(1),
        select = gpu_selection(gpus, ""),
    );
    let slurm_path = dir.join("sweep.slurm");
    write_atomic(&slurm_path, slurm.as_bytes())?;
    let sky = format!(
        r#"# A SkyPilot managed job for one entry of the sweep ({n} entries, indices 0..={last}, {each}):
#   for i in $(seq 0 {last}); do sky jobs launch -y -n sed-$i --env SED_INDEX=$i {d}/sweep.sky.yaml; done
# Spot instances; a preempted job is relaunched and resumes from its last checkpoint, so
# the run directories ({d}) must be on storage that outlives the instance (a bucket
# mounted at the same path).
name: sed-sweep
resources:
  accelerators: {{H100:{gpus}, A100:{gpus}, L4:{gpus}}}
  use_spot: true
  job_recovery: FAILOVER
envs:
  SED_INDEX: 0
workdir: .
setup: |
  sudo apt-get update -qq && sudo apt-get install -y -qq libvulkan1 build-essential
  command -v cargo || (curl https://sh.rustup.rs -sSf | sh -s -- -y)
  . "$HOME/.cargo/env"
  cargo build -p sed-train --release
run: |
  . "$HOME/.cargo/env"
{select}  target/release/sed-train --manifest {m} --index-var SED_INDEX "${{where[@]}}"
"#,
        d = dir.display(),
        last = n.saturating_sub(1),
        select = gpu_selection(gpus, "  "),
    );
    let sky_path = dir.join("sweep.sky.yaml");
    write_atomic(&sky_path, sky.as_bytes())?;
    Ok([manifest_path, slurm_path, sky_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_multiplies_every_arm_by_every_combination() {
        let dir = std::env::temp_dir().join(format!("sed-grid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("grid.toml");
        let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml");
        std::fs::write(
            &file,
            format!(
                "question = \"q\"\nconfig = {:?}\nseeds = [1, 2]\n\
                 grid = {{ \"tax.period\" = [10, 20], \"reward.form\" = [\"paper\", \"released_code\"] }}\n\
                 [[arm]]\nname = \"a\"\n",
                smoke.display().to_string()
            ),
        )
        .unwrap();
        let e = Experiment::load(&file).unwrap();
        let entries = e.entries(Path::new("out"), &[]).unwrap();
        assert_eq!(entries.len(), 2 * 2 * 2);
        let first = &entries[0];
        assert_eq!(
            first.dir,
            Path::new("out/a/reward.form=\"paper\",tax.period=10/seed-1")
        );
        assert_eq!(
            first.overrides,
            ["reward.form=\"paper\"", "tax.period=10", "seed=1"]
        );
        assert_eq!(
            entries[7].dir,
            Path::new("out/a/reward.form=\"released_code\",tax.period=20/seed-2")
        );
        check_distinct(&entries).unwrap();
        // A value the config refuses is reported before anything runs, naming the entry.
        std::fs::write(
            &file,
            format!(
                "question = \"q\"\nconfig = {:?}\nseeds = [1]\ngrid = {{ \"tax.period\" = [0] }}\n\
                 [[arm]]\nname = \"a\"\n",
                smoke.display().to_string()
            ),
        )
        .unwrap();
        let err = Experiment::load(&file)
            .unwrap()
            .entries(Path::new("out"), &[])
            .unwrap_err();
        assert!(format!("{err:#}").contains("tax.period"), "{err:#}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
