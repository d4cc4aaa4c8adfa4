//! The kernels: which buffers each binds, and the WGSL each is compiled from.
//!
//! Every constant and every binding declaration reaches WGSL from here, generated from
//! `sed-core`: the shaders in `shaders/` name them and never type a number of the game.

use std::fmt::Write as _;

use sed_core::config::Game;
use sed_core::engine::{Layout, flags};
use sed_core::obs::{self, bits};
use sed_core::principal::KEEP;
use sed_core::reward::{RewardForm, apple_unit};
use sed_core::rng::stream;
use sed_core::stats;
use sed_core::types::{Action, TYPE_LEVELS};

/// Invocations per workgroup.
pub const WORKGROUP: u32 = 64;

/// Declares [`Params`] and the list of its WGSL fields from one list of `u32` fields.
macro_rules! uniform {
    ($($(#[$doc:meta])* $field:ident,)+) => {
        /// The per-step uniform: what [`sed_core::engine::StepParams`] says, as the GPU
        /// reads it.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct Params {
            $($(#[$doc])* pub $field: u32,)+
        }

        /// The WGSL fields of [`Params`], in order.
        const PARAMS_FIELDS: &[&str] = &[$(stringify!($field),)+];
    };
}

uniform! {
    /// Envs in the batch.
    num_envs,
    /// 1 when taxes are settled.
    tax_enabled,
    /// Largest allowed rate, in tenths.
    rate_cap,
    /// Multiplier on net transfers, in tenths.
    multiplier,
    /// Numerator of η in the principal's linear welfare.
    eta_num,
    /// Denominator of η.
    eta_den,
    /// `f32` bits of `1 / eta_den`.
    eta_scale_bits,
    /// 1 when the principal's choices set the rates (0 in curriculum phase 1: frozen).
    principal_learns,
}
const _: () = assert!(size_of::<Params>() == 4 * PARAMS_FIELDS.len());
const _: () = assert!(
    size_of::<Params>().is_multiple_of(16),
    "uniform buffers are 16-byte aligned"
);

/// Declares [`Buf`] with its WGSL name and element type, so that the variant list,
/// [`Buf::ALL`], [`Buf::COUNT`] and [`Buf::wgsl`] cannot drift apart.
macro_rules! buffers {
    ($($(#[$doc:meta])* $name:ident => ($wgsl:literal, $ty:literal),)+) => {
        /// Every storage buffer of the engine. The per-env ones mirror
        /// [`sed_core::engine::State`], [`sed_core::engine::Outputs`] and
        /// [`sed_core::engine::Actions`] field for field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(usize)]
        pub enum Buf {
            $($(#[$doc])* $name,)+
        }

        impl Buf {
            /// Every buffer, in order.
            pub const ALL: &'static [Buf] = &[$(Buf::$name,)+];
            /// Number of buffers.
            pub const COUNT: usize = Buf::ALL.len();

            /// The WGSL name and element type.
            #[must_use]
            pub fn wgsl(self) -> (&'static str, &'static str) {
                match self {
                    $(Buf::$name => ($wgsl, $ty),)+
                }
            }
        }
    };
}

buffers! {
    /// Static tables of the game (map, neighbours, spawns, types, brackets).
    Tables => ("tables", "u32"),
    /// `State::tick`.
    Tick => ("ticks", "u32"),
    /// `State::t`.
    T => ("steps", "u32"),
    /// `State::pose`.
    Pose => ("poses", "u32"),
    /// `State::apples`.
    Apples => ("apples", "u32"),
    /// `State::apples_prev`.
    ApplesPrev => ("apples_prev", "u32"),
    /// `State::period_income`.
    PeriodIncome => ("period_income", "u32"),
    /// `State::period_net`.
    PeriodNet => ("period_net", "i32"),
    /// `State::round_apples`.
    RoundApples => ("round_apples", "u32"),
    /// `State::round_net`.
    RoundNet => ("round_net", "i32"),
    /// `State::rates`.
    Rates => ("rates", "u32"),
    /// `State::stats`.
    Stats => ("stats", "u32"),
    /// Scratch: raw apples each player ate this step.
    Ate => ("ate", "u32"),
    /// Scratch: apple cells eaten this step; `regrow` turns it into the apples before it.
    Eaten => ("eaten", "u32"),
    /// Each env's grid of cells (one word per cell, `map_stride` words per env): the
    /// player standing there plus one, or 0. Derived from `State::pose` and kept up to date
    /// by every kernel that moves players, so no kernel loops over all players to find one.
    Occupant => ("occupant", "u32"),
    /// Scratch: the order the players move in this step.
    Order => ("order", "u32"),
    /// Scratch: each player's after-tax apples this step, in apple units.
    Taxed => ("taxed", "i32"),
    /// `Outputs::obs` (packed bytes).
    Obs => ("obs_out", "u32"),
    /// `Outputs::final_obs`.
    FinalObs => ("obs_out", "u32"),
    /// `Outputs::principal_map` (packed bytes).
    PrincipalMap => ("principal_map", "u32"),
    /// `Outputs::principal_features`.
    PrincipalFeatures => ("principal_features", "f32"),
    /// `Outputs::reward`.
    Reward => ("reward", "f32"),
    /// `Outputs::principal_reward`.
    PrincipalReward => ("principal_reward", "f32"),
    /// `Outputs::terminated`.
    Terminated => ("terminated", "u32"),
    /// `Outputs::truncated`.
    Truncated => ("truncated", "u32"),
    /// `Outputs::flags`.
    Flags => ("flags", "u32"),
    /// `Actions::players`.
    Actions => ("actions", "u32"),
    /// `Actions::principal`.
    Choices => ("choices", "u32"),
}

impl Buf {
    /// Size in bytes for a layout (never zero: wgpu rejects empty bindings).
    #[must_use]
    pub fn bytes(self, l: &Layout, tables_len: usize) -> u64 {
        let (e, n) = (l.num_envs, l.players);
        let words = match self {
            Buf::Tables => tables_len,
            Buf::Tick
            | Buf::T
            | Buf::PrincipalReward
            | Buf::Terminated
            | Buf::Truncated
            | Buf::Flags => e,
            Buf::Pose
            | Buf::PeriodIncome
            | Buf::PeriodNet
            | Buf::RoundApples
            | Buf::RoundNet
            | Buf::Ate
            | Buf::Order
            | Buf::Taxed
            | Buf::Reward
            | Buf::Actions => e * n,
            Buf::Apples | Buf::ApplesPrev | Buf::Eaten => e * l.apple_words,
            Buf::Occupant => e * l.map_stride,
            Buf::Rates | Buf::Choices => e * l.brackets,
            Buf::Stats => e * l.stats,
            Buf::Obs | Buf::FinalObs => e * n * l.obs_stride / 4,
            Buf::PrincipalMap => e * l.map_stride / 4,
            Buf::PrincipalFeatures => e * l.principal_features,
        };
        4 * words.max(1) as u64
    }
}

/// How many invocations a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One per env.
    Env,
    /// One per env and player.
    Player,
    /// One per env and word of the principal's map.
    MapWord,
}

/// A kernel: its WGSL parts, entry point and bindings (`true` = written).
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    /// Label.
    pub name: &'static str,
    /// WGSL sources after the generated header.
    pub sources: &'static [&'static str],
    /// Entry point.
    pub entry: &'static str,
    /// Storage bindings 1.. (binding 0 is the uniform).
    pub bindings: &'static [(Buf, bool)],
    /// Invocations.
    pub threads: Threads,
    /// Compile `obs.wgsl` for final observations only.
    pub final_only: bool,
}

const RNG: &str = include_str!("../../../shaders/rng.wgsl");
const COMMON: &str = include_str!("../../../shaders/common.wgsl");
/// `shaders/int64.wgsl`: 64-bit integers as pairs of `u32` words and the exact
/// integer-to-float conversion (self-contained, for tests of its own).
pub const INT64: &str = include_str!("../../../shaders/int64.wgsl");
const NOISE: &str = include_str!("../../../shaders/noise.wgsl");
const APPLES: &str = include_str!("../../../shaders/apples.wgsl");
const MOVE: &str = include_str!("../../../shaders/move.wgsl");
const REGROW: &str = include_str!("../../../shaders/regrow.wgsl");
const REWARD: &str = include_str!("../../../shaders/reward.wgsl");
const PLAYER_REWARD: &str = include_str!("../../../shaders/player_reward.wgsl");
const RESET: &str = include_str!("../../../shaders/reset.wgsl");
const PRINCIPAL: &str = include_str!("../../../shaders/principal.wgsl");
const OBS: &str = include_str!("../../../shaders/obs.wgsl");

use Buf as B;

const RESET_BINDINGS: &[(Buf, bool)] = &[
    (B::Tables, false),
    (B::Tick, true),
    (B::T, true),
    (B::Pose, true),
    (B::Occupant, true),
    (B::Apples, true),
    (B::ApplesPrev, true),
    (B::PeriodIncome, true),
    (B::PeriodNet, true),
    (B::RoundApples, true),
    (B::RoundNet, true),
    (B::Rates, true),
    (B::Stats, true),
    (B::Reward, true),
    (B::PrincipalReward, true),
    (B::Terminated, true),
    (B::Truncated, true),
    (B::Flags, true),
];
const PRINCIPAL_BINDINGS: &[(Buf, bool)] = &[
    (B::Tables, false),
    (B::Tick, false),
    (B::T, false),
    (B::Pose, false),
    (B::Occupant, false),
    (B::Apples, false),
    (B::PeriodNet, false),
    (B::Rates, false),
    (B::Flags, false),
    (B::PrincipalMap, true),
    (B::PrincipalFeatures, true),
];

/// Starts the run.
pub const RESET_ALL: KernelSpec = KernelSpec {
    name: "reset_all",
    sources: &[RNG, COMMON, RESET],
    entry: "reset_all",
    bindings: RESET_BINDINGS,
    threads: Threads::Env,
    final_only: false,
};

/// The principal's map of every env (before any reset, so final observations gather from it).
pub const MAP_ALL: KernelSpec = KernelSpec {
    name: "map_all",
    sources: &[RNG, COMMON, INT64, APPLES, PRINCIPAL],
    entry: "map_all",
    bindings: PRINCIPAL_BINDINGS,
    threads: Threads::MapWord,
    final_only: false,
};

/// The principal's features.
pub const FEATURES: KernelSpec = KernelSpec {
    name: "features",
    sources: &[RNG, COMMON, INT64, APPLES, PRINCIPAL],
    entry: "features",
    bindings: PRINCIPAL_BINDINGS,
    threads: Threads::Env,
    final_only: false,
};

/// The players' windows.
pub const PLAYER_OBS: KernelSpec = KernelSpec {
    name: "obs",
    sources: &[RNG, COMMON, OBS],
    entry: "main",
    bindings: &[
        (B::Pose, false),
        (B::Flags, false),
        (B::PrincipalMap, false),
        (B::Obs, true),
    ],
    threads: Threads::Player,
    final_only: false,
};

/// The step, in dispatch order.
pub const STEP: [KernelSpec; 10] = [
    KernelSpec {
        name: "move",
        sources: &[RNG, COMMON, APPLES, MOVE],
        entry: "main",
        bindings: &[
            (B::Tables, false),
            (B::Tick, false),
            (B::T, false),
            (B::Pose, true),
            (B::Occupant, true),
            (B::Apples, true),
            (B::PeriodIncome, true),
            (B::PeriodNet, true),
            (B::RoundApples, true),
            (B::RoundNet, true),
            (B::Rates, true),
            (B::Eaten, true),
            (B::Ate, true),
            (B::Order, true),
            (B::Actions, false),
            (B::Choices, false),
        ],
        threads: Threads::Env,
        final_only: false,
    },
    KernelSpec {
        name: "regrow",
        sources: &[RNG, COMMON, REGROW],
        entry: "main",
        bindings: &[
            (B::Tables, false),
            (B::Tick, false),
            (B::Occupant, false),
            (B::Apples, true),
            (B::ApplesPrev, true),
            (B::Eaten, true),
            (B::Ate, true),
        ],
        threads: Threads::Env,
        final_only: false,
    },
    KernelSpec {
        name: "reward",
        sources: &[RNG, COMMON, INT64, REWARD],
        entry: "main",
        bindings: &[
            (B::Tables, false),
            (B::Tick, true),
            (B::T, true),
            (B::Ate, false),
            (B::Taxed, true),
            (B::PeriodIncome, true),
            (B::PeriodNet, true),
            (B::RoundApples, true),
            (B::RoundNet, true),
            (B::Rates, false),
            (B::Stats, true),
            (B::PrincipalReward, true),
            (B::Terminated, true),
            (B::Truncated, true),
            (B::Flags, true),
        ],
        threads: Threads::Env,
        final_only: false,
    },
    KernelSpec {
        name: "player_reward",
        sources: &[RNG, COMMON, INT64, PLAYER_REWARD],
        entry: "main",
        bindings: &[
            (B::Tables, false),
            (B::Pose, false),
            (B::Occupant, false),
            (B::Ate, false),
            (B::Taxed, false),
            (B::Reward, true),
        ],
        threads: Threads::Player,
        final_only: false,
    },
    MAP_ALL,
    KernelSpec {
        name: "final_obs",
        sources: &[RNG, COMMON, OBS],
        entry: "main",
        bindings: &[
            (B::Pose, false),
            (B::Flags, false),
            (B::PrincipalMap, false),
            (B::FinalObs, true),
        ],
        threads: Threads::Player,
        final_only: true,
    },
    KernelSpec {
        name: "auto_reset",
        sources: &[RNG, COMMON, RESET],
        entry: "auto_reset",
        bindings: RESET_BINDINGS,
        threads: Threads::Env,
        final_only: false,
    },
    KernelSpec {
        name: "map_ended",
        sources: &[RNG, COMMON, INT64, APPLES, PRINCIPAL],
        entry: "map_ended",
        bindings: PRINCIPAL_BINDINGS,
        threads: Threads::MapWord,
        final_only: false,
    },
    FEATURES,
    PLAYER_OBS,
];

/// After a reset, the observations: principal map, features, player windows.
pub const OBSERVE: [KernelSpec; 3] = [MAP_ALL, FEATURES, PLAYER_OBS];

/// The static tables of a game, with the offset of each table.
#[derive(Clone, Debug)]
pub struct Tables {
    /// All tables, concatenated.
    pub words: Vec<u32>,
    /// `(WGSL constant name, offset)` of each table.
    pub offsets: Vec<(&'static str, usize)>,
}

impl Tables {
    /// Builds the tables of `game`.
    #[must_use]
    pub fn new(game: &Game) -> Self {
        let map = &game.map;
        let mut words = Vec::new();
        let mut offsets = Vec::new();
        let mut push = |name: &'static str, table: &[u32]| {
            offsets.push((name, words.len()));
            words.extend_from_slice(table);
        };
        let statics: Vec<u32> = map
            .tiles
            .iter()
            .map(|&t| {
                if t == sed_core::map::Tile::Wall {
                    bits::WALL as u32
                } else {
                    0
                }
            })
            .collect();
        push("T_CELL_STATIC", &statics);
        push("T_APPLE_INDEX", &map.apple_index);
        push("T_APPLE_CELLS", &map.apple_cells);
        push("T_APPLE_MASK", &map.apple_mask());
        push("T_NBR_OFFSETS", &map.neighbour_offsets);
        push("T_NBR", &map.neighbours);
        push("T_THRESHOLDS", &game.regrowth_thresholds);
        push("T_SPAWN", &map.spawn_cells);
        push("T_INSIDE", &map.inside_spawn_cells);
        push("T_SIGMA", &game.types.selfishness);
        push("T_BETA", &game.types.trust);
        let lo: Vec<u32> = game.brackets.iter().map(|b| b.lo).collect();
        let hi: Vec<u32> = game.brackets.iter().map(|b| b.hi).collect();
        push("T_BRACKET_LO", &lo);
        push("T_BRACKET_HI", &hi);
        Self { words, offsets }
    }
}

/// The generated WGSL header: constants of the game and the layout, the `Params` struct,
/// and the binding declarations of `spec`.
#[must_use]
pub fn header(game: &Game, layout: &Layout, tables: &Tables, spec: &KernelSpec) -> String {
    let mut h = String::from("// Generated by sed-gpu from sed-core; do not edit.\n");
    let mut u = |name: &str, v: u64| writeln!(h, "const {name}: u32 = {v}u;").unwrap();
    let map = &game.map;
    u("WG", WORKGROUP as u64);
    u("ROWS", map.rows as u64);
    u("COLS", map.cols as u64);
    u("CELLS", map.cells() as u64);
    u("PLAYERS", layout.players as u64);
    u("BRACKETS", layout.brackets as u64);
    u("APPLE_WORDS", layout.apple_words as u64);
    u("MAP_WORDS", (layout.map_stride / 4) as u64);
    u("OCCUPANT_STRIDE", layout.map_stride as u64);
    u("OBS_WORDS", (layout.obs_stride / 4) as u64);
    u("WINDOW_CELLS", obs::WINDOW_CELLS as u64);
    u("WINDOW_COLS", obs::WINDOW_COLS as u64);
    u(
        "SELF_CELL",
        (obs::SELF_ROW * obs::WINDOW_COLS + obs::SELF_COL) as u64,
    );
    u("EPISODE_LEN", game.episode_len as u64);
    u("TAX_PERIOD", game.tax_period as u64);
    u("ROUND_PERIODS", game.round_periods as u64);
    u(
        "WELFARE_POST_TAX",
        matches!(game.welfare_of, sed_core::config::WelfareOf::PostTaxIncome) as u64,
    );
    u("RUN_KEY", game.run_key as u64);
    u(
        "REWARD_FORM",
        matches!(game.reward_form, RewardForm::ReleasedCode) as u64,
    );
    u("REWARD_FORM_PAPER", 0);
    u("REWARD_SCALE_BITS", game.reward_scale.to_bits() as u64);
    u("N_THRESHOLDS", game.regrowth_thresholds.len() as u64);
    u("N_SPAWN", map.spawn_cells.len() as u64);
    u("N_INSIDE", map.inside_spawn_cells.len() as u64);
    u("INSIDE_SLOTS", map.inside_spawn_cells.len().max(1) as u64);
    u("NOT_APPLE", sed_core::map::Map::NOT_APPLE as u64);
    u("KEEP", KEEP as u64);
    u("ACTIONS", Action::COUNT as u64);
    u("UNBOUNDED", u32::MAX as u64);
    u(
        "MAX_RATE_CHANGE",
        game.max_rate_change_tenths.unwrap_or(u32::MAX) as u64,
    );
    u("STREAM_MOVE_ORDER", stream::MOVE_ORDER as u64);
    u("STREAM_REGROW", stream::REGROW as u64);
    u("STREAM_SPAWN", stream::SPAWN as u64);
    u("STREAM_FACING", stream::FACING as u64);
    u("STREAM_INSIDE_ORDER", stream::INSIDE_ORDER as u64);
    u("FLAG_DECISION_NEXT", flags::DECISION_NEXT as u64);
    u("FLAG_PERIOD_END", flags::PERIOD_END as u64);
    u("FLAG_ROUND_END", flags::ROUND_END as u64);
    u("FLAG_EPISODE_END", flags::EPISODE_END as u64);
    u("OBS_WALL", bits::WALL as u64);
    u("OBS_APPLE", bits::APPLE as u64);
    u("OBS_GRASS", bits::GRASS as u64);
    u("OBS_SELF", bits::SELF as u64);
    u("OBS_OTHER", bits::OTHER as u64);
    u("OBS_OUT_OF_BOUNDS", bits::OUT_OF_BOUNDS as u64);
    u("OBS_FACING_SHIFT", bits::FACING_SHIFT as u64);
    let n = layout.players;
    u("STATS_LEN", stats::len(n) as u64);
    u("STAT_EPISODES", stats::EPISODES as u64);
    u("STAT_LAST_REVENUE", stats::LAST_REVENUE as u64);
    u("STAT_LAST_APPLES_LEFT", stats::LAST_APPLES_LEFT as u64);
    u("STAT_CUR_REVENUE", stats::CUR_REVENUE as u64);
    u("STAT_LAST_APPLES", stats::last_apples(n) as u64);
    u("STAT_CUR_APPLES", stats::cur_apples(n) as u64);
    u("STAT_CUR_POST_TAX", stats::cur_post_tax(n) as u64);
    u("PRINCIPAL_FEATURES", layout.principal_features as u64);
    u(
        "INV_UNIT_BITS",
        (1.0 / apple_unit(n as u32) as f32).to_bits() as u64,
    );
    u("TENTH_BITS", 0.1f32.to_bits() as u64);
    u(
        "INV_PERIOD_BITS",
        (1.0 / game.tax_period as f32).to_bits() as u64,
    );
    u(
        "INV_ROUND_BITS",
        (1.0 / game.round_periods as f32).to_bits() as u64,
    );
    u("NO_MOVE", u32::MAX as u64);
    for &(name, offset) in &tables.offsets {
        u(name, offset as u64);
    }
    let mut i = |name: &str, v: i64| writeln!(h, "const {name}: i32 = {v};").unwrap();
    i("VIEW_FORWARD", obs::VIEW_FORWARD as i64);
    i("VIEW_BACKWARD", obs::VIEW_BACKWARD as i64);
    i("VIEW_SIDE", obs::VIEW_SIDE as i64);
    i("UNIT", apple_unit(n as u32) as i64);
    i("TYPE_LEVELS", TYPE_LEVELS as i64);
    let quarter = |f: fn(Action) -> u32| {
        Action::ALL
            .iter()
            .map(|&a| format!("{}u", f(a)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        h,
        "const MOVE_QUARTER_TURNS = array<u32, {}>({});",
        Action::COUNT,
        quarter(|a| a.move_quarter_turns().unwrap_or(u32::MAX))
    )
    .unwrap();
    writeln!(
        h,
        "const TURN_QUARTER_TURNS = array<u32, {}>({});",
        Action::COUNT,
        quarter(Action::turn_quarter_turns)
    )
    .unwrap();
    writeln!(
        h,
        "const RESET_RATES_EACH_EPISODE: bool = {};",
        game.reset_rates_each_episode
    )
    .unwrap();
    writeln!(h, "const FINAL_ONLY: bool = {};", spec.final_only).unwrap();
    writeln!(
        h,
        "struct Params {{ {} }}",
        PARAMS_FIELDS
            .iter()
            .map(|f| format!("{f}: u32"))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    writeln!(h, "@group(0) @binding(0) var<uniform> params: Params;").unwrap();
    for (k, &(buf, write)) in spec.bindings.iter().enumerate() {
        let (name, ty) = buf.wgsl();
        let access = if write { "read_write" } else { "read" };
        writeln!(
            h,
            "@group(0) @binding({}) var<storage, {access}> {name}: array<{ty}>;",
            k + 1
        )
        .unwrap();
    }
    h
}

/// The uniform of the noise kernel ([`NOISE`]): `len` elements of a row-major buffer with
/// `cols` columns, drawn from `stream` at `tick`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NoiseParams {
    /// Elements to fill (rows × cols).
    pub len: u32,
    /// Columns per row.
    pub cols: u32,
    /// The RNG stream (`sed_core::rng::stream`).
    pub stream: u32,
    /// The tick the draws are keyed by.
    pub tick: u32,
}
const _: () = assert!(size_of::<NoiseParams>() == 16);

/// The WGSL of the noise kernel: the trainer's sampling noise, keyed by the game's run key.
#[must_use]
pub fn noise_source(game: &Game) -> String {
    let mut s = String::from("// Generated by sed-gpu from sed-core; do not edit.\n");
    writeln!(s, "const WG: u32 = {WORKGROUP}u;").unwrap();
    writeln!(s, "const RUN_KEY: u32 = {}u;", game.run_key).unwrap();
    for part in [RNG, NOISE] {
        s.push('\n');
        s.push_str(part);
    }
    s
}

/// The whole WGSL source of `spec`.
#[must_use]
pub fn source(game: &Game, layout: &Layout, tables: &Tables, spec: &KernelSpec) -> String {
    let mut s = header(game, layout, tables, spec);
    for part in spec.sources {
        s.push('\n');
        s.push_str(part);
    }
    s
}
