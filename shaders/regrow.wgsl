// Step 3 of sed-core's engine (SPEC §2, Melting Pot's timing), one invocation per env: an
// apple cell empty at the end of steps t−2 (`apples_prev`) and t−1 (the apples before this
// step's eating: `apples | eaten`) regrows with probability p[min(k, len − 1)], k its live
// neighbours at the end of step t−2; an apple regrowing under a player is eaten by it at
// once. Then `apples_prev` becomes the world at the end of step t−1. The kernel keeps no
// per-env arrays of its own (maps up to 255 × 255): `eaten`, scratch, first becomes the
// apples before this step.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs) {
        return;
    }
    let base = env * PLAYERS;
    let words = env * APPLE_WORDS;
    let regrow = stream_key(tick_key(env, ticks[env]), STREAM_REGROW);
    for (var w = 0u; w < APPLE_WORDS; w++) {
        eaten[words + w] |= apples[words + w];
    }
    for (var w = 0u; w < APPLE_WORDS; w++) {
        var eligible = ~eaten[words + w] & ~apples_prev[words + w] & tables[T_APPLE_MASK + w];
        loop {
            if (eligible == 0u) {
                break;
            }
            let a = w * 32u + countTrailingZeros(eligible);
            eligible &= eligible - 1u;
            var live = 0u;
            let end = tables[T_NBR_OFFSETS + a + 1u];
            for (var k = tables[T_NBR_OFFSETS + a]; k < end; k++) {
                let b = tables[T_NBR + k];
                live += (apples_prev[words + (b >> 5u)] >> (b & 31u)) & 1u;
            }
            let threshold = tables[T_THRESHOLDS + min(live, N_THRESHOLDS - 1u)];
            if (draw(regrow, a) < threshold) {
                let cell = tables[T_APPLE_CELLS + a];
                let eater = occupant[env * OCCUPANT_STRIDE + cell];
                if (eater != 0u) {
                    ate[base + eater - 1u] += 1u;
                } else {
                    apples[words + w] |= 1u << (a & 31u);
                }
            }
        }
    }
    for (var w = 0u; w < APPLE_WORDS; w++) {
        apples_prev[words + w] = eaten[words + w];
    }
}
