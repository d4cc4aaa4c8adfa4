//! Network inputs, built on the device from the env's packed buffers (SPEC §3).
//!
//! Each observation byte holds one bit per channel and, in its top two bits, the facing of
//! the player in the cell. Unpacking is a table lookup: the byte indexes a fixed
//! `[256, CHANNELS]` table whose row is the byte's channels as floats (wall, apple, grass,
//! self, other player, out of bounds, and the other player's facing one-hot), so a whole
//! batch of windows unpacks with one `select`.
//!
//! Players also get per-player constants (a player-id one-hot and the player's types) and,
//! when `train.player_sees_tax` is on, the env's current rates and position in the tax
//! period, taken from the principal's feature row of their env.

use burn::prelude::{Device, Int, Tensor, TensorData};
use sed_core::config::Game;
use sed_core::engine::Layout;
use sed_core::obs::{WINDOW_CELLS, bits};
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

/// Builds the networks' inputs from env tensors; holds the device constants.
#[derive(Clone, Debug)]
pub struct Inputs {
    table: Tensor<2>,
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

    /// The inputs of `game` with `layout` on `device`.
    #[must_use]
    pub fn new(game: &Game, layout: Layout, sees_tax: bool, device: &Device) -> Self {
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
        let [rows, w] = words.dims();
        let bytes: Vec<Tensor<2, Int>> = (0..4)
            .map(|k| {
                words
                    .clone()
                    .bitwise_right_shift_scalar(8 * k)
                    .bitwise_and_scalar(0xff)
            })
            .collect();
        let idx = Tensor::stack::<3>(bytes, 2) // [rows, words, 4]
            .reshape([rows, w * 4])
            .narrow(1, 0, cells)
            .reshape([rows * cells]);
        self.table
            .clone()
            .select(0, idx)
            .reshape([rows, cells, CHANNELS])
    }

    /// The players' windows, `[rows, WINDOW_CELLS, CHANNELS]`.
    #[must_use]
    pub fn windows(&self, obs: Tensor<2, Int>) -> Tensor<3> {
        self.unpack(obs, WINDOW_CELLS)
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
}
