// Steps 1-2 of sed-core's engine, one invocation per env: on a decision step a new voting
// round clears the round's apples, the period accumulators clear and the principal's
// choices set the rates; then the players act one at a time in a fresh random order, and a
// player entering a live apple eats it.

// sed_core::principal::apply_choice, with the divergence bound MAX_RATE_CHANGE.
fn apply_choice(current: u32, choice: u32, cap: u32) -> u32 {
    var wanted = current;
    if (choice < KEEP) {
        wanted = choice;
    }
    if (MAX_RATE_CHANGE != UNBOUNDED) {
        wanted = clamp(wanted, current - min(current, MAX_RATE_CHANGE), current + MAX_RATE_CHANGE);
    }
    return min(wanted, cap);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs) {
        return;
    }
    let t = steps[env];
    let tick = ticks[env];
    let base = env * PLAYERS;

    if (t % TAX_PERIOD == 0u) {
        if ((tick / TAX_PERIOD) % ROUND_PERIODS == 0u) {
            for (var i = 0u; i < PLAYERS; i++) {
                round_apples[base + i] = 0u;
                round_net[base + i] = 0;
            }
        }
        for (var i = 0u; i < PLAYERS; i++) {
            period_income[base + i] = 0u;
            period_net[base + i] = 0;
        }
        // A frozen principal (curriculum phase 1) leaves the rates as they are.
        if (params.principal_learns != 0u) {
            for (var b = 0u; b < BRACKETS; b++) {
                let k = env * BRACKETS + b;
                rates[k] = apply_choice(rates[k], choices[k], params.rate_cap);
            }
        }
    }

    // Per-player values live in storage (poses, ate, and the scratch order), not in
    // private arrays, so that any number of players fits; the occupancy grid answers
    // whether a cell is free.
    for (var i = 0u; i < PLAYERS; i++) {
        order[base + i] = i;
        ate[base + i] = 0u;
    }
    let shuffle = stream_key(tick_key(env, tick), STREAM_MOVE_ORDER);
    for (var k = 1u; k < PLAYERS; k++) {
        let i = PLAYERS - k;
        let j = draw(shuffle, i) % (i + 1u);
        let tmp = order[base + i];
        order[base + i] = order[base + j];
        order[base + j] = tmp;
    }
    for (var w = 0u; w < APPLE_WORDS; w++) {
        eaten[env * APPLE_WORDS + w] = 0u;
    }
    for (var k = 0u; k < PLAYERS; k++) {
        let i = order[base + k];
        // Out-of-range actions (never sampled by a policy) act as NOOP.
        let act = actions[base + i];
        if (act >= ACTIONS) {
            continue;
        }
        let pose = poses[base + i];
        let cell = pose >> 2u;
        let f = pose & 3u;
        let q = MOVE_QUARTER_TURNS[act];
        if (q == NO_MOVE) {
            poses[base + i] = (cell << 2u) | ((f + TURN_QUARTER_TURNS[act]) & 3u);
            continue;
        }
        let d = delta(f + q);
        let r = cell_row(cell) + d.x;
        let c = cell_col(cell) + d.y;
        if (r < 0 || c < 0 || r >= i32(ROWS) || c >= i32(COLS)) {
            continue;
        }
        let dest = u32(r) * COLS + u32(c);
        if (tables[T_CELL_STATIC + dest] != 0u) {
            continue;
        }
        if (occupant[env * OCCUPANT_STRIDE + dest] != 0u) {
            continue;
        }
        poses[base + i] = (dest << 2u) | f;
        occupant[env * OCCUPANT_STRIDE + cell] = 0u;
        occupant[env * OCCUPANT_STRIDE + dest] = i + 1u;
        let a = tables[T_APPLE_INDEX + dest];
        if (a != NOT_APPLE && apple_live(env, a)) {
            let w = env * APPLE_WORDS + (a >> 5u);
            let bit = 1u << (a & 31u);
            apples[w] &= ~bit;
            eaten[w] |= bit;
            ate[base + i] = 1u;
        }
    }
}
