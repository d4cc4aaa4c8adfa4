// The tax on period income x in tenths of an apple, given the env's rates
// (sed_core::tax::tax_tenths).
fn tax_tenths(x: u32, env: u32) -> u32 {
    var total = 0u;
    for (var b = 0u; b < BRACKETS; b++) {
        let lo = tables[T_BRACKET_LO + b];
        let top = min(x, tables[T_BRACKET_HI + b]);
        if (top >= lo) {
            total += rates[env * BRACKETS + b] * (top - lo + 1u);
        }
    }
    return total;
}


// Steps 4-5 of sed-core's engine, one invocation per env: taxes settled on the last step of
// a period, rewards in exact integer arithmetic, the principal's welfare-delta reward,
// statistics, boundary flags, and the clock. The world reset itself is auto_reset's.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs) {
        return;
    }
    let base = env * PLAYERS;
    let sb = env * STATS_LEN;
    let t = steps[env];
    let tick = ticks[env];
    let settle = t % TAX_PERIOD == TAX_PERIOD - 1u;

    var got: array<u32, PLAYERS>;
    var net: array<i32, PLAYERS>;
    var taxed: array<i32, PLAYERS>;
    var pose: array<u32, PLAYERS>;
    for (var i = 0u; i < PLAYERS; i++) {
        got[i] = ate[base + i];
        period_income[base + i] += got[i];
        round_apples[base + i] += got[i];
        stats[sb + STAT_CUR_APPLES + i] += got[i];
        net[i] = 0;
        pose[i] = poses[base + i];
    }
    if (settle && params.tax_enabled != 0u) {
        var revenue = 0u;
        for (var i = 0u; i < PLAYERS; i++) {
            let tx = tax_tenths(period_income[base + i], env);
            revenue += tx;
            net[i] = i32(PLAYERS) * i32(tx);
        }
        for (var i = 0u; i < PLAYERS; i++) {
            net[i] = i32(params.multiplier) * (net[i] - i32(revenue));
        }
        stats[sb + STAT_CUR_REVENUE] += revenue;
    }
    for (var i = 0u; i < PLAYERS; i++) {
        taxed[i] = i32(got[i]) * UNIT - net[i];
        period_net[base + i] += taxed[i];
        round_net[base + i] += taxed[i];
        let s = sb + STAT_CUR_POST_TAX + i;
        stats[s] = bitcast<u32>(bitcast<i32>(stats[s]) + taxed[i]);
    }

    for (var i = 0u; i < PLAYERS; i++) {
        let me = pose[i] >> 2u;
        let f = pose[i] & 3u;
        var seen_taxed = 0;
        var seen_raw = 0;
        for (var j = 0u; j < PLAYERS; j++) {
            let other = pose[j] >> 2u;
            if (j != i && window_position(f, cell_row(other) - cell_row(me), cell_col(other) - cell_col(me)) >= 0) {
                seen_taxed += taxed[j];
                seen_raw += i32(got[j]);
            }
        }
        let sigma = i32(tables[T_SIGMA + i]);
        let beta = i32(tables[T_BETA + i]);
        var num = 0;
        if (REWARD_FORM == REWARD_FORM_PAPER) {
            num = sigma * taxed[i] + (TYPE_LEVELS - sigma) * seen_taxed;
        } else {
            num = beta * TYPE_LEVELS * taxed[i]
                + (TYPE_LEVELS - beta) * UNIT * (sigma * i32(got[i]) + (TYPE_LEVELS - sigma) * seen_raw);
        }
        reward[base + i] = exact_f32(num) * bitcast<f32>(REWARD_SCALE_BITS);
    }

    var fl = 0u;
    var pr = 0.0;
    if (settle) {
        fl |= FLAG_PERIOD_END;
        // The round's totals at the period's start and end, in the objective's units
        // (raw apples, or after-tax apples in apple units).
        var sum_end = 0;
        var sum_start = 0;
        var min_end = 0x7fffffff;
        var min_start = 0x7fffffff;
        for (var i = 0u; i < PLAYERS; i++) {
            var end = i32(round_apples[base + i]);
            var start = end - i32(period_income[base + i]);
            if (WELFARE_POST_TAX != 0u) {
                end = round_net[base + i];
                start = end - period_net[base + i];
            }
            sum_end += end;
            sum_start += start;
            min_end = min(min_end, end);
            min_start = min(min_start, start);
        }
        let num = i32(params.eta_num) * (sum_end - sum_start)
            + i32(params.eta_den - params.eta_num) * (min_end - min_start);
        pr = exact_f32(num) * bitcast<f32>(params.eta_scale_bits);
        if (((tick / TAX_PERIOD) + 1u) % ROUND_PERIODS == 0u) {
            fl |= FLAG_ROUND_END;
        }
    }
    principal_reward[env] = pr;

    ticks[env] = tick + 1u;
    var next = t + 1u;
    terminated[env] = 0u;
    truncated[env] = 0u;
    if (next == EPISODE_LEN) {
        fl |= FLAG_EPISODE_END;
        truncated[env] = 1u;
        next = 0u;
    }
    steps[env] = next;
    if (next % TAX_PERIOD == 0u) {
        fl |= FLAG_DECISION_NEXT;
    }
    flags[env] = fl;
}
