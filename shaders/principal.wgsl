// The principal's view. `map_all` (one invocation per env and map word) writes every env's
// global map: static walls, apples, grass, and each player with its absolute facing.
// `map_ended` rewrites it for envs that reset this step. `features` (one invocation per
// env) writes post-tax period incomes, rates, and the positions in period and round.
// The player windows are gathered from this map (obs.wgsl).

fn write_map_word(env: u32, w: u32) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
        let cell = w * 4u + k;
        if (cell >= CELLS) {
            break;
        }
        var b = tables[T_CELL_STATIC + cell];
        let a = tables[T_APPLE_INDEX + cell];
        if (a != NOT_APPLE) {
            if (apple_live(env, a)) {
                b = OBS_APPLE;
            } else if (has_live_neighbour(env, a)) {
                b = OBS_GRASS;
            }
        }
        let o = occupant[env * OCCUPANT_STRIDE + cell];
        if (o != 0u) {
            let p = poses[env * PLAYERS + o - 1u];
            b |= OBS_OTHER | ((p & 3u) << OBS_FACING_SHIFT);
        }
        word |= b << (8u * k);
    }
    principal_map[env * MAP_WORDS + w] = word;
}

@compute @workgroup_size(WG)
fn map_all(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = thread_index(gid, nwg);
    let env = idx / MAP_WORDS;
    if (env >= params.num_envs) {
        return;
    }
    write_map_word(env, idx % MAP_WORDS);
}

@compute @workgroup_size(WG)
fn map_ended(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = thread_index(gid, nwg);
    let env = idx / MAP_WORDS;
    if (env >= params.num_envs || (flags[env] & FLAG_EPISODE_END) == 0u) {
        return;
    }
    write_map_word(env, idx % MAP_WORDS);
}

@compute @workgroup_size(WG)
fn features(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs) {
        return;
    }
    let out = env * PRINCIPAL_FEATURES;
    for (var i = 0u; i < PLAYERS; i++) {
        principal_features[out + i] = exact_f32(i64_from(period_net[env * PLAYERS + i])) * bitcast<f32>(INV_UNIT_BITS);
    }
    for (var b = 0u; b < BRACKETS; b++) {
        principal_features[out + PLAYERS + b] = exact_f32(i64_from(i32(rates[env * BRACKETS + b]))) * bitcast<f32>(TENTH_BITS);
    }
    let k = out + PLAYERS + BRACKETS;
    principal_features[k] = exact_f32(i64_from(i32(steps[env] % TAX_PERIOD))) * bitcast<f32>(INV_PERIOD_BITS);
    principal_features[k + 1u] = exact_f32(i64_from(i32((ticks[env] / TAX_PERIOD) % ROUND_PERIODS))) * bitcast<f32>(INV_ROUND_BITS);
}
