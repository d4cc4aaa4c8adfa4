// Uniform noise in (0, 1) for the trainer's samplers, one invocation per element of a
// [rows, cols] buffer: element (row, col) is sed_core::rng::policy_uniform(RUN_KEY,
// noise.stream, row, noise.tick, col), bit for bit.

struct NoiseParams { len: u32, cols: u32, stream: u32, tick: u32 }
@group(0) @binding(0) var<uniform> noise: NoiseParams;
@group(0) @binding(1) var<storage, read_write> noise_out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= noise.len) {
        return;
    }
    let row = i / noise.cols;
    let col = i % noise.cols;
    let d = draw(stream_key(tick_key(row, noise.tick), noise.stream), col);
    // (d >> 9 + 0.5) * 2^-23: exact in f32 (sed_core::rng::unit_open).
    noise_out[i] = (f32(d >> 9u) + 0.5) * (1.0 / 8388608.0);
}
