// Step 3 of sed-core's engine, one invocation per env: every empty apple cell not eaten
// this step regrows with probability p[min(k, len - 1)], k its live neighbours in the
// post-eating snapshot; an apple regrowing under a player is eaten by it at once.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let env = thread_index(gid, nwg);
    if (env >= params.num_envs) {
        return;
    }
    let base = env * PLAYERS;
    let regrow = stream_key(tick_key(env, ticks[env]), STREAM_REGROW);
    var snap: array<u32, APPLE_WORDS>;
    for (var w = 0u; w < APPLE_WORDS; w++) {
        snap[w] = apples[env * APPLE_WORDS + w];
    }
    for (var w = 0u; w < APPLE_WORDS; w++) {
        var empty = ~snap[w] & ~eaten[env * APPLE_WORDS + w] & tables[T_APPLE_MASK + w];
        loop {
            if (empty == 0u) {
                break;
            }
            let a = w * 32u + countTrailingZeros(empty);
            empty &= empty - 1u;
            var live = 0u;
            let end = tables[T_NBR_OFFSETS + a + 1u];
            for (var k = tables[T_NBR_OFFSETS + a]; k < end; k++) {
                let b = tables[T_NBR + k];
                live += (snap[b >> 5u] >> (b & 31u)) & 1u;
            }
            let threshold = tables[T_THRESHOLDS + min(live, N_THRESHOLDS - 1u)];
            if (draw(regrow, a) < threshold) {
                let cell = tables[T_APPLE_CELLS + a];
                var eater = PLAYERS;
                for (var j = PLAYERS; j > 0u; j--) {
                    if ((poses[base + j - 1u] >> 2u) == cell) {
                        eater = j - 1u;
                    }
                }
                if (eater < PLAYERS) {
                    ate[base + eater] += 1u;
                } else {
                    apples[env * APPLE_WORDS + w] |= 1u << (a & 31u);
                }
            }
        }
    }
}
