// Shared by every kernel (prepended to each file): the flat index of an invocation in a
// dispatch of 256-wide workgroups laid out on x then y (more than 65,535 groups spill to y),
// and exp / erf written as the CPU kernels write them (src/kernels.rs), so GELU and softmax
// agree with the CPU to rounding.
fn flat_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (wg.y * groups.x + wg.x) * 256u + local;
}

fn exp_f32(x: f32) -> f32 {
    let clamped = clamp(x, -87.3, 88.7);
    let n = round(clamped * 1.442695041);
    let r = clamped - n * 0.69314575 - n * 1.4286068e-6;
    let poly = 1.0 + r * (1.0 + r * (0.5 + r * (0.16666667 + r * (0.041666668 + r * (0.008333334 + r * 0.0013888889)))));
    let e = ldexp(poly, i32(n));
    return select(e, 0.0, x < -87.3);
}

fn erf_f32(x0: f32) -> f32 {
    let x = clamp(x0, -4.0, 4.0);
    let x2 = x * x;
    var p = x2 * -2.7261423e-10 + 2.7706814e-8;
    p = x2 * p + -2.101024e-6;
    p = x2 * p + -5.6925064e-5;
    p = x2 * p + -7.3499063e-4;
    p = x2 * p + -2.9546001e-3;
    p = x2 * p + -1.6096033e-2;
    p = p * x;
    var q = x2 * -1.4566072e-5 + -2.1337406e-4;
    q = x2 * q + -1.682827e-3;
    q = x2 * q + -7.3733293e-3;
    q = x2 * q + -1.4264739e-2;
    return p / q;
}

fn gelu_f32(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_f32(x * 0.70710678));
}

fn gelu_derivative_f32(x: f32) -> f32 {
    return 0.5 * (1.0 + erf_f32(x * 0.70710678)) + x * 0.3989423 * exp_f32(-0.5 * x * x);
}
