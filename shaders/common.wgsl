// Shared by every game kernel: the exact integer-to-float conversion, geometry and
// indexing. Mirrors sed-core (reward.rs, obs.rs, types.rs); the constants it uses come from
// the header that sed-gpu generates from sed-core. The RNG is in rng.wgsl.

// Nearest f32 to v, ties to even, in integer arithmetic (sed_core::reward::exact_f32).
fn exact_f32(v: i32) -> f32 {
    if (v == 0) {
        return 0.0;
    }
    let bits = bitcast<u32>(v);
    let negative = v < 0;
    let mag = select(bits, 0u - bits, negative);
    let top = 31u - countLeadingZeros(mag);
    var exponent = top;
    var mant = 0u;
    if (top <= 23u) {
        mant = mag << (23u - top);
    } else {
        let shift = top - 23u;
        let m = mag >> shift;
        let rem = mag & ((1u << shift) - 1u);
        let half = 1u << (shift - 1u);
        let up = rem > half || (rem == half && (m & 1u) == 1u);
        mant = m + select(0u, 1u, up);
    }
    if (mant == (1u << 24u)) {
        mant = mant >> 1u;
        exponent = exponent + 1u;
    }
    return bitcast<f32>(select(0u, 0x80000000u, negative) | ((exponent + 127u) << 23u) | (mant & 0x7fffffu));
}

// One step in direction f: 0 north, 1 east, 2 south, 3 west.
fn delta(f: u32) -> vec2<i32> {
    switch (f & 3u) {
        case 0u: { return vec2<i32>(-1, 0); }
        case 1u: { return vec2<i32>(0, 1); }
        case 2u: { return vec2<i32>(1, 0); }
        default: { return vec2<i32>(0, -1); }
    }
}

fn cell_row(cell: u32) -> i32 {
    return i32(cell / COLS);
}

fn cell_col(cell: u32) -> i32 {
    return i32(cell % COLS);
}

// Window index (row * WINDOW_COLS + col) of map offset (dr, dc) seen by a player facing
// f, or -1 outside the window (sed_core::obs::window_position).
fn window_position(f: u32, dr: i32, dc: i32) -> i32 {
    let fwd = delta(f);
    let rgt = delta(f + 1u);
    let ahead = dr * fwd.x + dc * fwd.y;
    let right = dr * rgt.x + dc * rgt.y;
    if (ahead <= VIEW_FORWARD && ahead >= -VIEW_BACKWARD && abs(right) <= VIEW_SIDE) {
        return (VIEW_FORWARD - ahead) * i32(WINDOW_COLS) + VIEW_SIDE + right;
    }
    return -1;
}

// The flat index of this invocation in a 2-D dispatch of WG-wide workgroups.
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}
