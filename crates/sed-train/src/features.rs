//! Network inputs, built on the device from the env's packed buffers (SPEC §3).
//!
//! Each observation byte holds one bit per channel and, in its top two bits, the facing of
//! the player in the cell. Unpacking is a table lookup: the byte indexes a fixed
//! `[256, CHANNELS]` table whose row is the byte's channels as floats (wall, apple, grass,
//! self, other player, out of bounds, and the other player's facing one-hot), so a whole
//! batch of windows unpacks with one `select`.
//!
//! With the RGB torso the players' windows are SPEC §3's RGB pictures instead, rendered the
//! same way: a cell's 8 × 8 picture depends on its byte alone
//! ([`sed_core::render::cell_pixels`]), so a `[256, 8 · 8 · 3]` table of pictures and one
//! `select` give every cell's pixels, and a permutation lays the cells side by side.
//!
//! Players also get per-player constants (a player-id one-hot and the player's types) and,
//! when `train.player_sees_tax` is on, the env's current rates and position in the tax
//! period, taken from the principal's feature row of their env.

use burn::prelude::{Device, Int, Tensor, TensorData};
use sed_core::config::Game;
use sed_core::engine::Layout;
use sed_core::obs::{WINDOW_CELLS, WINDOW_COLS, WINDOW_ROWS, bits};
use sed_core::render::{CELL_PX, PALETTE, cell_pixels};
use sed_core::reward::RewardForm;
use sed_core::types::TYPE_LEVELS;

/// Channels per cell after unpacking.
pub const CHANNELS: usize = 10;

/// The unpacking table: row `b` holds the channels of byte `b`.
#[must_use]
pub fn channel_table() -> Vec<f32> {
    let mut t = vec![0.0f32; 256 * CHANNELS];
    for b in 0..256usize {
        let byte = b as u8;
        let row = &mut t[b * CHANNELS..(b + 1) * CHANNELS];
        for (k, bit) in [
            bits::WALL,
            bits::APPLE,
            bits::GRASS,
            bits::SELF,
            bits::OTHER,
            bits::OUT_OF_BOUNDS,
        ]
        .into_iter()
        .enumerate()
        {
            row[k] = (byte & bit != 0) as u8 as f32;
        }
        if byte & bits::OTHER != 0 {
            row[6 + (byte >> bits::FACING_SHIFT) as usize] = 1.0;
        }
    }
    t
}

/// Floats of one cell's RGB picture.
pub const PATCH: usize = CELL_PX * CELL_PX * 3;

/// The RGB table: row `b` holds the picture of a window cell of byte `b`, `[CELL_PX,
/// CELL_PX, 3]` row-major, each colour component divided by 255.
#[must_use]
pub fn rgb_table() -> Vec<f32> {
    let mut t = Vec::with_capacity(256 * PATCH);
    for b in 0..=255u8 {
        for &index in &cell_pixels(b).data {
            t.extend(
                PALETTE[index as usize]
                    .iter()
                    .map(|&c| f32::from(c) / 255.0),
            );
        }
    }
    t
}

/// The bytes of the first `cells` cells of packed words `[rows, words]` (four cells a
/// word, low byte first), `[rows · cells]`.
fn cell_bytes(words: Tensor<2, Int>, cells: usize) -> Tensor<1, Int> {
    let [rows, w] = words.dims();
    let bytes: Vec<Tensor<2, Int>> = (0..4)
        .map(|k| {
            words
                .clone()
                .bitwise_right_shift_scalar(8 * k)
                .bitwise_and_scalar(0xff)
        })
        .collect();
    Tensor::stack::<3>(bytes, 2) // [rows, words, 4]
        .reshape([rows, w * 4])
        .narrow(1, 0, cells)
        .reshape([rows * cells])
}

/// The stacked observations (`train.frame_stack`) `[rows, K · words]` of `obs` `[rows, words]` after `history`
/// (oldest first); `obs` itself without a history.
pub fn stack_frames(history: Option<&Tensor<3, Int>>, obs: Tensor<2, Int>) -> Tensor<2, Int> {
    let Some(h) = history else {
        return obs;
    };
    let [k, r, w] = h.dims();
    Tensor::cat(vec![h.clone().swap_dims(0, 1).reshape([r, k * w]), obs], 1)
}

/// The history after a step that acted on `obs`: the oldest frame out, `obs` in. Queue it
/// before the step: on the GPU the step overwrites the memory `obs` reads.
pub fn push_frame(history: Tensor<3, Int>, obs: Tensor<2, Int>) -> Tensor<3, Int> {
    let [k, r, w] = history.dims();
    let obs = obs.reshape([1, r, w]);
    if k == 1 {
        obs
    } else {
        Tensor::cat(vec![history.narrow(0, 1, k - 1), obs], 0)
    }
}

/// Builds the networks' inputs from env tensors; holds the device constants.
#[derive(Clone, Debug)]
pub struct Inputs {
    table: Tensor<2>,
    /// [`rgb_table`], when the players see RGB windows.
    rgb: Option<Tensor<2>>,
    /// Observations stacked per player row (`train.frame_stack`).
    frames: usize,
    /// `[players, player_extras]`: player-id one-hot and types.
    player_consts: Tensor<2>,
    /// For each player row of one step, its env (`[envs · players]`).
    env_of_row: Tensor<1, Int>,
    /// For each player row of one step, its player index.
    player_of_row: Tensor<1, Int>,
    layout: Layout,
    map_cells: usize,
    sees_tax: bool,
}

impl Inputs {
    /// The layout these inputs were made for.
    #[must_use]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The inputs of `game` with `layout` on `device`; the players' windows are RGB
    /// pictures when `rgb` is set, and `frames` observations deep.
    #[must_use]
    pub fn new(
        game: &Game,
        layout: Layout,
        sees_tax: bool,
        rgb: bool,
        frames: usize,
        device: &Device,
    ) -> Self {
        let n = layout.players;
        let with_trust = game.reward_form == RewardForm::ReleasedCode;
        let width = n + 1 + with_trust as usize;
        let mut consts = vec![0.0f32; n * width];
        for p in 0..n {
            let row = &mut consts[p * width..(p + 1) * width];
            row[p] = 1.0;
            row[n] = game.types.selfishness[p] as f32 / TYPE_LEVELS as f32;
            if with_trust {
                row[n + 1] = game.types.trust[p] as f32 / TYPE_LEVELS as f32;
            }
        }
        let rows = layout.num_envs * n;
        let env_of_row: Vec<i32> = (0..rows).map(|r| (r / n) as i32).collect();
        let player_of_row: Vec<i32> = (0..rows).map(|r| (r % n) as i32).collect();
        Self {
            table: Tensor::from_data(TensorData::new(channel_table(), [256, CHANNELS]), device),
            rgb: rgb.then(|| Tensor::from_data(TensorData::new(rgb_table(), [256, PATCH]), device)),
            frames,
            player_consts: Tensor::from_data(TensorData::new(consts, [n, width]), device),
            env_of_row: Tensor::from_data(TensorData::new(env_of_row, [rows]), device),
            player_of_row: Tensor::from_data(TensorData::new(player_of_row, [rows]), device),
            layout,
            map_cells: game.map.cells(),
            sees_tax,
        }
    }

    /// Floats per player beyond the window.
    #[must_use]
    pub fn player_extras(&self) -> usize {
        let tax = if self.sees_tax {
            self.layout.brackets + 1
        } else {
            0
        };
        self.player_consts.dims()[1] + tax
    }

    /// Cells of the principal's map.
    #[must_use]
    pub fn map_cells(&self) -> usize {
        self.map_cells
    }

    /// Unpacks packed words `[rows, words]` into `[rows, cells, CHANNELS]`.
    #[must_use]
    pub fn unpack(&self, words: Tensor<2, Int>, cells: usize) -> Tensor<3> {
        let rows = words.dims()[0];
        self.table
            .clone()
            .select(0, cell_bytes(words, cells))
            .reshape([rows, cells, CHANNELS])
    }

    /// Packed words per player row and frame.
    #[must_use]
    pub fn frame_words(&self) -> usize {
        self.layout.obs_stride / 4
    }

    /// Packed words per player row with every frame: what [`Inputs::windows`] takes.
    #[must_use]
    pub fn words(&self) -> usize {
        self.frames * self.frame_words()
    }

    /// The players' windows from their stacked packed observations `[rows, frames ·
    /// words]` (oldest frame first): `[rows, WINDOW_CELLS, frames · CHANNELS]`, or with
    /// RGB windows `[rows, 88 · 88, frames · 3]` (pixels row-major, as
    /// [`sed_core::render::rgb_observations`] lays them out, divided by 255). A cell's
    /// channels are its frames' channels, oldest first.
    #[must_use]
    pub fn windows(&self, obs: Tensor<2, Int>) -> Tensor<3> {
        if self.frames == 1 {
            return self.frame_windows(obs);
        }
        let rows = obs.dims()[0];
        let k = self.frames;
        let one = self.frame_windows(obs.reshape([rows * k, self.frame_words()]));
        let [_, cells, channels] = one.dims();
        one.reshape([rows, k, cells, channels])
            .swap_dims(1, 2)
            .reshape([rows, cells, k * channels])
    }

    /// The windows of one frame per row.
    fn frame_windows(&self, obs: Tensor<2, Int>) -> Tensor<3> {
        let Some(rgb) = &self.rgb else {
            return self.unpack(obs, WINDOW_CELLS);
        };
        let rows = obs.dims()[0];
        let side = WINDOW_COLS * CELL_PX;
        rgb.clone()
            .select(0, cell_bytes(obs, WINDOW_CELLS))
            .reshape([rows, WINDOW_ROWS, WINDOW_COLS, CELL_PX, CELL_PX * 3])
            .swap_dims(2, 3)
            .reshape([rows, side * side, 3])
    }
    /// The players' extra inputs `[rows, player_extras]` of one step's rows, from the
    /// principal's features `[envs, F]` of the same step.
    #[must_use]
    pub fn step_extras(&self, principal_features: Tensor<2>) -> Tensor<2> {
        self.extras(
            principal_features,
            self.env_of_row.clone(),
            self.player_of_row.clone(),
        )
    }

    /// Extra inputs of arbitrary rows: `feature_rows` `[K, F]` holds principal feature
    /// rows, `env_idx` picks each row's feature row, `player_idx` its player.
    #[must_use]
    pub fn extras(
        &self,
        feature_rows: Tensor<2>,
        env_idx: Tensor<1, Int>,
        player_idx: Tensor<1, Int>,
    ) -> Tensor<2> {
        let consts = self.player_consts.clone().select(0, player_idx);
        if !self.sees_tax {
            return consts;
        }
        let n = self.layout.players;
        let tax = feature_rows
            .select(0, env_idx)
            .narrow(1, n, self.layout.brackets + 1);
        Tensor::cat(vec![consts, tax], 1)
    }

    /// The principal's map `[envs, cells, CHANNELS]` from its packed words.
    #[must_use]
    pub fn principal_map(&self, words: Tensor<2, Int>) -> Tensor<3> {
        self.unpack(words, self.map_cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_decode_each_bit() {
        let t = channel_table();
        let row = |b: u8| &t[b as usize * CHANNELS..(b as usize + 1) * CHANNELS];
        assert_eq!(row(0), &[0.0; CHANNELS]);
        assert_eq!(row(bits::WALL)[0], 1.0);
        assert_eq!(
            row(bits::APPLE | bits::SELF),
            &[0., 1., 0., 1., 0., 0., 0., 0., 0., 0.]
        );
        let other_facing_west = bits::OTHER | 3 << bits::FACING_SHIFT;
        assert_eq!(
            row(other_facing_west),
            &[0., 0., 0., 0., 1., 0., 0., 0., 0., 1.]
        );
        // Facing bits without a player in the cell mean nothing.
        assert_eq!(row(2 << bits::FACING_SHIFT), &[0.0; CHANNELS]);
    }

    /// The game of `configs/smoke.toml`.
    fn smoke_game() -> Game {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.toml");
        sed_core::config::Config::load(&path, &[])
            .unwrap()
            .resolve()
            .unwrap()
            .game
    }

    #[test]
    fn rgb_windows_are_the_renderers_pictures() {
        use sed_core::obs::OBS_STRIDE;
        let game = smoke_game();
        let engine = sed_core::engine::Engine::new(game.clone(), 2);
        let (_, out, _) = engine.start().unwrap();
        // The engine's first observations, then windows holding every byte value.
        let mut obs = out.obs.clone();
        for k in 0..3 * OBS_STRIDE {
            obs.push((k * 7 % 256) as u8);
        }
        let rows = obs.len() / OBS_STRIDE;
        let dev = Device::flex();
        let inputs = Inputs::new(&game, engine.layout(), false, true, 1, &dev);
        let words: Vec<i32> = bytemuck::pod_collect_to_vec(&obs);
        let words =
            Tensor::<2, Int>::from_data(TensorData::new(words, [rows, OBS_STRIDE / 4]), &dev);
        let got = inputs.windows(words);
        assert_eq!(got.dims(), [rows, 88 * 88, 3]);
        let got: Vec<f32> = got.into_data().convert::<f32>().try_into_vec().unwrap();
        let want: Vec<f32> = sed_core::render::rgb_observations(&obs)
            .into_iter()
            .map(|c| f32::from(c) / 255.0)
            .collect();
        assert_eq!(got.len(), want.len());
        let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(first_bad, None, "pixel value {first_bad:?} differs");
    }

    #[test]
    fn frames_stack_oldest_first_and_enter_the_windows_as_channels() {
        let dev = Device::flex();
        let ints = |v: Vec<i32>, shape: [usize; 2]| {
            Tensor::<2, Int>::from_data(TensorData::new(v, shape), &dev)
        };
        // 2 rows of 3 words; frames are filled with their frame number times 10 plus the row.
        let frame = |k: i32| {
            ints(
                vec![10 * k, 10 * k, 10 * k, 10 * k + 1, 10 * k + 1, 10 * k + 1],
                [2, 3],
            )
        };
        let history = Tensor::stack::<3>(vec![frame(1), frame(2)], 0);
        let stacked = stack_frames(Some(&history), frame(3));
        let v: Vec<i32> = stacked.into_data().convert::<i32>().try_into_vec().unwrap();
        assert_eq!(
            v,
            [
                10, 10, 10, 20, 20, 20, 30, 30, 30, 11, 11, 11, 21, 21, 21, 31, 31, 31
            ]
        );
        let pushed = push_frame(history, frame(3));
        let v: Vec<i32> = pushed.into_data().convert::<i32>().try_into_vec().unwrap();
        assert_eq!(v, [20, 20, 20, 21, 21, 21, 30, 30, 30, 31, 31, 31]);
        assert_eq!(stack_frames(None, frame(4)).dims(), [2, 3]);

        // Two frames of real windows: each cell's channels are frame 1's, then frame 2's.
        let game = smoke_game();
        let engine = sed_core::engine::Engine::new(game.clone(), 1);
        let (mut state, mut out, mut actions) = engine.start().unwrap();
        let words = |o: &[u8]| {
            let w: Vec<i32> = bytemuck::pod_collect_to_vec(o);
            let len = w.len();
            Tensor::<2, Int>::from_data(
                TensorData::new(w, [game.players as usize, len / game.players as usize]),
                &dev,
            )
        };
        let first = words(&out.obs);
        actions
            .players
            .fill(sed_core::types::Action::Forward as u32);
        let params = sed_core::engine::StepParams {
            schedule: sed_core::principal::TaxSchedule::FULL,
            welfare: sed_core::welfare::Welfare::Utilitarian,
        };
        engine
            .step(&params, &actions, &mut state, &mut out)
            .unwrap();
        let second = words(&out.obs);
        for rgb in [false, true] {
            let one = Inputs::new(&game, engine.layout(), false, rgb, 1, &dev);
            let two = Inputs::new(&game, engine.layout(), false, rgb, 2, &dev);
            let both = two.windows(Tensor::cat(vec![first.clone(), second.clone()], 1));
            let [rows, cells, channels] = both.dims();
            let expected = Tensor::cat(
                vec![one.windows(first.clone()), one.windows(second.clone())],
                2,
            );
            assert_eq!(expected.dims(), [rows, cells, channels]);
            let (a, b): (Vec<f32>, Vec<f32>) = (
                both.into_data().convert::<f32>().try_into_vec().unwrap(),
                expected
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec()
                    .unwrap(),
            );
            assert_eq!(a, b, "rgb {rgb}");
        }
    }
}
