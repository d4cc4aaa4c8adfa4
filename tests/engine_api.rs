//! The engine's contract with its caller: bad input is an error naming what is wrong,
//! never a panic.

mod common;

use common::{Sim, resolved};
use sed_core::engine::EngineError;

#[test]
fn out_of_range_actions_are_errors() {
    let mut sim = Sim::new(resolved("smoke.toml", &[]), 2);
    // Flat index 5 of 2 envs × 3 players: env 1, player 2.
    sim.actions.players[5] = 7;
    let err = sim
        .engine
        .step(&sim.params, &sim.actions, &mut sim.state, &mut sim.out)
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::PlayerAction {
            env: 1,
            player: 2,
            value: 7
        }
    );
    sim.actions.players[5] = 0;
    sim.actions.principal[5] = 12;
    let err = sim
        .engine
        .step(&sim.params, &sim.actions, &mut sim.state, &mut sim.out)
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::PrincipalAction {
            env: 1,
            head: 2,
            value: 12
        }
    );
    assert_eq!(sim.state.t, vec![0, 0], "a rejected step changes nothing");
}

#[test]
fn wrong_buffer_sizes_are_errors() {
    let mut sim = Sim::new(resolved("smoke.toml", &[]), 2);
    sim.out.reward.pop();
    let err = sim
        .engine
        .step(&sim.params, &sim.actions, &mut sim.state, &mut sim.out)
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::BufferLength {
            name: "reward",
            len: 5,
            expected: 6
        }
    );
}

#[test]
fn a_single_env_and_a_ragged_last_block_step_like_a_batch() {
    // 37 envs split into blocks with a short last one; env 36 must equal a batch of its own
    // only in layout, and every env must step.
    let mut sim = Sim::new(resolved("smoke.toml", &[]), 37);
    for _ in 0..5 {
        sim.step();
    }
    assert_eq!(sim.state.t, vec![5; 37]);
    let mut one = Sim::new(resolved("smoke.toml", &[]), 1);
    for _ in 0..5 {
        one.step();
    }
    // Env 0 of both batches draws from the same keys.
    assert_eq!(one.state.pose, sim.state.pose[..3].to_vec());
    let stride = sed_core::obs::OBS_STRIDE;
    assert_eq!(one.out.obs, sim.out.obs[..3 * stride].to_vec());
    // Env 36, alone in the ragged last block, steps as it does inside a full block.
    let mut full = Sim::new(resolved("smoke.toml", &[]), 64);
    for _ in 0..5 {
        full.step();
    }
    let n = 3;
    let w = sim.engine.layout().apple_words;
    assert_eq!(
        sim.state.pose[36 * n..37 * n],
        full.state.pose[36 * n..37 * n]
    );
    assert_eq!(
        sim.state.apples[36 * w..37 * w],
        full.state.apples[36 * w..37 * w]
    );
    assert_eq!(
        sim.out.obs[36 * n * stride..37 * n * stride],
        full.out.obs[36 * n * stride..37 * n * stride]
    );
    assert_eq!(
        sim.out.reward[36 * n..37 * n],
        full.out.reward[36 * n..37 * n]
    );
}

#[test]
fn render_shows_the_world() {
    let sim = Sim::new(resolved("smoke.toml", &[]), 1);
    let text =
        sed_core::render::render(&sim.resolved.game.map, &sim.engine.layout(), &sim.state, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0], "WWWWWWWWWWWW");
    assert!(text.contains('0') && text.contains('1') && text.contains('2'));
    assert_eq!(text.matches('A').count(), 16, "all apples at reset");
    assert!(lines[7].starts_with("t=0 facing:"));
}
