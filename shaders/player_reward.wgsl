// Step 4 of sed-core's engine, the players' part, one invocation per env and player, after
// reward.wgsl has written this step's after-tax apples (`taxed`): the reward of one player
// from its own apples and those of the others in its window, found through the occupancy
// grid, as an exact 64-bit numerator (sed_core::reward::RewardForm::numerator).

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = thread_index(gid, nwg);
    let env = idx / PLAYERS;
    let i = idx % PLAYERS;
    if (env >= params.num_envs) {
        return;
    }
    let base = env * PLAYERS;
    let me = poses[base + i] >> 2u;
    let f = poses[base + i] & 3u;
    var seen_taxed = vec2<u32>(0u, 0u);
    var seen_raw = 0;
    for (var w = 0u; w < WINDOW_CELLS; w++) {
        let cell = window_cell(f, cell_row(me), cell_col(me), w);
        if (w == SELF_CELL || cell < 0) {
            continue;
        }
        let o = occupant[env * OCCUPANT_STRIDE + u32(cell)];
        if (o != 0u) {
            seen_taxed = i64_add(seen_taxed, i64_from(taxed[base + o - 1u]));
            seen_raw += i32(ate[base + o - 1u]);
        }
    }
    let sigma = i32(tables[T_SIGMA + i]);
    let beta = i32(tables[T_BETA + i]);
    let own = taxed[base + i];
    var num = vec2<u32>(0u, 0u);
    if (REWARD_FORM == REWARD_FORM_PAPER) {
        num = i64_add(i64_mul(i64_from(own), sigma), i64_mul(seen_taxed, TYPE_LEVELS - sigma));
    } else {
        let social = (TYPE_LEVELS - beta) * (sigma * i32(ate[base + i]) + (TYPE_LEVELS - sigma) * seen_raw);
        num = i64_add(i64_mul(i64_from(own), beta * TYPE_LEVELS), i64_mul(i64_from(social), UNIT));
    }
    reward[idx] = exact_f32(num) * bitcast<f32>(REWARD_SCALE_BITS);
}
