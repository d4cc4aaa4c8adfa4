// The players' egocentric windows, one invocation per env and player: 11 x 11 cells turned
// so forward is up, each byte gathered from the principal's map (static and apple bits),
// out-of-bounds cells marked, then the player itself and the others it sees with their
// facing relative to its own, read from the principal's map too (sed-core obs.rs). Compiled
// twice: into `obs`, and, with FINAL_ONLY, into `final_obs` for the envs whose episode
// ended this step.

fn map_byte(env: u32, cell: u32) -> u32 {
    return (principal_map[env * MAP_WORDS + (cell >> 2u)] >> (8u * (cell & 3u))) & 0xffu;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = thread_index(gid, nwg);
    let env = idx / PLAYERS;
    let i = idx % PLAYERS;
    if (env >= params.num_envs) {
        return;
    }
    if (FINAL_ONLY && (flags[env] & FLAG_EPISODE_END) == 0u) {
        return;
    }
    let me = poses[env * PLAYERS + i];
    let f = me & 3u;
    let mr = cell_row(me >> 2u);
    let mc = cell_col(me >> 2u);
    let out = idx * OBS_WORDS;
    // The ground, the player itself, and the others it sees with their facing relative
    // to its own.
    for (var w = 0u; w < OBS_WORDS; w++) {
        var word = 0u;
        for (var k = 0u; k < 4u; k++) {
            let cell = w * 4u + k;
            if (cell >= WINDOW_CELLS) {
                break;
            }
            let at = window_cell(f, mr, mc, cell);
            var b = OBS_OUT_OF_BOUNDS;
            if (at >= 0) {
                // The principal's map marks every player with its absolute facing.
                let ground = map_byte(env, u32(at));
                b = ground & (OBS_WALL | OBS_APPLE | OBS_GRASS);
                if (cell == SELF_CELL) {
                    b |= OBS_SELF;
                } else if ((ground & OBS_OTHER) != 0u) {
                    let rel = ((ground >> OBS_FACING_SHIFT) + 4u - f) & 3u;
                    b |= OBS_OTHER | (rel << OBS_FACING_SHIFT);
                }
            }
            word |= b << (8u * k);
        }
        obs_out[out + w] = word;
    }
}
