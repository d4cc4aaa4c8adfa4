//! The engine's contract with its caller: bad input is an error naming what is wrong,
//! never a panic.

mod common;

use common::{Sim, resolved};
use sed_core::engine::EngineError;

#[test]
fn out_of_range_actions_are_errors() {
    let mut sim = Sim::new(resolved("smoke.toml", &[]), 2);
    sim.actions.players[4] = 7;
    let err = sim
        .engine
        .step(&sim.params, &sim.actions, &mut sim.state, &mut sim.out)
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::PlayerAction {
            env: 1,
            player: 1,
            value: 7
        }
    );
    sim.actions.players[4] = 0;
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
    assert_eq!(one.out.obs, sim.out.obs[..3 * 124].to_vec());
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
