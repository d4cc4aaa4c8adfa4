// 64-bit integers for the exact reward arithmetic (sed_core::reward): WGSL has none, so an
// i64 is a vec2<u32> of its two's-complement words, x the low and y the high one. Products
// are exact as long as the result fits in 64 bits, which config validation guarantees
// (RewardForm::numerator_bound, exact_welfare_bound). Self-contained: no header constants.

fn i64_from(v: i32) -> vec2<u32> {
    return vec2<u32>(bitcast<u32>(v), select(0u, 0xffffffffu, v < 0));
}

fn i64_is_negative(a: vec2<u32>) -> bool {
    return (a.y & 0x80000000u) != 0u;
}

fn i64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

// -a = ~a + 1; the low word carries into the high one only when it is zero.
fn i64_neg(a: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(0u - a.x, ~a.y + select(0u, 1u, a.x == 0u));
}

fn i64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return i64_add(a, i64_neg(b));
}

// The full 64-bit product of two u32, from 16-bit halves.
fn u32_mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}

// a · k, on magnitudes, with the sign put back.
fn i64_mul(a: vec2<u32>, k: i32) -> vec2<u32> {
    let a_negative = i64_is_negative(a);
    let mag = select(a, i64_neg(a), a_negative);
    let k_mag = select(bitcast<u32>(k), 0u - bitcast<u32>(k), k < 0);
    var p = u32_mul_wide(mag.x, k_mag);
    p.y += mag.y * k_mag;
    return select(p, i64_neg(p), a_negative != (k < 0));
}

// a >> s for s in 0..64.
fn u64_shr(a: vec2<u32>, s: u32) -> vec2<u32> {
    if (s == 0u) {
        return a;
    }
    if (s >= 32u) {
        return vec2<u32>(a.y >> (s - 32u), 0u);
    }
    return vec2<u32>((a.x >> s) | (a.y << (32u - s)), a.y >> s);
}

// Whether any of the bits of a below bit s (s in 0..64) is set.
fn u64_any_below(a: vec2<u32>, s: u32) -> bool {
    if (s == 0u) {
        return false;
    }
    if (s < 32u) {
        return (a.x & ((1u << s) - 1u)) != 0u;
    }
    if (s == 32u) {
        return a.x != 0u;
    }
    return a.x != 0u || (a.y & ((1u << (s - 32u)) - 1u)) != 0u;
}

// Nearest f32 to v, ties to even, in integer arithmetic (sed_core::reward::exact_f32).
fn exact_f32(v: vec2<u32>) -> f32 {
    let negative = i64_is_negative(v);
    let mag = select(v, i64_neg(v), negative);
    if (mag.x == 0u && mag.y == 0u) {
        return 0.0;
    }
    var top = 31u - countLeadingZeros(mag.x);
    if (mag.y != 0u) {
        top = 63u - countLeadingZeros(mag.y);
    }
    var exponent = top;
    var mant = 0u;
    if (top <= 23u) {
        mant = mag.x << (23u - top);
    } else {
        let shift = top - 23u;
        let kept = u64_shr(mag, shift).x;
        let round = (u64_shr(mag, shift - 1u).x & 1u) == 1u;
        let sticky = u64_any_below(mag, shift - 1u);
        let up = round && (sticky || (kept & 1u) == 1u);
        mant = kept + select(0u, 1u, up);
    }
    if (mant == (1u << 24u)) {
        mant = mant >> 1u;
        exponent = exponent + 1u;
    }
    return bitcast<f32>(select(0u, 0x80000000u, negative) | ((exponent + 127u) << 23u) | (mant & 0x7fffffu));
}
