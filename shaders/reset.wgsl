// Resets, one invocation per env. `reset_all` starts the run (tick 0); `auto_reset` ends
// the episodes that ended this step: it closes their statistics, spawns the players anew,
// restores every apple and, if configured, zeroes the rates (sed-core engine.rs, step 5).

// Spawns players and restores apples with the draws of `tick` (Engine::reset_world).
fn reset_world(env: u32, tick: u32) {
    let tk = tick_key(env, tick);
    let spawn = stream_key(tk, STREAM_SPAWN);
    let face = stream_key(tk, STREAM_FACING);
    for (var w = 0u; w < APPLE_WORDS; w++) {
        apples[env * APPLE_WORDS + w] = tables[T_APPLE_MASK + w];
        apples_prev[env * APPLE_WORDS + w] = tables[T_APPLE_MASK + w];
    }
    // The Q cells in a random order (Fisher–Yates): the first players stand on them.
    let order = stream_key(tk, STREAM_INSIDE_ORDER);
    var inside_cells: array<u32, INSIDE_SLOTS>;
    for (var i = 0u; i < N_INSIDE; i++) {
        inside_cells[i] = tables[T_INSIDE + i];
    }
    for (var i = N_INSIDE; i > 1u; i--) {
        let k = i - 1u;
        let j = draw(order, k) % (k + 1u);
        let c = inside_cells[k];
        inside_cells[k] = inside_cells[j];
        inside_cells[j] = c;
    }
    let inside = min(N_INSIDE, PLAYERS);
    let base = env * PLAYERS;
    let grid = env * OCCUPANT_STRIDE;
    // The old players leave the grid (reset_all has cleared it at the run's start).
    for (var i = 0u; i < PLAYERS; i++) {
        occupant[grid + (poses[base + i] >> 2u)] = 0u;
    }
    var counter = 0u;
    for (var i = 0u; i < PLAYERS; i++) {
        var cell = 0u;
        if (i < inside) {
            cell = inside_cells[i];
        } else {
            // Uniform over free P cells; config validation guarantees one exists.
            loop {
                let c = tables[T_SPAWN + draw(spawn, counter) % max(N_SPAWN, 1u)];
                counter += 1u;
                if (occupant[grid + c] == 0u) {
                    cell = c;
                    break;
                }
            }
        }
        poses[base + i] = (cell << 2u) | (draw(face, i) >> 30u);
        occupant[grid + cell] = i + 1u;
    }
}

@compute @workgroup_size(WG)
fn reset_all(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs) {
        return;
    }
    ticks[env] = 0u;
    steps[env] = 0u;
    for (var i = 0u; i < PLAYERS; i++) {
        period_income[env * PLAYERS + i] = 0u;
        period_net[env * PLAYERS + i] = 0;
        round_apples[env * PLAYERS + i] = 0u;
        round_net[env * PLAYERS + i] = 0;
        reward[env * PLAYERS + i] = 0.0;
    }
    for (var b = 0u; b < BRACKETS; b++) {
        rates[env * BRACKETS + b] = 0u;
    }
    for (var s = 0u; s < STATS_LEN; s++) {
        stats[env * STATS_LEN + s] = 0u;
    }
    for (var c = 0u; c < OCCUPANT_STRIDE; c++) {
        occupant[env * OCCUPANT_STRIDE + c] = 0u;
    }
    reset_world(env, 0u);
    principal_reward[env] = 0.0;
    terminated[env] = 0u;
    truncated[env] = 0u;
    flags[env] = FLAG_DECISION_NEXT;
}

@compute @workgroup_size(WG)
fn auto_reset(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs || (flags[env] & FLAG_EPISODE_END) == 0u) {
        return;
    }
    let sb = env * STATS_LEN;
    var live = 0u;
    for (var w = 0u; w < APPLE_WORDS; w++) {
        live += countOneBits(apples[env * APPLE_WORDS + w]);
    }
    stats[sb + STAT_EPISODES] += 1u;
    stats[sb + STAT_LAST_REVENUE] = stats[sb + STAT_CUR_REVENUE];
    stats[sb + STAT_CUR_REVENUE] = 0u;
    stats[sb + STAT_LAST_APPLES_LEFT] = live;
    for (var k = 0u; k < 2u * PLAYERS; k++) {
        stats[sb + STAT_LAST_APPLES + k] = stats[sb + STAT_CUR_APPLES + k];
        stats[sb + STAT_CUR_APPLES + k] = 0u;
    }
    reset_world(env, ticks[env]);
    if (RESET_RATES_EACH_EPISODE) {
        for (var b = 0u; b < BRACKETS; b++) {
            rates[env * BRACKETS + b] = 0u;
        }
    }
}
