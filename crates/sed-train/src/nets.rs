//! The networks: one policy shared by all players, and the principal's (SPEC §5).
//!
//! Both are actor-critic networks with CleanRL's initialisation: orthogonal weights with
//! gain √2 in the torso, 0.01 on the actor head and 1 on the critic head, zero biases.
//! Their actor heads return logits `[rows, heads, choices]`: one head of 7 actions for a
//! player, one head of 12 choices per tax bracket for the principal, so that one PPO
//! implementation serves both.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::{Device, Tensor, TensorData};
use burn::tensor::Distribution;
use burn::tensor::activation::relu;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use nalgebra::DMatrix;
use sed_core::obs::{WINDOW_COLS, WINDOW_ROWS};

use crate::config::Torso;
use crate::features::CHANNELS;

/// A semi-orthogonal `[rows, cols]` matrix times `gain`, as PyTorch's `orthogonal_` and
/// Burn's `Initializer::Orthogonal` make it: the Q factor of a standard normal matrix's QR
/// (of its transpose when it is wide), each column's sign set by R's diagonal. The normal
/// draws come from Burn's seeded generator on `device`, as Burn's would; the thin QR runs
/// on the host, where Burn 0.22 forms the full square Q on the device (minutes for a
/// 4332 × 256 layer in a dev build).
#[must_use]
pub fn orthogonal(rows: usize, cols: usize, gain: f64, device: &Device) -> Tensor<2> {
    let tall = rows >= cols;
    let (m, n) = if tall { (rows, cols) } else { (cols, rows) };
    let normal = Tensor::<2>::random([rows, cols], Distribution::Normal(0.0, 1.0), device);
    let normal = if tall { normal } else { normal.transpose() };
    let values: Vec<f32> = normal
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("float draws");
    let qr = DMatrix::from_row_iterator(m, n, values.into_iter().map(f64::from)).qr();
    let (q, r) = (qr.q(), qr.r());
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            out.push((q[(i, j)] * r[(j, j)].signum() * gain) as f32);
        }
    }
    let t = Tensor::from_data(TensorData::new(out, [m, n]), device);
    if tall { t } else { t.transpose() }
}

/// A linear layer with CleanRL's initialisation: orthogonal weight with `gain`, zero bias.
fn layer(inputs: usize, outputs: usize, gain: f64, device: &Device) -> Linear {
    let mut l = LinearConfig::new(inputs, outputs)
        .with_initializer(Initializer::Zeros)
        .init(device);
    l.weight = Param::from_tensor(orthogonal(inputs, outputs, gain, device));
    l.bias = Some(Initializer::Zeros.init([outputs], device));
    l
}

fn conv(inputs: usize, outputs: usize, kernel: usize, device: &Device) -> Conv2d {
    conv_with(inputs, outputs, kernel, 1, PaddingConfig2d::Same, device)
}

/// A convolution with CleanRL's initialisation, of any stride and padding.
fn conv_with(
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    padding: PaddingConfig2d,
    device: &Device,
) -> Conv2d {
    let mut c = Conv2dConfig::new([inputs, outputs], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(padding)
        .with_initializer(Initializer::Zeros)
        .init(device);
    // PyTorch flattens a convolution's weight to `[outputs, inputs · kernel²]`.
    c.weight = Param::from_tensor(
        orthogonal(
            outputs,
            inputs * kernel * kernel,
            std::f64::consts::SQRT_2,
            device,
        )
        .reshape([outputs, inputs, kernel, kernel]),
    );
    c.bias = Some(Initializer::Zeros.init([outputs], device));
    c
}

/// ReLU layers.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn new(inputs: usize, hidden: &[usize], device: &Device) -> Self {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut width = inputs;
        for &h in hidden {
            layers.push(layer(width, h, std::f64::consts::SQRT_2, device));
            width = h;
        }
        Self { layers }
    }

    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for l in &self.layers {
            x = relu(l.forward(x));
        }
        x
    }
}

/// A convolutional torso on a square window: three ReLU convolutions, then a dense ReLU
/// layer on the flattened maps and the player's extra inputs.
#[derive(Module, Debug)]
pub struct ConvTorso {
    c1: Conv2d,
    c2: Conv2d,
    c3: Conv2d,
    dense: Linear,
}

/// Width of the SocialJax torso's output.
const CNN_DENSE: usize = 64;
/// Width of the released code's torso's output.
const RGB_DENSE: usize = 512;

impl ConvTorso {
    /// SocialJax's Commons Harvest CNN on the 11 × 11 symbolic window: conv 32·5×5 →
    /// 32·3×3 → 32·3×3 (same padding), then dense 64.
    fn socialjax(channels: usize, extras: usize, device: &Device) -> Self {
        const C: usize = 32;
        Self {
            c1: conv(channels, C, 5, device),
            c2: conv(C, C, 3, device),
            c3: conv(C, C, 3, device),
            dense: layer(
                C * WINDOW_ROWS * WINDOW_COLS + extras,
                CNN_DENSE,
                std::f64::consts::SQRT_2,
                device,
            ),
        }
    }

    /// The released code's CNN (CleanRL's Atari torso) on SPEC §3's RGB window, 88 × 88,
    /// scaled to [0, 1]: conv 32·8×8 stride 4 → 64·4×4 stride 2 → 64·3×3 stride 1 (no
    /// padding: 21², 9², 7²), then dense 512.
    fn released(channels: usize, extras: usize, device: &Device) -> Self {
        let valid = || PaddingConfig2d::Valid;
        Self {
            c1: conv_with(channels, 32, 8, 4, valid(), device),
            c2: conv_with(32, 64, 4, 2, valid(), device),
            c3: conv_with(64, 64, 3, 1, valid(), device),
            dense: layer(
                64 * 7 * 7 + extras,
                RGB_DENSE,
                std::f64::consts::SQRT_2,
                device,
            ),
        }
    }

    /// `window` `[rows, side², channels]` (cells or pixels row-major), `extras` `[rows, X]`
    /// → `[rows, dense]`.
    fn forward(&self, window: Tensor<3>, extras: Tensor<2>) -> Tensor<2> {
        let [rows, cells, channels] = window.dims();
        let side = cells.isqrt();
        debug_assert_eq!(side * side, cells, "a square window");
        let x = window
            .reshape([rows, side, side, channels])
            .permute([0, 3, 1, 2]);
        let x = relu(self.c1.forward(x));
        let x = relu(self.c2.forward(x));
        let x = relu(self.c3.forward(x));
        let [_, c, h, w] = x.dims();
        let flat = x.reshape([rows, c * h * w]);
        relu(self.dense.forward(Tensor::cat(vec![flat, extras], 1)))
    }
}

/// The players' shared policy and value network.
#[derive(Module, Debug)]
pub struct PlayerNet {
    mlp: Option<Mlp>,
    cnn: Option<ConvTorso>,
    actor: Linear,
    critic: Linear,
}

impl PlayerNet {
    /// A network for windows of `cells` cells, `frames` observations deep, and `extras`
    /// extra inputs per player.
    #[must_use]
    pub fn new(
        torso: Torso,
        cells: usize,
        frames: usize,
        extras: usize,
        hidden: &[usize],
        actions: usize,
        device: &Device,
    ) -> Self {
        let (mut mlp, mut cnn) = (None, None);
        let width = match torso {
            Torso::Mlp => {
                mlp = Some(Mlp::new(cells * CHANNELS * frames + extras, hidden, device));
                *hidden.last().expect("validated: at least one layer")
            }
            Torso::Cnn => {
                cnn = Some(ConvTorso::socialjax(CHANNELS * frames, extras, device));
                CNN_DENSE
            }
            Torso::Rgb => {
                cnn = Some(ConvTorso::released(3 * frames, extras, device));
                RGB_DENSE
            }
        };
        Self {
            mlp,
            cnn,
            actor: layer(width, actions, 0.01, device),
            critic: layer(width, 1, 1.0, device),
        }
    }

    /// `window` `[rows, cells, frames · CHANNELS]` (`[rows, 88 · 88, frames · 3]` for the RGB torso, as
    /// [`crate::features::Inputs::windows`] gives them), `extras` `[rows, X]` → logits
    /// `[rows, 1, actions]` and values `[rows]`.
    pub fn forward(&self, window: Tensor<3>, extras: Tensor<2>) -> (Tensor<3>, Tensor<1>) {
        let [rows, cells, channels] = window.dims();
        let h = match (&self.mlp, &self.cnn) {
            (Some(mlp), _) => mlp.forward(Tensor::cat(
                vec![window.reshape([rows, cells * channels]), extras],
                1,
            )),
            (None, Some(cnn)) => cnn.forward(window, extras),
            (None, None) => unreachable!("a player network has a torso"),
        };
        heads(&self.actor, &self.critic, h, 1)
    }

    /// Values only, `[rows]`.
    pub fn value(&self, window: Tensor<3>, extras: Tensor<2>) -> Tensor<1> {
        self.forward(window, extras).1
    }
}

fn heads(actor: &Linear, critic: &Linear, h: Tensor<2>, n_heads: usize) -> (Tensor<3>, Tensor<1>) {
    let [rows, _] = h.dims();
    let logits = actor.forward(h.clone());
    let choices = logits.dims()[1] / n_heads;
    let value = critic.forward(h).reshape([rows]);
    (logits.reshape([rows, n_heads, choices]), value)
}

/// The principal's policy and value network: an MLP on its map and features, one head of
/// 12 choices per tax bracket. The map may be averaged over `pool × pool` blocks first
/// (zero-padded at the far edges), so that large maps keep the first layer small.
#[derive(Module, Debug)]
pub struct PrincipalNet {
    mlp: Mlp,
    actor: Linear,
    critic: Linear,
    #[module(skip)]
    heads: usize,
    /// The map's rows and columns, and the block side (1: every cell).
    #[module(skip)]
    map: [usize; 3],
}

impl PrincipalNet {
    /// A network for maps of `cells` cells, `features` features, `heads` heads of
    /// `choices` choices.
    #[must_use]
    pub fn new(
        cells: usize,
        features: usize,
        hidden: &[usize],
        heads: usize,
        choices: usize,
        device: &Device,
    ) -> Self {
        Self::pooled([1, cells, 1], features, hidden, heads, choices, device)
    }

    /// A network for `[rows, cols]` maps averaged over `pool × pool` blocks (`map` is
    /// `[rows, cols, pool]`), `features` features, `heads` heads of `choices` choices.
    #[must_use]
    pub fn pooled(
        map: [usize; 3],
        features: usize,
        hidden: &[usize],
        heads: usize,
        choices: usize,
        device: &Device,
    ) -> Self {
        let [rows, cols, pool] = map;
        let cells = rows.div_ceil(pool) * cols.div_ceil(pool);
        let width = *hidden.last().expect("validated: at least one layer");
        Self {
            mlp: Mlp::new(cells * CHANNELS + features, hidden, device),
            actor: layer(width, heads * choices, 0.01, device),
            critic: layer(width, 1, 1.0, device),
            heads,
            map,
        }
    }

    /// `map` `[envs, cells, CHANNELS]`, `features` `[envs, F]` → logits `[envs, heads,
    /// choices]` and values `[envs]`.
    pub fn forward(&self, map: Tensor<3>, features: Tensor<2>) -> (Tensor<3>, Tensor<1>) {
        let h = self
            .mlp
            .forward(Tensor::cat(vec![self.flatten_map(map), features], 1));
        heads(&self.actor, &self.critic, h, self.heads)
    }

    /// The first layer's map input: `[envs, cells, C]` flattened, or its block means
    /// `[envs, C · blocks]` (channel-major) when pooled.
    fn flatten_map(&self, map: Tensor<3>) -> Tensor<2> {
        let [rows, cells, channels] = map.dims();
        let [map_rows, map_cols, pool] = self.map;
        if pool == 1 {
            map.reshape([rows, cells * channels])
        } else {
            // [envs, rows, cols, C] → [envs, C, rows, cols] → block means → flat.
            let grid = map
                .reshape([rows, map_rows, map_cols, channels])
                .permute([0, 3, 1, 2]);
            let padding = [
                (0, map_rows.next_multiple_of(pool) - map_rows),
                (0, map_cols.next_multiple_of(pool) - map_cols),
            ];
            let pooled = avg_pool2d(
                grid,
                AvgPoolOptions::new([pool, pool]).with_padding_pairs(padding),
            );
            let [_, c, pr, pc] = pooled.dims();
            pooled.reshape([rows, c * pr * pc])
        }
    }
}

/// Forces every parameter of `module` to be initialised now (Burn initialises lazily), so
/// that the order of random draws, and hence the network, depends only on the seed.
pub fn materialise<M: Module>(module: &M) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Every parameter of `module`, flattened, in visiting order (read back to the host; for
/// tests and comparisons of runs).
#[must_use]
pub fn flat_params<M: Module>(module: &M) -> Vec<f32> {
    struct Flat(Vec<f32>);
    impl burn::module::ModuleVisitor for Flat {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().inner().into_data().convert::<f32>();
            self.0
                .extend(data.try_into_vec::<f32>().expect("float parameters"));
        }
    }
    let mut f = Flat(Vec::new());
    module.visit(&mut f);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_matches_burns_initializer_and_is_semi_orthogonal() {
        let dev = Device::flex();
        for (rows, cols) in [(7, 4), (4, 7), (5, 5)] {
            dev.seed(9);
            let ours = orthogonal(rows, cols, 2.0, &dev);
            dev.seed(9);
            let burns: Tensor<2> = Initializer::Orthogonal { gain: 2.0 }
                .init([rows, cols], &dev)
                .val();
            let v = |t: Tensor<2>| -> Vec<f32> {
                t.into_data().convert::<f32>().try_into_vec().unwrap()
            };
            let (a, b) = (v(ours.clone()), v(burns));
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-4, "{rows}x{cols}: differs from Burn's by {diff}");
            // Orthonormal columns (tall) or rows (wide), times the gain squared.
            let gram = if rows >= cols {
                ours.clone().transpose().matmul(ours)
            } else {
                ours.clone().matmul(ours.transpose())
            };
            let k = rows.min(cols);
            let eye: Tensor<2> = Tensor::eye(k, &dev).mul_scalar(4.0);
            let off = v(gram - eye)
                .into_iter()
                .map(f32::abs)
                .fold(0.0f32, f32::max);
            assert!(off < 1e-4, "{rows}x{cols}: QᵀQ is off by {off}");
        }
    }

    #[test]
    fn a_pooled_principal_sees_block_means_of_its_map() {
        let dev = Device::flex();
        // A 3 x 5 map in 2 x 2 blocks: 2 x 3 blocks, the last row and column padded.
        let net = PrincipalNet::pooled([3, 5, 2], 4, &[8], 2, 12, &dev);
        let mut cells = vec![0.0f32; 15 * CHANNELS];
        cells[0] = 1.0; // (0, 0), channel 0
        cells[CHANNELS] = 1.0; // (0, 1), channel 0
        cells[14 * CHANNELS + 1] = 1.0; // (2, 4), channel 1: alone in its padded block
        let map = Tensor::<3>::from_data(TensorData::new(cells, [1, 15, CHANNELS]), &dev);
        let flat: Vec<f32> = net
            .flatten_map(map.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(flat.len(), 6 * CHANNELS);
        let block = |c: usize, br: usize, bc: usize| flat[c * 6 + br * 3 + bc];
        assert_eq!(block(0, 0, 0), 0.5);
        assert_eq!(block(1, 1, 2), 0.25);
        assert_eq!(flat.iter().filter(|&&v| v != 0.0).count(), 2);
        let (logits, values) = net.forward(map, Tensor::zeros([1, 4], &dev));
        assert_eq!((logits.dims(), values.dims()), ([1, 2, 12], [1]));
        // Without pooling the map enters cell by cell.
        let plain = PrincipalNet::new(15, 4, &[8], 2, 12, &dev);
        let map = Tensor::<3>::zeros([1, 15, CHANNELS], &dev);
        assert_eq!(plain.flatten_map(map).dims(), [1, 15 * CHANNELS]);
    }
}
