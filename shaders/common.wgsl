// Shared by every game kernel: geometry and indexing. Mirrors sed-core (obs.rs, types.rs);
// the constants it uses come from the header that sed-gpu generates from sed-core. The RNG
// is in rng.wgsl, the exact 64-bit arithmetic and integer-to-float conversion in
// int64.wgsl. The occupancy grid `occupant` (the player on a cell plus one, or 0) is indexed
// `env * OCCUPANT_STRIDE + cell`.

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

// The map cell of window cell `w` of a player at (mr, mc) facing f, or -1 off the map.
fn window_cell(f: u32, mr: i32, mc: i32, w: u32) -> i32 {
    let fwd = delta(f);
    let rgt = delta(f + 1u);
    let ahead = VIEW_FORWARD - i32(w / WINDOW_COLS);
    let right = i32(w % WINDOW_COLS) - VIEW_SIDE;
    let r = mr + ahead * fwd.x + right * rgt.x;
    let c = mc + ahead * fwd.y + right * rgt.y;
    if (r < 0 || c < 0 || r >= i32(ROWS) || c >= i32(COLS)) {
        return -1;
    }
    return r * i32(COLS) + c;
}

// The flat index of this invocation in a 2-D dispatch of WG-wide workgroups.
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}
