// The project's one counter-based RNG (sed_core::rng), for every kernel: a pure integer
// hash of (run key, env or row, tick, stream, index). RUN_KEY comes from the header.

// Chris Wellons' lowbias32, as sed_core::rng::mix.
fn mix(x0: u32) -> u32 {
    var x = x0;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn tick_key(env: u32, tick: u32) -> u32 {
    return mix(mix(RUN_KEY ^ env) ^ tick);
}

fn stream_key(tk: u32, stream: u32) -> u32 {
    return mix(tk ^ (stream * 0x9e3779b9u));
}

fn draw(sk: u32, index: u32) -> u32 {
    return mix(sk ^ index);
}
