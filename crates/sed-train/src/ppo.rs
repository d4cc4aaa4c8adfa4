//! PPO's pieces (SPEC §5), term by term as CleanRL's `ppo.py` computes them: GAE, the
//! clipped surrogate, the clipped value loss, the entropy bonus and the diagnostics, for
//! policies with one or more categorical heads (a player: 1 head of 7 actions; the
//! principal: one head of 12 choices per bracket, whose log-probabilities and entropies add).

use burn::prelude::{Int, Tensor};
use burn::tensor::activation::{log_softmax, softmax};

use crate::config::PpoConfig;

/// Log-ratios are clamped to ±this before `exp`, so a stale sample cannot overflow.
pub const MAX_LOG_RATIO: f32 = 20.0;

/// Generalised advantage estimation over a rollout `[T, B]` (B samples per step):
///
/// `δₜ = rₜ + γ·bootₜ·V'ₜ − Vₜ`, `Aₜ = δₜ + γλ·traceₜ·Aₜ₊₁`,
///
/// where `V'ₜ` is the value of the state after step t (`next_values`: the next step's
/// value, the final observation's value where an episode was cut, the bootstrap value at
/// the rollout's end), `bootₜ` is 0 where the state after t is terminal, and `traceₜ` is 0
/// where step t ends an episode or a round (the next step belongs to another one). Steps
/// share their boundaries across the batch (envs run in lockstep), so `boot` and `trace`
/// are host values per step. Returns the advantages `[T, B]`.
#[must_use]
pub fn gae(
    rewards: Tensor<2>,
    values: Tensor<2>,
    next_values: Tensor<2>,
    boot: &[f32],
    trace: &[f32],
    gamma: f64,
    lambda: f64,
) -> Tensor<2> {
    let [t_len, b] = rewards.dims();
    assert_eq!(boot.len(), t_len);
    assert_eq!(trace.len(), t_len);
    let device = rewards.device();
    let boot_col = Tensor::<1>::from_floats(boot, &device).reshape([t_len, 1]);
    let deltas = rewards + next_values.mul_scalar(gamma) * boot_col - values;
    let mut rows: Vec<Tensor<2>> = Vec::with_capacity(t_len);
    let mut next: Option<Tensor<2>> = None;
    for t in (0..t_len).rev() {
        let delta = deltas.clone().slice([t..t + 1, 0..b]);
        let a = match next {
            Some(n) if trace[t] != 0.0 => delta + n.mul_scalar(gamma * lambda * trace[t] as f64),
            _ => delta,
        };
        rows.push(a.clone());
        next = Some(a);
    }
    rows.reverse();
    Tensor::cat(rows, 0)
}

/// Log-probability of `actions` `[N, H]` under `logits` `[N, H, A]` (summed over heads),
/// and the entropy (summed over heads), both `[N]`.
#[must_use]
pub fn log_prob_entropy(logits: Tensor<3>, actions: Tensor<2, Int>) -> (Tensor<1>, Tensor<1>) {
    let [n, h, _] = logits.dims();
    let logp_all = log_softmax(logits.clone(), 2);
    let logp = logp_all
        .clone()
        .gather(2, actions.reshape([n, h, 1]))
        .reshape([n, h])
        .sum_dim(1)
        .reshape([n]);
    let entropy = (softmax(logits, 2) * logp_all)
        .sum_dim(2)
        .reshape([n, h])
        .sum_dim(1)
        .reshape([n])
        .neg();
    (logp, entropy)
}

/// Samples of a minibatch as they were collected.
#[derive(Clone, Debug)]
pub struct Samples {
    /// `[N, H]` chosen actions.
    pub actions: Tensor<2, Int>,
    /// `[N]` log-probabilities at collection.
    pub logp: Tensor<1>,
    /// `[N]` values at collection.
    pub values: Tensor<1>,
    /// `[N]` advantages.
    pub advantages: Tensor<1>,
    /// `[N]` returns (advantages + values).
    pub returns: Tensor<1>,
}

impl Samples {
    /// The rows `idx` of every field.
    #[must_use]
    pub fn select(&self, idx: Tensor<1, Int>) -> Samples {
        Samples {
            actions: self.actions.clone().select(0, idx.clone()),
            logp: self.logp.clone().select(0, idx.clone()),
            values: self.values.clone().select(0, idx.clone()),
            advantages: self.advantages.clone().select(0, idx.clone()),
            returns: self.returns.clone().select(0, idx),
        }
    }

    /// A rollout's samples, flattened to rows: `actions` `[rows, H]`, the collection's
    /// log-probabilities and values `[T, B]`, and the advantages `[T, B]`. Also returns the
    /// explained variance of the values.
    #[must_use]
    pub fn flatten(
        actions: Tensor<2, Int>,
        logp: Tensor<2>,
        values: Tensor<2>,
        advantages: Tensor<2>,
    ) -> (Samples, Tensor<1>) {
        let [t, b] = values.dims();
        let rows = t * b;
        let returns = (advantages.clone() + values.clone()).reshape([rows]);
        let values = values.reshape([rows]);
        let ev = explained_variance(values.clone(), returns.clone());
        let s = Samples {
            actions,
            logp: logp.reshape([rows]),
            values,
            advantages: advantages.reshape([rows]),
            returns,
        };
        (s, ev)
    }
}

/// The loss of one minibatch and its diagnostics (all `[1]`).
#[derive(Clone, Debug)]
pub struct Terms {
    /// `pg_loss − ent_coef · entropy + vf_coef · v_loss`, to differentiate.
    pub loss: Tensor<1>,
    /// The clipped surrogate loss.
    pub policy_loss: Tensor<1>,
    /// The (clipped) value loss, with CleanRL's factor 0.5.
    pub value_loss: Tensor<1>,
    /// Mean entropy.
    pub entropy: Tensor<1>,
    /// `mean(−log r)`.
    pub old_approx_kl: Tensor<1>,
    /// `mean((r − 1) − log r)`.
    pub approx_kl: Tensor<1>,
    /// Fraction of samples whose ratio was clipped.
    pub clipfrac: Tensor<1>,
}

/// PPO's loss for new `logits` `[N, H, A]` (masked as at collection) and new values `[N]`.
#[must_use]
pub fn terms(logits: Tensor<3>, new_values: Tensor<1>, s: &Samples, cfg: &PpoConfig) -> Terms {
    let (new_logp, entropy) = log_prob_entropy(logits, s.actions.clone());
    let log_ratio = (new_logp - s.logp.clone()).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO);
    let ratio = log_ratio.clone().exp();
    let lr = log_ratio.clone().detach();
    let rd = ratio.clone().detach();
    let old_approx_kl = lr.clone().neg().mean();
    let approx_kl = (rd.clone().sub_scalar(1.0) - lr).mean();
    let clipfrac = rd
        .sub_scalar(1.0)
        .abs()
        .greater_elem(cfg.clip_coef)
        .float()
        .mean();
    let mut adv = s.advantages.clone();
    if cfg.norm_adv && adv.dims()[0] > 1 {
        let mean = adv.clone().mean();
        let std = adv.clone().var(0).sqrt();
        adv = (adv - mean) / std.add_scalar(1e-8);
    }
    let c = cfg.clip_coef;
    let pg1 = adv.clone().neg() * ratio.clone();
    let pg2 = adv.neg() * ratio.clamp(1.0 - c, 1.0 + c);
    let policy_loss = pg1.max_pair(pg2).mean();
    let unclipped = (new_values.clone() - s.returns.clone()).square();
    let value_loss = if cfg.clip_value_loss {
        let clipped =
            s.values.clone() + (new_values - s.values.clone()).clamp(-c, c) - s.returns.clone();
        unclipped.max_pair(clipped.square()).mean().mul_scalar(0.5)
    } else {
        unclipped.mean().mul_scalar(0.5)
    };
    let entropy = entropy.mean();
    let loss = policy_loss.clone() - entropy.clone().mul_scalar(cfg.ent_coef)
        + value_loss.clone().mul_scalar(cfg.vf_coef);
    Terms {
        loss,
        policy_loss,
        value_loss,
        entropy,
        old_approx_kl,
        approx_kl,
        clipfrac,
    }
}

/// `1 − Var(returns − values) / Var(returns)` over a rollout (NaN when the returns are
/// constant, as CleanRL's), `[1]`.
#[must_use]
pub fn explained_variance(values: Tensor<1>, returns: Tensor<1>) -> Tensor<1> {
    let var_y = returns.clone().var(0);
    let var_res = (returns - values).var(0);
    (var_res / var_y).neg().add_scalar(1.0)
}
