//! Acting: sampling from logits with the env's noise, and the principal's action mask.
//!
//! Sampling is Gumbel-max, `argmax(logits − ln(−ln u))`, with `u` the counter-RNG noise of
//! [`crate::env::VecEnv::noise`]: the same noise bits on the CPU and the GPU, so both paths
//! draw the same actions from the same logits (up to ties within the float error of `ln`).

use burn::prelude::{Int, Tensor};
use sed_core::principal::{CHOICES, KEEP};
use sed_core::tax::RATE_LEVELS;

/// Additive logit of a masked choice (large but finite, so `softmax · log_softmax` stays 0).
pub const MASKED: f32 = -1e9;

/// One sample per row of `logits` `[N, A]` given uniform `noise` `[N, A]`, as `[N]`.
#[must_use]
pub fn sample(logits: Tensor<2>, noise: Tensor<2>) -> Tensor<1, Int> {
    let [n, _] = logits.dims();
    let gumbel = noise.log().neg().log().neg();
    (logits + gumbel).argmax(1).reshape([n])
}

/// The principal's mask `[envs, heads, CHOICES]`, 0 where a choice is allowed and
/// [`MASKED`] where not (`sed_core::principal::allowed`): rate `k/10` needs `k ≤ cap` and,
/// with a divergence bound δ, `|k − current| ≤ δ`; "keep" is always allowed. `rates`
/// `[envs, heads]` are the current rates in [0, 1], as in the principal's features.
#[must_use]
pub fn choice_mask(rates: Tensor<2>, cap_tenths: u32, max_delta_tenths: Option<u32>) -> Tensor<3> {
    let [e, h] = rates.dims();
    let c = CHOICES as usize;
    let device = rates.device();
    let levels: Vec<f32> = (0..CHOICES).map(|k| k as f32).collect();
    let ks = Tensor::<1>::from_floats(levels.as_slice(), &device)
        .reshape([1, 1, c])
        .expand([e, h, c]);
    let under_cap = ks.clone().lower_equal_elem(cap_tenths as f32 + 0.5).float();
    let allowed = match max_delta_tenths {
        None => under_cap,
        Some(d) => {
            let current = rates
                .mul_scalar(10.0)
                .round()
                .reshape([e, h, 1])
                .expand([e, h, c]);
            under_cap
                * (ks - current)
                    .abs()
                    .lower_equal_elem(d as f32 + 0.5)
                    .float()
        }
    };
    let mut keep = vec![0.0f32; c];
    keep[KEEP as usize] = 1.0;
    debug_assert_eq!(KEEP, RATE_LEVELS + 1);
    let keep = Tensor::<1>::from_floats(keep.as_slice(), &device)
        .reshape([1, 1, c])
        .expand([e, h, c]);
    allowed.max_pair(keep).sub_scalar(1.0).mul_scalar(-MASKED)
}
