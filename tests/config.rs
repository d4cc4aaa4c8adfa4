//! Configs: the shipped files resolve to the SPEC defaults, overrides apply, and every
//! invalid value is rejected with an error that names its field.

mod common;

use common::resolved;
use sed_core::config::Config;

#[test]
fn apple_picking_toml_is_the_spec_default() {
    let file = resolved("apple_picking.toml", &[]);
    let default = Config::default().resolve().unwrap();
    assert_eq!(file.game, default.game);
    assert_eq!(file.num_envs, default.num_envs);
    assert_eq!(file.curriculum, default.curriculum);
    let g = &file.game;
    assert_eq!(
        (g.players, g.episode_len, g.tax_period, g.round_periods),
        (7, 1000, 50, 20)
    );
    assert_eq!(g.brackets.len(), 3);
    assert_eq!(g.map.apples(), 64);
}

#[test]
fn a_tiled_map_scales_apples_and_spawns_and_round_trips() {
    let one = resolved("apple_picking.toml", &[]).game.map;
    let r = resolved(
        "apple_picking.toml",
        &["env.map_tiles=[15, 11]", "env.players=4096"],
    );
    let map = &r.game.map;
    assert_eq!((map.rows, map.cols), (16 * 15 + 2, 22 * 11 + 2));
    assert_eq!(map.apples(), 165 * one.apples());
    assert_eq!(map.spawn_capacity(), 165 * one.spawn_capacity());
    assert_eq!(round_trip(&r).game, r.game);
    // Without the tiling there is no room for the crowd.
    assert!(rejected(&["env.players=4096"]).contains("only 62 spawn cells"));
}

#[test]
fn smoke_toml_is_tiny() {
    let r = resolved("smoke.toml", &[]);
    assert_eq!((r.game.players, r.game.episode_len, r.num_envs), (3, 40, 8));
}

#[test]
fn overrides_apply_and_the_resolved_config_round_trips() {
    let r = resolved(
        "apple_picking.toml",
        &[
            "tax.period=25",
            "env.num_envs=3",
            "reward.form=released_code",
        ],
    );
    assert_eq!(r.game.tax_period, 25);
    assert_eq!(r.num_envs, 3);
    assert_eq!(
        r.game.reward_form,
        sed_core::reward::RewardForm::ReleasedCode
    );
    // The resolved config, written beside a run's outputs, resolves to the same game.
    assert_eq!(round_trip(&r).game, r.game);
}

/// The resolved config as written beside a run's outputs, resolved again.
fn round_trip(r: &sed_core::config::Resolved) -> sed_core::config::Resolved {
    Config::from_toml(&r.config.to_toml(), &[], "resolved")
        .unwrap()
        .resolve()
        .unwrap()
}

fn rejected(overrides: &[&str]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/apple_picking.toml");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match Config::load(&path, &overrides).and_then(|c| c.resolve()) {
        Ok(_) => panic!("{overrides:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_values_are_rejected_naming_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["env.num_envs=0"], "`env.num_envs`"),
        (&["env.players=0"], "`env.players`"),
        (
            &["env.players=4097"],
            "`env.players`: 4097 is outside 1..=4096",
        ),
        (&["env.map_file=\"maps/tiny.txt\""], "only 5 spawn cells"),
        (
            &["env.regrowth_probabilities=[0.0, 1.5]"],
            "`env.regrowth_probabilities[1]`: 1.5 is outside [0, 1]",
        ),
        (
            &["env.regrowth_probabilities=[]"],
            "`env.regrowth_probabilities`",
        ),
        (&["env.regrowth_radius=0"], "`env.regrowth_radius`"),
        (&["env.episode_len=1001"], "`env.episode_len`"),
        (&["tax.period=0"], "`tax.period`"),
        (
            &["tax.brackets=[[1, 10], [5, 20]]"],
            "`tax.brackets[1]`: brackets must increase",
        ),
        (&["tax.brackets=[[0, 10]]"], "`tax.brackets[0]`"),
        (&["tax.brackets=[[10, 5]]"], "`tax.brackets[0]`"),
        (&["tax.brackets=[]"], "`tax.brackets`"),
        (&["tax.max_rate_change=0.25"], "`tax.max_rate_change`"),
        (&["tax.max_rate_change=1.5"], "`tax.max_rate_change`"),
        (
            &["reward.selfishness=[0.5]"],
            "`reward.selfishness`: has 1 values for 7 players",
        ),
        (
            &["reward.trust=[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 2.0]"],
            "`reward.trust[6]`",
        ),
        (
            &["env.episode_len=2000000"],
            "`env.episode_len`: with 7 players, post-tax income over an episode of 2000000 steps can reach 2800000000 apple units, beyond the exact 32-bit range; at most 1533916 steps with 7 players",
        ),
        (
            &["vote.round_periods=40000"],
            "`vote.round_periods`: with 7 players, post-tax income over a voting round of 2000000 steps",
        ),
        (&["vote.round_periods=0"], "`vote.round_periods`"),
        (
            &[
                "vote.social_choice={ kind = \"fixed\", welfare = { kind = \"interpolated\", eta = 2.0 } }",
            ],
            "`vote.social_choice.welfare`",
        ),
        (
            &[
                "vote.social_choice={ kind = \"majority\", first = { kind = \"nash\" }, second = { kind = \"egalitarian\" }, threshold = -1.0 }",
            ],
            "`vote.social_choice.threshold`",
        ),
        (
            &["env.map=\"WWW\\nWPW\\nWWW\""],
            "`env.map`: give either `map` or `map_file`",
        ),
        (&["env.map_file=\"maps/missing.txt\""], "missing.txt"),
        (
            &["env.map_tiles=[0, 2]"],
            "`env.map_tiles`: [0, 2]: each count must be at least 1",
        ),
        (
            &["env.map_tiles=[16, 1]"],
            "`env.map_tiles`: [16, 1] makes a 258x24 map from the 18x24 one; at most 255 x 255 is supported, so at most [15, 11]",
        ),
        (&["env.map_tiles=[2, 12]"], "266 map from the 18x24 one"),
        (&["env.colour=3"], "colour"),
        (&["reward.form=\"fancy\""], "fancy"),
    ];
    for (overrides, expected) in cases {
        let message = rejected(overrides);
        assert!(
            message.contains(expected),
            "{overrides:?}: {message:?} does not contain {expected:?}"
        );
    }
}

#[test]
fn bad_maps_are_rejected_naming_the_problem() {
    let load = |map: &str| {
        let text = format!("[env]\nplayers = 1\nmap = {map:?}\n");
        Config::from_toml(&text, &[], "test")
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string()
    };
    assert!(load("WWW\nWPW\nWWW").contains("no apple cells"));
    assert!(load("WWWW\nWPA\nWWWW").contains("row 1 has 3 columns but row 0 has 4"));
    assert!(load("WWW\nWPX\nWWW").contains("unknown character 'X'"));
    assert!(load("WWW\nWAW\nWWW").contains("spawn cells"));
    let ok = Config::from_toml(
        "[env]\nplayers = 1\nmap = \"WWWW\\nWPAW\\nWWWW\"\n",
        &[],
        "test",
    )
    .unwrap();
    assert_eq!(ok.resolve().unwrap().game.map.apples(), 1);
}
