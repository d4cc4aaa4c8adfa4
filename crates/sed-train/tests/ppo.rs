//! PPO's pieces against plain computations: GAE against a per-env loop (with episode ends,
//! terminal steps and the bootstrap at the cut), the loss terms against hand arithmetic on
//! tiny tensors, multi-head log-probabilities, global gradient clipping, the principal's
//! mask against `sed-core`, and Gumbel-max sampling against the softmax.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::{Device, Int, Tensor, TensorData};
use sed_train::adam::{Adam, clip_coefficient, grad_sq_norm};
use sed_train::config::PpoConfig;
use sed_train::policy::{MASKED, choice_mask, sample};
use sed_train::ppo::{Samples, explained_variance, gae, log_prob_entropy, terms};

fn dev() -> Device {
    Device::flex()
}

fn vec1(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn t2(v: &[f32], shape: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &dev())
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}: {a} vs {b}");
}

/// A small deterministic sequence in [-1, 1).
fn seq(n: usize, salt: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (sed_core::rng::mix(i as u32 ^ salt.wrapping_mul(0x9e37_79b9)) >> 8) as f32
                / 8_388_608.0
                - 1.0
        })
        .collect()
}

#[test]
fn gae_matches_a_plain_per_env_loop() {
    let (t_len, b) = (9, 5);
    let (gamma, lambda) = (0.97, 0.9);
    let rewards = seq(t_len * b, 1);
    let values = seq(t_len * b, 2);
    let finals = seq(b, 3);
    let boot_value = seq(b, 4);
    // An episode ends after step 3 (bootstrap from its final observation), step 6 ends in
    // a terminal state (no bootstrap), the rollout is cut after step 8.
    let ends = [3usize, 6];
    let mut next = vec![0.0f32; t_len * b];
    for t in 0..t_len {
        for e in 0..b {
            next[t * b + e] = if t == 3 {
                finals[e]
            } else if t + 1 < t_len {
                values[(t + 1) * b + e]
            } else {
                boot_value[e]
            };
        }
    }
    let mut boot = vec![1.0f32; t_len];
    boot[6] = 0.0;
    let mut trace = vec![1.0f32; t_len];
    for &t in &ends {
        trace[t] = 0.0;
    }
    let got = gae(
        t2(&rewards, [t_len, b]),
        t2(&values, [t_len, b]),
        t2(&next, [t_len, b]),
        &boot,
        &trace,
        gamma,
        lambda,
    );
    let got = vec1(got.reshape([t_len * b]));
    for e in 0..b {
        let mut last = 0.0f64;
        for t in (0..t_len).rev() {
            let nv = next[t * b + e] as f64;
            let delta =
                rewards[t * b + e] as f64 + gamma * boot[t] as f64 * nv - values[t * b + e] as f64;
            last =
                delta + gamma * lambda * trace[t] as f64 * if t + 1 < t_len { last } else { 0.0 };
            close(got[t * b + e] as f64, last, 1e-5, &format!("A[{t}][{e}]"));
        }
    }
}

#[test]
fn loss_terms_match_hand_computation() {
    let cfg = PpoConfig {
        clip_coef: 0.2,
        ent_coef: 0.01,
        vf_coef: 0.5,
        ..PpoConfig::default()
    };
    // Three samples, one head of two actions.
    let logits = [[0.3f32, -0.2], [1.0, 0.5], [-0.4, 0.9]];
    let actions = [0i32, 1, 1];
    let old_logp = [-0.5f32, -1.2, -0.1];
    let old_values = [0.2f32, -0.3, 0.5];
    let new_values = [0.5f32, -0.25, 0.1];
    let adv = [1.0f32, -0.5, 2.0];
    let returns = [0.6f32, -0.1, 0.9];
    let d = dev();
    let logits_t = Tensor::<1>::from_floats(logits.concat().as_slice(), &d).reshape([3, 1, 2]);
    let s = Samples {
        actions: Tensor::<1, Int>::from_ints(actions, &d).reshape([3, 1]),
        logp: Tensor::from_floats(old_logp, &d),
        values: Tensor::from_floats(old_values, &d),
        advantages: Tensor::from_floats(adv, &d),
        returns: Tensor::from_floats(returns, &d),
    };
    let got = terms(logits_t, Tensor::from_floats(new_values, &d), &s, &cfg);

    // By hand, in f64.
    let c = 0.2f64;
    let mut logp = [0.0f64; 3];
    let mut ent = [0.0f64; 3];
    for i in 0..3 {
        let (a, b) = (logits[i][0] as f64, logits[i][1] as f64);
        let lse = (a.exp() + b.exp()).ln();
        let lp = [a - lse, b - lse];
        logp[i] = lp[actions[i] as usize];
        ent[i] = -(lp[0].exp() * lp[0] + lp[1].exp() * lp[1]);
    }
    let mean = adv.iter().map(|&x| x as f64).sum::<f64>() / 3.0;
    let std = (adv.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let (mut pg, mut vl, mut kl, mut okl, mut cf) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..3 {
        let lr = logp[i] - old_logp[i] as f64;
        let r = lr.exp();
        let a = (adv[i] as f64 - mean) / (std + 1e-8);
        pg += (-a * r).max(-a * r.clamp(1.0 - c, 1.0 + c)) / 3.0;
        let (nv, ov, ret) = (
            new_values[i] as f64,
            old_values[i] as f64,
            returns[i] as f64,
        );
        let clipped = ov + (nv - ov).clamp(-c, c);
        vl += 0.5 * (nv - ret).powi(2).max((clipped - ret).powi(2)) / 3.0;
        kl += ((r - 1.0) - lr) / 3.0;
        okl += -lr / 3.0;
        cf += (((r - 1.0).abs() > c) as u8 as f64) / 3.0;
    }
    let entropy = ent.iter().sum::<f64>() / 3.0;
    let loss = pg - 0.01 * entropy + 0.5 * vl;
    let one = |t: Tensor<1>| vec1(t)[0] as f64;
    close(one(got.policy_loss), pg, 1e-5, "policy loss");
    close(one(got.value_loss), vl, 1e-5, "value loss");
    close(one(got.entropy), entropy, 1e-5, "entropy");
    close(one(got.approx_kl), kl, 1e-5, "approx kl");
    close(one(got.old_approx_kl), okl, 1e-5, "old approx kl");
    close(one(got.clipfrac), cf, 1e-6, "clipfrac");
    close(one(got.loss), loss, 1e-5, "loss");
    assert!(
        cf > 0.0 && cf < 1.0,
        "the example clips some ratios but not all"
    );
}

#[test]
fn heads_add_their_log_probabilities_and_entropies() {
    let d = dev();
    let logits =
        Tensor::<1>::from_floats([0.1f32, 0.7, -0.3, 2.0, 0.0, 0.5], &d).reshape([1, 2, 3]);
    let actions = Tensor::<1, Int>::from_ints([2, 0], &d).reshape([1, 2]);
    let (logp, ent) = log_prob_entropy(logits, actions);
    let head = |l: [f64; 3], a: usize| {
        let lse = l.iter().map(|x| x.exp()).sum::<f64>().ln();
        let lp: Vec<f64> = l.iter().map(|x| x - lse).collect();
        (lp[a], -lp.iter().map(|x| x.exp() * x).sum::<f64>())
    };
    let (a, ea) = head([0.1, 0.7, -0.3], 2);
    let (b, eb) = head([2.0, 0.0, 0.5], 0);
    close(vec1(logp)[0] as f64, a + b, 1e-5, "log-prob");
    close(vec1(ent)[0] as f64, ea + eb, 1e-5, "entropy");
}

#[test]
fn explained_variance_is_one_minus_the_residual_share() {
    let d = dev();
    let ret = [1.0f32, 2.0, 4.0, 7.0];
    let val = [1.5f32, 2.0, 3.0, 7.5];
    let ev = vec1(explained_variance(
        Tensor::from_floats(val, &d),
        Tensor::from_floats(ret, &d),
    ))[0] as f64;
    let var = |x: &[f64]| {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>()
    };
    let res: Vec<f64> = ret.iter().zip(val).map(|(r, v)| (r - v) as f64).collect();
    let ret: Vec<f64> = ret.iter().map(|&r| r as f64).collect();
    close(ev, 1.0 - var(&res) / var(&ret), 1e-5, "explained variance");
}

#[derive(Module, Debug)]
struct Two {
    a: Linear,
    b: Linear,
}

fn all_grads(model: &Two, grads: &GradientsParams) -> Vec<(burn::module::ParamId, Vec<f32>)> {
    struct Collect<'a>(&'a GradientsParams, Vec<(burn::module::ParamId, Vec<f32>)>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(p.id) {
                let v = g
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap();
                self.1.push((p.id, v));
            }
        }
    }
    let mut c = Collect(grads, Vec::new());
    model.visit(&mut c);
    c.1
}

#[test]
fn gradient_clipping_uses_one_global_norm_over_all_parameters() {
    let d = dev().autodiff();
    let model = Two {
        a: LinearConfig::new(3, 4).init(&d),
        b: LinearConfig::new(4, 2).init(&d),
    };
    let x = Tensor::<1>::from_floats([1.0f32, -2.0, 3.0], &d).reshape([1, 3]);
    let loss = model.b.forward(model.a.forward(x)).sum().mul_scalar(50.0);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let per_param = all_grads(&model, &grads);
    assert_eq!(per_param.len(), 4, "two weights and two biases");
    let global: f64 = per_param
        .iter()
        .flat_map(|(_, g)| g.iter().map(|&v| (v as f64).powi(2)))
        .sum::<f64>()
        .sqrt();
    let norm = vec1(grad_sq_norm(&model, &grads).unwrap().sqrt())[0] as f64;
    close(norm, global, 1e-5, "global norm");
    let max = 0.5;
    let coef = vec1(clip_coefficient(
        Tensor::from_floats([norm as f32], &dev()),
        max,
    ))[0] as f64;
    close(coef, max / (global + 1e-6), 1e-5, "clip coefficient");
    assert!(coef < 0.1, "the example's gradient is far above the bound");

    // Adam's first moment after one step is (1 − β₁)·coef·g for every parameter: one
    // coefficient for all of them, not one per tensor.
    let mut adam = Adam::new(1e-5);
    let (_, reported) = adam.step(model.clone(), grads, 1e-3, max);
    close(vec1(reported)[0] as f64, global, 1e-5, "reported norm");
    for (id, g) in per_param {
        let (m, _) = adam.moments(id).expect("updated");
        for (mv, gv) in vec1(m).iter().zip(&g) {
            close(*mv as f64, 0.1 * coef * *gv as f64, 1e-4, "first moment");
        }
    }
}

#[test]
fn the_principal_mask_is_sed_cores_allowed_set() {
    for delta in [None, Some(0), Some(2)] {
        for cap in 0..=10u32 {
            let currents: Vec<u32> = (0..=10).collect();
            let rates: Vec<f32> = currents.iter().map(|&k| k as f32 * 0.1).collect();
            let mask = choice_mask(t2(&rates, [11, 1]), cap, delta);
            let got = mask
                .reshape([11 * 12])
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap();
            for (i, &cur) in currents.iter().enumerate() {
                let want = sed_core::principal::allowed(cur, cap, delta);
                for k in 0..12 {
                    let v = got[i * 12 + k];
                    assert_eq!(
                        v == 0.0,
                        want[k],
                        "current {cur}, cap {cap}, delta {delta:?}, choice {k}: {v}"
                    );
                    assert!(v == 0.0 || v == MASKED);
                }
            }
        }
    }
}

#[test]
fn gumbel_max_samples_follow_the_softmax_and_repeat_with_the_noise() {
    let rows = 30_000usize;
    let probs = [1.0f64 / 7.0, 2.0 / 7.0, 4.0 / 7.0];
    let logits: Vec<f32> = (0..rows)
        .flat_map(|_| probs.map(|p| p.ln() as f32))
        .collect();
    let noise: Vec<f32> = (0..rows * 3)
        .map(|i| {
            sed_core::rng::policy_uniform(
                77,
                sed_core::rng::stream::PLAYER_ACTION,
                (i / 3) as u32,
                5,
                (i % 3) as u32,
            )
        })
        .collect();
    let draw = || {
        let a = sample(t2(&logits, [rows, 3]), t2(&noise, [rows, 3]));
        a.into_data()
            .convert::<i32>()
            .try_into_vec::<i32>()
            .unwrap()
    };
    let a = draw();
    for (k, p) in probs.iter().enumerate() {
        let f = a.iter().filter(|&&x| x == k as i32).count() as f64 / rows as f64;
        assert!(
            (f - p).abs() < 0.01,
            "action {k}: frequency {f} vs probability {p}"
        );
    }
    assert_eq!(a, draw(), "the same noise gives the same samples");
}
