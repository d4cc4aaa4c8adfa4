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
// a period, each player's after-tax apples (`taxed`, from which player_reward.wgsl computes
// the players' rewards), the principal's welfare-delta reward in exact integer arithmetic,
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

    // Per-player values live in storage, not in private arrays, so that any number of
    // players fits (ate: this step's apples, taxed: this step's after-tax apples).
    for (var i = 0u; i < PLAYERS; i++) {
        let got = ate[base + i];
        period_income[base + i] += got;
        round_apples[base + i] += got;
        stats[sb + STAT_CUR_APPLES + i] += got;
    }
    let settling = settle && params.tax_enabled != 0u;
    var revenue = 0u;
    if (settling) {
        // Each player's tax, kept in `taxed` until the net transfers below need it.
        for (var i = 0u; i < PLAYERS; i++) {
            let tx = tax_tenths(period_income[base + i], env);
            revenue += tx;
            taxed[base + i] = i32(tx);
        }
        stats[sb + STAT_CUR_REVENUE] += revenue;
    }
    for (var i = 0u; i < PLAYERS; i++) {
        // The net transfer m · (n · 10T(x_i) − 10R) (sed_core::tax::settle).
        var net = 0;
        if (settling) {
            net = i32(params.multiplier) * (i32(PLAYERS) * taxed[base + i] - i32(revenue));
        }
        let own = i32(ate[base + i]) * UNIT - net;
        taxed[base + i] = own;
        period_net[base + i] += own;
        round_net[base + i] += own;
        let s = sb + STAT_CUR_POST_TAX + i;
        stats[s] = bitcast<u32>(bitcast<i32>(stats[s]) + own);
    }

    var fl = 0u;
    var pr = 0.0;
    if (settle) {
        fl |= FLAG_PERIOD_END;
        // The round's totals at the period's start and end, in the objective's units
        // (raw apples, or after-tax apples in apple units).
        var sum_end = vec2<u32>(0u, 0u);
        var sum_start = vec2<u32>(0u, 0u);
        var min_end = 0x7fffffff;
        var min_start = 0x7fffffff;
        for (var i = 0u; i < PLAYERS; i++) {
            var end = i32(round_apples[base + i]);
            var start = end - i32(period_income[base + i]);
            if (WELFARE_POST_TAX != 0u) {
                end = round_net[base + i];
                start = end - period_net[base + i];
            }
            sum_end = i64_add(sum_end, i64_from(end));
            sum_start = i64_add(sum_start, i64_from(start));
            min_end = min(min_end, end);
            min_start = min(min_start, start);
        }
        // eta_num ≤ eta_den ≤ 256 · MAX_PLAYERS (the mean vote) fit in i32.
        let num = i64_add(
            i64_mul(i64_sub(sum_end, sum_start), i32(params.eta_num)),
            i64_mul(i64_from(min_end - min_start), i32(params.eta_den - params.eta_num)));
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
