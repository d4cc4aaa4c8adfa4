//! Adam with PPO's global gradient-norm clipping, on the device, with a state we can save.
//!
//! Why not Burn's `AdamConfig`: PPO's `max_grad_norm` clips the norm of *all* gradients
//! together, while Burn 0.22.1's `GradientClippingConfig::Norm` clips each parameter tensor
//! on its own; and `ModuleOptimizer::load_record` materialises the saved state on
//! `Device::default()` (the wgpu device in our build), which on the CPU path would start a
//! GPU runtime, or fail on a machine without one. This file is PyTorch's Adam (bias
//! correction, `ε` outside the square root) and `clip_grad_norm_`; neither reads anything
//! back to the host.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::{Device, Tensor, TensorData};

/// Adam's state: the step count and the two moments of every parameter (flattened).
#[derive(Debug)]
pub struct Adam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    steps: u64,
    moments: BTreeMap<u64, (Tensor<1>, Tensor<1>)>,
}

/// The squared global norm of the gradients of `module`'s parameters, `[1]`.
pub fn grad_sq_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    struct SqNorm<'a> {
        grads: &'a GradientsParams,
        acc: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SqNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.acc = Some(match self.acc.take() {
                    Some(a) => a + s,
                    None => s,
                });
            }
        }
    }
    let mut v = SqNorm { grads, acc: None };
    module.visit(&mut v);
    v.acc
}

/// `min(1, max_norm / (norm + 1e-6))` as PyTorch's `clip_grad_norm_` computes it, `[1]`.
#[must_use]
pub fn clip_coefficient(norm: Tensor<1>, max_norm: f64) -> Tensor<1> {
    norm.add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0)
}

struct Update<'a> {
    adam: &'a mut Adam,
    grads: GradientsParams,
    coef: Tensor<1>,
    lr: f64,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.dims();
        let x = tensor.inner();
        let n = x.shape().num_elements();
        let g = grad.reshape([n]) * self.coef.clone();
        let a = &mut *self.adam;
        let (m, v) = match a.moments.remove(&id.val()) {
            Some((m, v)) => (m, v),
            None => (g.zeros_like(), g.zeros_like()),
        };
        let m = m.mul_scalar(a.beta1) + g.clone().mul_scalar(1.0 - a.beta1);
        let v = v.mul_scalar(a.beta2) + g.square().mul_scalar(1.0 - a.beta2);
        let t = a.steps as i32;
        let bc1 = 1.0 - a.beta1.powi(t);
        let bc2 = 1.0 - a.beta2.powi(t);
        let step = m
            .clone()
            .div_scalar(bc1)
            .div(v.clone().div_scalar(bc2).sqrt().add_scalar(a.eps))
            .mul_scalar(self.lr);
        let updated = (x.reshape([n]) - step).reshape(shape);
        a.moments.insert(id.val(), (m, v));
        Param::from_mapped_value(id, Tensor::from_inner(updated).require_grad(), mapper)
    }
}

impl Adam {
    /// Adam with β = (0.9, 0.999) and `eps`.
    #[must_use]
    pub fn new(eps: f64) -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Steps taken.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of `module` with `grads`, after clipping their global norm to
    /// `max_grad_norm`. Returns the module and the norm before clipping (`[1]`, on the
    /// device).
    pub fn step<M: Module>(
        &mut self,
        module: M,
        grads: GradientsParams,
        lr: f64,
        max_grad_norm: f64,
    ) -> (M, Tensor<1>) {
        let Some(sq) = grad_sq_norm(&module, &grads) else {
            panic!("no parameter of the module has a gradient");
        };
        let norm = sq.sqrt();
        let coef = clip_coefficient(norm.clone(), max_grad_norm);
        self.steps += 1;
        let mut update = Update {
            adam: self,
            grads,
            coef,
            lr,
        };
        (module.map(&mut update), norm)
    }

    /// The state as bytes (reads the moments back from the device).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(b"SEDADAM1");
        out.extend_from_slice(&self.steps.to_le_bytes());
        out.extend_from_slice(&(self.moments.len() as u64).to_le_bytes());
        for (id, (m, v)) in &self.moments {
            out.extend_from_slice(&id.to_le_bytes());
            let m: Vec<f32> = m
                .to_data()
                .try_into_vec::<f32>()
                .map_err(|e| anyhow!("reading Adam's state: {e:?}"))?;
            let v: Vec<f32> = v
                .to_data()
                .try_into_vec::<f32>()
                .map_err(|e| anyhow!("reading Adam's state: {e:?}"))?;
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            out.extend_from_slice(bytemuck::cast_slice(&m));
            out.extend_from_slice(bytemuck::cast_slice(&v));
        }
        Ok(out)
    }

    /// Restores a state written by [`Adam::to_bytes`], with its tensors on `device`.
    pub fn load_bytes(&mut self, bytes: &[u8], device: &Device) -> Result<()> {
        let mut r = bytes;
        let mut take = |n: usize| -> Result<&[u8]> {
            if r.len() < n {
                bail!("the optimizer state is truncated");
            }
            let (head, tail) = r.split_at(n);
            r = tail;
            Ok(head)
        };
        if take(8)? != b"SEDADAM1" {
            bail!("not an optimizer state of this version");
        }
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        self.steps = u64_of(take(8)?);
        let count = u64_of(take(8)?);
        self.moments.clear();
        for _ in 0..count {
            let id = u64_of(take(8)?);
            let len = u64_of(take(8)?) as usize;
            let m: Vec<f32> = bytemuck::pod_collect_to_vec(take(4 * len)?);
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(take(4 * len)?);
            let t = |x: Vec<f32>| Tensor::<1>::from_data(TensorData::new(x, [len]), device);
            self.moments.insert(id, (t(m), t(v)));
        }
        Ok(())
    }

    /// The first and second moments of a parameter (flattened), if it has been updated.
    #[must_use]
    pub fn moments(&self, id: ParamId) -> Option<(Tensor<1>, Tensor<1>)> {
        self.moments.get(&id.val()).cloned()
    }
}
