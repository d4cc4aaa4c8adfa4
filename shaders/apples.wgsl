// Apple bitset helpers, for kernels that bind `apples` and `tables`.

fn apple_live(env: u32, a: u32) -> bool {
    return ((apples[env * APPLE_WORDS + (a >> 5u)] >> (a & 31u)) & 1u) == 1u;
}

// Whether any neighbour of apple cell a holds a live apple (the grass cue).
fn has_live_neighbour(env: u32, a: u32) -> bool {
    let end = tables[T_NBR_OFFSETS + a + 1u];
    for (var k = tables[T_NBR_OFFSETS + a]; k < end; k++) {
        if (apple_live(env, tables[T_NBR + k])) {
            return true;
        }
    }
    return false;
}
