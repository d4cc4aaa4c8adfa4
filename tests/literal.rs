//! What only a picture can pin (SPEC §2–3), written out literally rather than computed from
//! the code under test: where each action takes a player for each facing, whole 11 × 11
//! windows for the three facings the rectangle test of `conformance.rs` does not cover,
//! the principal's map, and the spawn facings.
//!
//! Picture legend (one character per cell): `x` out of bounds, `#` wall, `a` live apple,
//! `g` grass (an empty apple cell with a live apple within the radius-2 diamond), `,` an
//! empty apple cell without one, `.` floor, `S` the observer, and another player by its
//! facing: in a player's window relative to the observer (`^` the same, `>` a quarter turn
//! clockwise, `v` opposite, `<` a quarter turn counter-clockwise), in the principal's map
//! absolute (`^` north, `>` east, `v` south, `<` west).

mod common;

use common::{Sim, resolved};
use sed_core::map::Map;
use sed_core::obs::{OBS_STRIDE, WINDOW_CELLS, bits};
use sed_core::types::{Action, facing};

/// The byte a picture character stands for.
fn byte(ch: char) -> u8 {
    let other = |rel: u8| bits::OTHER | rel << bits::FACING_SHIFT;
    match ch {
        'x' => bits::OUT_OF_BOUNDS,
        '#' => bits::WALL,
        'a' => bits::APPLE,
        'g' => bits::GRASS,
        ',' | '.' => 0,
        'S' => bits::SELF,
        '^' => other(0),
        '>' => other(1),
        'v' => other(2),
        '<' => other(3),
        _ => panic!("not a picture character: {ch:?}"),
    }
}

fn bytes(picture: &[&str]) -> Vec<u8> {
    picture
        .iter()
        .flat_map(|row| row.chars().map(byte))
        .collect()
}

/// The picture of `got`, for failure messages.
fn draw(got: &[u8], cols: usize) -> String {
    let legend = "x#ag.S^>v<";
    got.chunks(cols)
        .map(|row| {
            row.iter()
                .map(|&b| legend.chars().find(|&c| byte(c) == b).unwrap_or('?'))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The apple index of map cell `(row, col)`.
fn apple_at(map: &Map, row: u32, col: u32) -> u32 {
    let a = map.apple_index[(row * map.cols + col) as usize];
    assert_ne!(a, Map::NOT_APPLE, "({row}, {col}) is not an apple cell");
    a
}

/// An action and where it leaves the player: row, column, facing.
type Move = (Action, u32, u32, u32);

#[test]
fn each_action_lands_on_the_cell_the_rule_book_names_for_each_facing() {
    use Action::*;
    // From (12, 8), open floor with free cells all round: (action, row, col, facing after).
    let table: [(u32, [Move; 7]); 4] = [
        (
            facing::NORTH,
            [
                (Noop, 12, 8, facing::NORTH),
                (Forward, 11, 8, facing::NORTH),
                (Backward, 13, 8, facing::NORTH),
                (StepLeft, 12, 7, facing::NORTH),
                (StepRight, 12, 9, facing::NORTH),
                (TurnLeft, 12, 8, facing::WEST),
                (TurnRight, 12, 8, facing::EAST),
            ],
        ),
        (
            facing::EAST,
            [
                (Noop, 12, 8, facing::EAST),
                (Forward, 12, 9, facing::EAST),
                (Backward, 12, 7, facing::EAST),
                (StepLeft, 11, 8, facing::EAST),
                (StepRight, 13, 8, facing::EAST),
                (TurnLeft, 12, 8, facing::NORTH),
                (TurnRight, 12, 8, facing::SOUTH),
            ],
        ),
        (
            facing::SOUTH,
            [
                (Noop, 12, 8, facing::SOUTH),
                (Forward, 13, 8, facing::SOUTH),
                (Backward, 11, 8, facing::SOUTH),
                (StepLeft, 12, 9, facing::SOUTH),
                (StepRight, 12, 7, facing::SOUTH),
                (TurnLeft, 12, 8, facing::EAST),
                (TurnRight, 12, 8, facing::WEST),
            ],
        ),
        (
            facing::WEST,
            [
                (Noop, 12, 8, facing::WEST),
                (Forward, 12, 7, facing::WEST),
                (Backward, 12, 9, facing::WEST),
                (StepLeft, 13, 8, facing::WEST),
                (StepRight, 11, 8, facing::WEST),
                (TurnLeft, 12, 8, facing::SOUTH),
                (TurnRight, 12, 8, facing::NORTH),
            ],
        ),
    ];
    for (start, rows) in table {
        for (action, row, col, after) in rows {
            let mut sim = Sim::new(resolved("apple_picking.toml", &[]), 1);
            sim.park_all();
            sim.place(0, 0, 12, 8, start);
            sim.actions.players[0] = action as u32;
            sim.step();
            assert_eq!(
                sim.pose(0, 0),
                (row, col, after),
                "{action:?} from (12, 8) facing {start}"
            );
        }
    }
}

/// Player 0's window on the default map after one step in which nobody moves and nothing
/// regrows, with `players` placed as `(row, col, facing)` (the others parked on the first
/// spawn cells) and the apples at `eaten` gone.
fn window(players: &[(u32, u32, u32)], eaten: &[(u32, u32)]) -> Vec<u8> {
    let mut sim = Sim::new(
        resolved(
            "apple_picking.toml",
            &["env.regrowth_probabilities=[0.0, 0.0, 0.0, 0.0]"],
        ),
        1,
    );
    let map = sim.resolved.game.map.clone();
    sim.park_all();
    for (i, &(r, c, f)) in players.iter().enumerate() {
        sim.place(0, i, r, c, f);
    }
    for &(r, c) in eaten {
        sim.set_apple(0, apple_at(&map, r, c), false);
    }
    sim.step();
    let obs = &sim.out.obs[..OBS_STRIDE];
    assert!(
        obs[WINDOW_CELLS..].iter().all(|&b| b == 0),
        "padding is zero"
    );
    obs[..WINDOW_CELLS].to_vec()
}

const EATEN: [(u32, u32); 18] = [
    (1, 20),
    (1, 21),
    (1, 22),
    (2, 21),
    (2, 22),
    (3, 22),
    (3, 7),
    (3, 8),
    (4, 7),
    (4, 8),
    (4, 9),
    (5, 8),
    (8, 1),
    (8, 2),
    (8, 3),
    (8, 4),
    (9, 2),
    (9, 3),
];

fn assert_picture(got: &[u8], want: &[&str], what: &str) {
    let cols = want[0].len();
    assert_eq!(
        got,
        bytes(want),
        "{what}: got\n{}\nwant\n{}",
        draw(got, cols),
        want.join("\n")
    );
}

#[test]
fn the_window_facing_east_near_the_top_right_corner() {
    // Player 0 at (3, 18) facing east: forward is the map's east, its right the map's
    // south; player 1 at (5, 19) faces north, a quarter turn counter-clockwise of east.
    let got = window(&[(3, 18, facing::EAST), (5, 19, facing::NORTH)], &EATEN);
    #[rustfmt::skip]
    let want = [
        "xxxxxxxxxxx",
        "xxxxxxxxxxx",
        "xxxxxxxxxxx",
        "xxxxxxxxxxx",
        "xx#########",
        "xx#,,,....a",
        "xx#,,....aa",
        "xx#,....aaa",
        "xx#....<.aa",
        "xx#..S....a",
        "xx#..a.....",
    ];
    assert_picture(&got, &want, "facing east");
}

#[test]
fn the_window_facing_west_over_the_left_patch() {
    // Player 0 at (9, 5) facing west: its right is the map's north; player 1 at (11, 4)
    // faces east, opposite to it; players 2 and 3, parked at (14, 5) and (14, 6) facing
    // north, a quarter turn clockwise of west, are at its far left.
    let got = window(&[(9, 5, facing::WEST), (11, 4, facing::EAST)], &EATEN);
    #[rustfmt::skip]
    let want = [
        "xxxxxxxxxxx",
        "xxxxxxxxxxx",
        "xxxxxxxxxxx",
        "xxxxxxxxxxx",
        "###########",
        "......g....",
        ".....gga...",
        "....aggaa..",
        "...v.aga...",
        ">....Sa....",
        ">..........",
    ];
    assert_picture(&got, &want, "facing west");
}

#[test]
fn the_window_facing_south_sees_the_parked_players() {
    // Player 0 at (6, 6) facing south: its right is the map's west. Player 1 at (10, 8)
    // faces east (a quarter turn counter-clockwise of south); players 2–6 are parked at
    // (14, 5..=9) facing north, opposite to it.
    let got = window(&[(6, 6, facing::SOUTH), (10, 8, facing::EAST)], &EATEN);
    #[rustfmt::skip]
    let want = [
        "...........",
        "..vvvvv....",
        "...........",
        "...........",
        "...........",
        "...<....a..",
        ".......agg.",
        "......agggg",
        ".......aaa.",
        ".....S..a..",
        "...,.......",
    ];
    assert_picture(&got, &want, "facing south");
}

#[test]
fn the_principal_sees_the_whole_map_with_absolute_facings() {
    let mut sim = Sim::new(
        resolved(
            "smoke.toml",
            &["env.regrowth_probabilities=[0.0, 0.0, 0.0, 0.0]"],
        ),
        1,
    );
    let map = sim.resolved.game.map.clone();
    assert_eq!(sim.players(), 3);
    sim.actions.players.fill(Action::Noop as u32);
    sim.place(0, 0, 3, 6, facing::NORTH);
    sim.place(0, 1, 2, 3, facing::EAST);
    sim.place(0, 2, 4, 9, facing::WEST);
    for (r, c) in [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 1),
        (2, 2),
        (3, 1),
        (5, 5),
        (5, 6),
        (1, 9),
    ] {
        sim.set_apple(0, apple_at(&map, r, c), false);
    }
    sim.step();
    #[rustfmt::skip]
    let want = [
        "############",
        "#,,,..#..ga#",
        "#,,>..#...a#",
        "#g....^...a#",
        "#........<.#",
        "#aa..gga..a#",
        "############",
    ];
    let stride = sim.engine.layout().map_stride;
    let got = &sim.out.principal_map[..stride];
    let cells = want.len() * want[0].len();
    assert!(got[cells..].iter().all(|&b| b == 0), "padding is zero");
    assert_picture(&got[..cells], &want, "the principal's map");
}

#[test]
fn players_spawn_facing_each_direction_about_a_quarter_of_the_time() {
    let envs = 2048;
    let sim = Sim::new(resolved("apple_picking.toml", &[]), envs);
    let n = sim.players();
    for player in 0..n {
        let mut counts = [0u32; 4];
        for env in 0..envs {
            counts[sim.pose(env, player).2 as usize] += 1;
        }
        // Binomial(2048, 1/4): σ ≈ 19.6; 5σ either side.
        for (f, &k) in counts.iter().enumerate() {
            assert!(
                (k as f64 - envs as f64 / 4.0).abs() < 98.0,
                "player {player} faces {f} in {k} of {envs} envs: {counts:?}"
            );
        }
    }
}

#[test]
fn a_move_off_an_open_map_is_refused_and_moves_along_its_edges_succeed() {
    use Action::*;
    // A 3 × 3 map with no wall round it: only the grid's edge stops these moves.
    let mut config = sed_core::config::Config::default();
    config.env.map = Some("PAP\nA A\nPAP".into());
    config.env.players = 1;
    let mut sim = Sim::new(config.resolve().expect("open map"), 1);
    let north = facing::NORTH;
    // (from row, col, action, to row, col)
    let cases = [
        (0, 0, Forward, 0, 0),
        (0, 0, StepLeft, 0, 0),
        (2, 2, Backward, 2, 2),
        (2, 2, StepRight, 2, 2),
        (0, 2, StepLeft, 0, 1),
        (2, 0, Forward, 1, 0),
        (1, 2, StepLeft, 1, 1),
        (0, 1, Backward, 1, 1),
    ];
    for (r, c, action, to_r, to_c) in cases {
        sim.place(0, 0, r, c, north);
        sim.actions.players[0] = action as u32;
        sim.step();
        assert_eq!(
            sim.pose(0, 0),
            (to_r, to_c, north),
            "{action:?} from ({r}, {c})"
        );
    }
}
