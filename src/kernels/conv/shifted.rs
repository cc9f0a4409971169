//! The weight gradient of a stride-1 convolution on compact positions (as `compact.rs`), read
//! from **column-shifted copies** of each input plane instead of merged masked loads: copy
//! `(ci, kx)` holds `x[ci][r − pad][ox + kx − pad]` at `r·ow + ox` (zero outside the plane), so
//! that the input of output position `p` at kernel offset `(ky, kx)` lies at `p + ky·ow` of copy
//! `kx`, a plain load of `L` consecutive values whatever rows the vector spans. A tile of `G`
//! filters × `T` kernel offsets then loads `G + T` vectors per `G·T` multiply-adds (the merged
//! form loads `G + 2·KX`). The copies cost stores (`k·hp·ow` values per input channel and sample:
//! 8 % of 4b's weight gradient on this project's Zen 4 since the ninth session of 2026-12-07, see
//! [`write_copies`]), so they pay only where the merged tiles are short of registers, for more
//! filters than one merged tile takes ([`pays`]; `examples/conv_layers.rs`, one thread, AVX-512,
//! seventh session, when the copies cost twice as much): 4b's first layer (8 filters)
//! 0.96–0.97 of the merged form's time (0.86 in another build: 4b's working set, copies, dY and
//! partial sums, exceeds L1, and where the buffers land moves it), the CIFAR VGG's first (3 → 16)
//! 0.99; 4a's (5 filters) 1.02, so 4a keeps the merged form. (A forward pass on the copies was
//! slower than `compact.rs`'s on all three: its `NV`-wide tiles already hide the merged loads.
//! On AVX2 these tiles, 2 × 3 at most in 16 registers, ran at half the full-width tiles' speed.)
//!
//! Generic over the width; 16 partial sums per weight whatever the width (lane `j` sums the
//! positions `≡ j (mod 16)` of the compact map, in order), the same sums as `compact.rs`'s weight
//! gradient, so the same bits.

use super::ConvDims;
use super::simd::{ALIGN, add_partials, aligned, balanced, fold_partials, round16};
use crate::kernels::simd::{Avx512, Simd};

/// Partial sums per weight (whatever the width).
const PS: usize = 16;
/// Values after the last copy: a row's last vector spills up to `L − 1` values past its end, and
/// the last vector of positions reads up to `L − 1` values past the copies.
const TAIL: usize = 16;

/// The most values a sample's copies may take (256 KiB of f32, a quarter of this project's L2):
/// beyond it they would not stay in cache between the tiles that reread them, and the scratch
/// would grow `k`-fold over the input planes (a kernel as tall as the plane).
const MAX_COPIES: usize = 1 << 16;

/// Whether the weight gradient of `d` (where `compact.rs` applies) is faster on the copies: more
/// than 5 filters (measured, above), and copies of at most [`MAX_COPIES`] values a sample.
pub(super) fn pays(d: &ConvDims) -> bool {
    d.f > 5 && d.c.saturating_mul(d.k).saturating_mul(copy_stride(d)) <= MAX_COPIES
}

/// Stride of the shifted copies: `hp·ow` rounded up to 16 floats, so that each starts on a
/// 64-byte boundary when the first does.
fn copy_stride(d: &ConvDims) -> usize {
    round16((d.h + 2 * d.pad) * d.ow())
}

/// Length of one sample's shifted copies (`c·k` of [`copy_stride`]) with their zero tail, and of
/// the padded plane they are made from when `pad > 0`.
fn copies_len(d: &ConvDims) -> usize {
    let padded = if d.pad > 0 { (d.h + 2 * d.pad) * (d.w + 2 * d.pad) + PS } else { 0 };
    d.c * d.k * copy_stride(d) + TAIL + padded
}

/// The scratch [`weight_grad`] resizes to (so that a caller can size every thread's buffer up
/// front; only asked where [`pays`], so at most [`MAX_COPIES`] values and the partial sums).
pub(super) fn scratch_len(d: &ConvDims) -> usize {
    ALIGN + copies_len(d) + d.f * d.c * d.k * d.k * PS
}

/// Writes sample `ni`'s shifted copies into `buf` (`copies_len(d)` values). Row `r` of copy
/// `(ci, kx)` is `ow` consecutive values of the (padded) plane from `r·wp + kx`: copied a vector at a
/// time, rows in order, each row's last vector (a half-width one when the row's last values fit
/// it) spilling into the next row's place (overwritten next) or into the tail. (This project's
/// Zen 4, rows of 22 values: a 16- and an 8-value copy per row took 0.65 of the time of two
/// 16-value ones, whose second store wrote 10 values the next row rewrote; with the row's full
/// vectors in a loop of their own, 4b's first layer's backward went 472 → 447 µs in
/// `examples/conv_layers.rs`, the copies from 13 % to 8 % of it. Vectors assembled from
/// two rows, to be stored aligned, were slower: the masked or blended loads' latency, and later a
/// two-source permute's.)
#[inline(always)]
fn shift_copies<S: Simd>(s: S, d: &ConvDims, x: &[f32], ni: usize, buf: &mut [f32]) {
    let (hp, wp, ow, l) = (d.h + 2 * d.pad, d.w + 2 * d.pad, d.ow(), S::LANES);
    let cs = copy_stride(d);
    let (copies, pbuf) = buf[..copies_len(d)].split_at_mut(d.c * d.k * cs + TAIL);
    assert!(d.stride == 1 && S::LANES <= TAIL && ow + d.k - 1 == wp && hp * ow <= cs);
    assert!(pbuf.len() >= if d.pad > 0 { hp * wp + PS } else { 0 });
    for ci in 0..d.c {
        // the plane and whatever follows it (read past its end only by values that are overwritten)
        let src: &[f32] = if d.pad == 0 {
            &x[(ni * d.c + ci) * d.h * d.w..]
        } else {
            super::simd::padded(d, x, ni, ci, &mut pbuf[..hp * wp]);
            &pbuf[..]
        };
        assert!(src.len() >= hp * wp);
        for kx in 0..d.k {
            let dst = copies[(ci * d.k + kx) * cs..].as_mut_ptr();
            for r in 0..hp {
                let (at, to) = (r * wp + kx, r * ow);
                let mut j = 0;
                // SAFETY: each full vector reads `at + j .. at + j + L`, inside the row
                // (`j + L ≤ ow`, `at + ow ≤ hp·wp ≤ src.len()`), and stores below `to + ow`.
                while j + l <= ow {
                    unsafe { s.store(dst.add(to + j), s.load(src.as_ptr().add(at + j))) };
                    j += l;
                }
                if j == ow {
                    continue;
                }
                // The row's last `ow − j` values: as a half (or full) vector where it can be
                // read from `src`, else one by one. SAFETY: the loads lie in `src` (checked); the
                // stores end below `to + j + L ≤ (ci·k + kx)·cs + (hp − 1)·ow + ow − 1 + L ≤
                // c·k·cs + TAIL`, inside `copies`.
                let (from, left) = (at + j, ow - j);
                unsafe {
                    if left <= l / 2 && from + l / 2 <= src.len() {
                        s.copy_half(dst.add(to + j), src.as_ptr().add(from));
                    } else if from + l <= src.len() {
                        s.store(dst.add(to + j), s.load(src.as_ptr().add(from)));
                    } else {
                        for (i, &v) in src[from..][..left].iter().enumerate() {
                            *dst.add(to + j + i) = v;
                        }
                    }
                }
            }
        }
    }
    copies[d.c * d.k * cs..].fill(0.0);
}

/// [`shift_copies`] in a function of its own, compiled with the token's features: inlined into
/// the weight gradient's loop nest, its loop reloaded its pointers from the stack at every vector
/// (this project's Zen 4, `examples/conv_layers.rs`: 4b's first layer, backward 505 → 472 µs).
/// (Whole aligned vectors, each one two-source permute of two loads, were slower again: 494 µs;
/// the stores wait on their lines, which the tiles' reads of the output gradient and the partial
/// sums have evicted from L1 since the last sample.)
///
/// # Safety
/// The CPU must have the features of `S`'s width (a token proves them).
#[inline(always)]
unsafe fn write_copies<S: Simd>(s: S, d: &ConvDims, x: &[f32], ni: usize, buf: &mut [f32]) {
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn narrow<S: Simd>(s: S, d: &ConvDims, x: &[f32], ni: usize, buf: &mut [f32]) {
        shift_copies(s, d, x, ni, buf)
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    #[inline(never)]
    unsafe fn wide<S: Simd>(s: S, d: &ConvDims, x: &[f32], ni: usize, buf: &mut [f32]) {
        shift_copies(s, d, x, ni, buf)
    }
    // SAFETY: the caller's contract (any token has AVX2 and FMA); AVX-512 where its token exists.
    unsafe {
        if S::LANES >= PS && Avx512::try_new().is_some() { wide(s, d, x, ni, buf) } else { narrow(s, d, x, ni, buf) }
    }
}

/// The most filters per weight-gradient tile at width `S`, and the most kernel offsets for a tile
/// of `g` filters: `g·t` accumulators of 16 lanes (`16/L` registers each), `g` of dY and one of X
/// fit the register file (32 AVX-512 registers: 5 × 5 uses 31, 6 × 4 uses 31; 16 AVX2 registers,
/// two per accumulator: 2 × 3 uses 15, 1 × 6 uses 14).
fn limits<S: Simd>(g: usize) -> (usize, usize) {
    if S::LANES >= PS { (6, [6, 6, 6, 6, 4, 3][g.clamp(1, 6) - 1]) } else { (2, [6, 3][g.clamp(1, 2) - 1]) }
}

/// Weight gradient of a stride-1 batch at width `S` (`simd::weight_grad_f32` where `compact.rs`
/// applies and [`pays`] says; correct at either width for any stride-1 `d`):
/// `acc[((f·c + ci)·k·k + ky·k + kx)·ow] += dW`, 16 partial sums per weight kept across the batch
/// and summed once at the end.
#[inline(always)]
pub(super) fn weight_grad<S: Simd>(s: S, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    let (kk, ys) = (d.k * d.k, d.f * d.oh() * d.ow());
    let vl = d.f * d.c * kk * PS;
    let (xs, vacc) = aligned(scratch, copies_len(d) + vl).split_at_mut(copies_len(d));
    vacc.fill(0.0);
    let (gm, _) = limits::<S>(1);
    for ni in 0..d.n {
        // SAFETY: the token proves its features.
        unsafe { write_copies(s, d, x, ni, xs) };
        let dyn_ = &dy[ni * ys..][..ys];
        for (f0, g) in balanced(d.f, gm) {
            for ci in 0..d.c {
                for (t0, tn) in balanced(kk, limits::<S>(g).1) {
                    let a = (d, (f0, ci, t0), &*xs, dyn_, &mut *vacc);
                    // SAFETY: the token's features (inlined into their function); `dw_tile`
                    // asserts its bounds.
                    unsafe { dw_dispatch(s, g, tn, a) }
                }
            }
        }
    }
    fold_partials(vacc, acc, d.ow());
}

/// The arguments of [`dw_tile`]: dims, (first filter, input channel, first kernel offset), the
/// sample's shifted copies, its output gradient, the partial sums.
type DwArgs<'a> = (&'a ConvDims, (usize, usize, usize), &'a [f32], &'a [f32], &'a mut [f32]);

/// Runs the `g × t` instance of [`dw_tile`] (within [`limits`] at width `S`).
///
/// # Safety
/// As [`dw_tile`].
#[inline(always)]
unsafe fn dw_dispatch<S: Simd>(s: S, g: usize, t: usize, a: DwArgs) {
    macro_rules! by_t {
        ($g:literal: $($t:literal)*) => {
            match t {
                $($t if S::LANES >= PS || $g * $t <= 6 => dw_tile::<S, $g, $t>(s, a),)*
                _ => unreachable!("kernel offsets per tile: {t}"),
            }
        };
    }
    // SAFETY: forwarded (the caller's contract).
    unsafe {
        match g {
            1 => by_t!(1: 1 2 3 4 5 6),
            2 => by_t!(2: 1 2 3 4 5 6),
            3 if S::LANES >= PS => by_t!(3: 1 2 3 4 5 6),
            4 if S::LANES >= PS => by_t!(4: 1 2 3 4 5 6),
            5 if S::LANES >= PS => by_t!(5: 1 2 3 4),
            6 if S::LANES >= PS => by_t!(6: 1 2 3),
            _ => unreachable!("filters per tile: {g}"),
        }
    }
}

/// Weight gradient of one sample, filters `f0..f0+G`, input channel `ci`, kernel offsets
/// `t0..t0+T` (`t = ky·k + kx`): 16 lanes of `Σ dY·X` per weight in registers (`16/L` vectors
/// each) over the whole map, each dY load shared by `T` weights and each input load by `G`, then
/// added to that weight's partial sums in `vacc` (`((f·c + ci)·k·k + t)·16`). `dy` is the sample's
/// `f × oh × ow` output gradient, read in place; the last vector's lanes past the map are masked
/// off in both operands (so that a non-finite value there cannot reach a sum).
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
// (the tile's accumulators are indexed by filter, offset and vector, as registers are named)
#[allow(clippy::needless_range_loop)]
unsafe fn dw_tile<S: Simd, const G: usize, const T: usize>(s: S, (d, (f0, ci, t0), xs, dy, vacc): DwArgs) {
    let (k, ow, l) = (d.k, d.ow(), S::LANES);
    let (kk, q, sl) = (k * k, d.oh() * ow, copy_stride(d));
    let nv = PS / l;
    assert!(d.stride == 1 && nv * l == PS && nv <= 2 && d.oh() + k - 1 == d.h + 2 * d.pad);
    assert!(ci < d.c && t0 + T <= kk && xs.len() >= copies_len(d));
    assert!((f0 + G) * q <= dy.len() && (f0 + G) * d.c * kk * PS <= vacc.len());
    // the offsets' copies and rows: the input of position `p` at offset `t0 + j` is `xs[xo[j] + p]`
    let xo: [usize; T] = core::array::from_fn(|j| (ci * k + (t0 + j) % k) * sl + (t0 + j) / k * ow);
    let (xp, gp, vp) = (xs.as_ptr(), dy.as_ptr(), vacc.as_mut_ptr());
    let mut acc: [[[S::V; 2]; T]; G] = [[[s.zero(); 2]; T]; G];
    let mut p0 = 0;
    while p0 < q {
        for v in 0..nv {
            let p = p0 + v * l;
            if p >= q {
                break;
            }
            // SAFETY: dY lanes in the map lie below `(f0 + G)·q ≤ dy.len()`; input lanes below
            // `xo[j] + q ≤ c·k·sl` (`q + (k − 1)·ow = sl`), the last vector's masked to the map.
            unsafe {
                if p + l <= q {
                    let gv: [S::V; G] = core::array::from_fn(|g| s.load(gp.add((f0 + g) * q + p)));
                    for j in 0..T {
                        let xv = s.load(xp.add(xo[j] + p));
                        for g in 0..G {
                            acc[g][j][v] = s.fmadd(gv[g], xv, acc[g][j][v]);
                        }
                    }
                } else {
                    let m = s.lanes(0, q - p);
                    let gv: [S::V; G] = core::array::from_fn(|g| s.load_masked(gp.add((f0 + g) * q + p), m));
                    for j in 0..T {
                        let xv = s.load_masked(xp.add(xo[j] + p), m);
                        for g in 0..G {
                            acc[g][j][v] = s.fmadd(gv[g], xv, acc[g][j][v]);
                        }
                    }
                }
            }
        }
        p0 += PS;
    }
    // SAFETY: the token's features; below `(f0 + G)·c·kk·16 ≤ vacc.len()` (asserted above).
    unsafe { add_partials(s, &acc, vp, ((f0 * d.c + ci) * kk + t0, d.c * kk)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::{Avx2, Avx512};

    /// The weight gradient's partial sums at both widths on the copies and, where the CPU has
    /// AVX-512, on merged loads (`compact.rs`), each with a scratch buffer of NaN garbage.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn narrow(s: Avx2, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32]) {
        weight_grad(s, d, x, dy, acc, &mut vec![f32::NAN; 7])
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    unsafe fn wide(s: Avx512, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], merged: &mut [f32]) {
        weight_grad(s, d, x, dy, acc, &mut vec![f32::NAN; 9]);
        super::super::compact::weight_grad_merged(s, d, x, dy, merged, &mut vec![f32::NAN; 5]);
    }

    /// The copies are taken for more than 5 filters, and only while a sample's copies stay small:
    /// a kernel nearly as tall as a large plane keeps the merged loads (and its scratch).
    #[test]
    fn copies_are_bounded() {
        let d = |f, c, hw, k, pad| ConvDims { n: 100, c, h: hw, w: hw, f, k, stride: 1, pad };
        assert!(pays(&d(8, 1, 28, 7, 0)) && pays(&d(16, 3, 32, 3, 1)));
        assert!(!pays(&d(5, 1, 28, 7, 0)) && !pays(&d(8, 1, 300, 200, 0)) && !pays(&d(8, 3, 256, 3, 1)));
        assert!(scratch_len(&d(8, 1, 28, 7, 0)) <= ALIGN + MAX_COPIES + TAIL + 8 * 49 * PS);
    }

    /// The copies give the bits of the merged loads (the same sums in the same order) and the same
    /// bits at both widths, and match the f64 sums: several filter counts, channels, kernel sizes
    /// (even, 1), paddings (beyond `k / 2`), one-lane tails; an infinity in the last input row
    /// reaches only the weights whose windows hold it (the last vector's lanes past the map are
    /// masked in both operands).
    #[test]
    fn copies_match_merged_loads_and_f64() {
        let Some(s2) = Avx2::try_new() else { return };
        let s16 = Avx512::try_new();
        let val = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 500.0;
        for (n, c, hw, f, k, pad) in [
            (3, 1, 28, 8, 7, 0),
            (2, 3, 32, 16, 3, 1),
            (2, 2, 19, 7, 3, 0),
            (1, 1, 16, 6, 1, 0),
            (2, 1, 20, 9, 5, 3),
            (1, 2, 17, 11, 2, 0),
            (1, 1, 17, 3, 1, 0),
        ] {
            let d = ConvDims { n, c, h: hw, w: hw, f, k, stride: 1, pad };
            let (q, ow) = (d.oh() * d.ow(), d.ow());
            let mut x: Vec<f32> = (0..n * c * hw * hw).map(val).collect();
            let dy: Vec<f32> = (0..n * f * q).map(|i| val(i + 13)).collect();
            let len = f * c * k * k * ow;
            let (mut a2, mut a16, mut am) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
            // SAFETY: the tokens prove the features.
            unsafe { narrow(s2, &d, &x, &dy, &mut a2) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            if let Some(s16) = s16 {
                // SAFETY: the token proves the features.
                unsafe { wide(s16, &d, &x, &dy, &mut a16, &mut am) };
                let first = |a: &[u32], b: &[u32]| a.iter().zip(b).position(|(x, y)| x != y);
                assert_eq!(first(&bits(&a2), &bits(&a16)), None, "widths differ: {d:?}");
                assert_eq!(first(&bits(&a16), &bits(&am)), None, "copies and merged loads differ: {d:?}");
            }
            let oh = d.oh();
            let x_at = |x: &[f32], ni: usize, ci: usize, r: usize, col: usize| -> f64 {
                let (iy, ix) = (r as isize - pad as isize, col as isize - pad as isize);
                if iy < 0 || ix < 0 || iy >= hw as isize || ix >= hw as isize {
                    return 0.0;
                }
                f64::from(x[((ni * c + ci) * hw + iy as usize) * hw + ix as usize])
            };
            for fi in 0..f {
                for ci in 0..c {
                    for t in 0..k * k {
                        let (ky, kx) = (t / k, t % k);
                        let mut want = 0.0;
                        for ni in 0..n {
                            for p in 0..q {
                                let (oy, ox) = (p / ow, p % ow);
                                want += f64::from(dy[(ni * f + fi) * q + p]) * x_at(&x, ni, ci, oy + ky, ox + kx);
                            }
                        }
                        let got = f64::from(a2[((fi * c + ci) * k * k + t) * ow]);
                        assert!((got - want).abs() < 1e-4 * (n * q) as f64, "{d:?} [{fi},{ci},{t}]: {got} vs {want}");
                    }
                }
            }
            // an infinity at the last input row's first column of the last sample's last channel:
            // only the offsets whose windows reach it from some output position see it
            let (r, col) = (hw - 1, 0);
            x[((n - 1) * c + c - 1) * hw * hw + r * hw + col] = f32::INFINITY;
            let mut b2 = vec![0.0; len];
            // SAFETY: as above.
            unsafe { narrow(s2, &d, &x, &dy, &mut b2) };
            for fi in 0..f {
                for t in 0..k * k {
                    let (ky, kx) = (t / k, t % k);
                    // padded row r + pad, column col + pad, reached from output (oy, ox) when
                    // oy + ky = r + pad and ox + kx = col + pad for some oy < oh, ox < ow
                    let sees = ky <= r + pad && r + pad - ky < oh && kx <= col + pad && col + pad - kx < ow;
                    let got = b2[((fi * c + c - 1) * k * k + t) * ow];
                    assert_eq!(got.is_finite(), !sees, "{d:?} [{fi},{t}]: {got} (sees the infinity: {sees})");
                }
            }
        }
    }
}
