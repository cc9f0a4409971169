//! Winograd F(2×2, 3×3) convolutions (Lavin & Gray, 2016): 3×3 kernels, stride 1, "same" padding.
//!
//! Each 2 × 2 block of outputs ("tile") is computed from the 4 × 4 window of the padded input
//! around it as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`: 16 multiplications instead of 36, so the three
//! products of a training step (forward, weight gradient, input gradient) do 16/36 of the direct
//! form's multiply-adds, as 16 GEMMs (one per point `p` of the 4 × 4 transformed tile) whose
//! inner dimension is the channels:
//! - forward: `M[p] (f × tiles) = U[p] (f × c) · V[p] (c × tiles)`, `U = G g Gᵀ` per filter and
//!   channel, `V = Bᵀ d B` per channel and tile, then `Y = Aᵀ M A` per filter and tile;
//! - weight gradient, the adjoint of the forward in `g`: `dg = Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ V] G`,
//!   i.e. `Mw[p] (f × c) = Σ Z[p] (f × tiles) · V[p]ᵀ` with `Z = A dY Aᵀ` per filter and tile;
//! - input gradient: a forward pass of the output gradient with the weights flipped and
//!   transposed (as `implicit.rs`), through the same code.
//!
//! The tiles are processed in blocks of whole samples small enough that a block's transformed
//! input and products stay in the core's L2 cache (`BLOCK`). Each input plane is first split
//! into its four *phases* (the even and odd rows × the even and odd columns of the padded plane),
//! rows of `tw + 1`, so that value `(a, b)` of the windows of consecutive tiles are consecutive
//! values of one phase: the transforms then add and subtract whole vectors of 16 tiles, with no
//! gather. The price is one extra column of tiles per row, computed and dropped (its output
//! gradient is zero, so it adds nothing to the weight gradient): 1/8 more products for maps 16
//! wide, 1/4 for maps 8 wide; the entry points take this path from 8 wide
//! (`winograd_applies`). The GEMMs are the crate's.
//!
//! Rounding: the transformed values are sums of up to 4 × 4 inputs, so an output can differ
//! from the direct sum by a few ulps of the inputs' magnitude (tested against the f64 reference).
//! A non-finite input reaches the outputs of every tile whose window holds it (a 4 × 4 block of
//! outputs around it, where the direct loops reach 3 × 3).

use super::{ConvDims, ConvScratch, split_backward};
use crate::kernels::matmul::gemm_small;
use crate::kernels::{Elem, Strides, multiversion, split_batch};
use crate::threads::{chunk_count, run_chunks, split_runs};

/// Points of a transformed tile.
const PTS: usize = 16;
/// A block's tiles times `c + f` stay at most this: its `V` and `M` (`16·(c + f)·tiles` values)
/// then take 512 KiB in f32.
const BLOCK: usize = 8192;
/// The fewest input channels and filters for which the 16 products pay for the transforms
/// (`examples/conv_layers.rs`).
const MIN_CHANNELS: usize = 8;

/// Whether the Winograd path applies and is chosen: f32, a 3 × 3 kernel, stride 1, padding 1,
/// at least [`MIN_CHANNELS`] input channels and filters, and maps at least 8 wide (narrower
/// ones waste too much on the extra column of tiles: the VGG's 4 × 4 layers ran 1.3–1.4× slower
/// than through im2col, `examples/conv_layers.rs`).
pub(super) fn winograd_applies<E: Elem>(d: &ConvDims) -> bool {
    core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() && fits(d) && d.w >= 8
}

/// The sizes the Winograd path computes (any element type).
fn fits(d: &ConvDims) -> bool {
    d.k == 3 && d.stride == 1 && d.pad == 1 && d.c >= MIN_CHANNELS && d.f >= MIN_CHANNELS && d.n > 0
}

/// The tiling of an `h × w` map.
#[derive(Clone, Copy, Debug)]
struct Geo {
    h: usize,
    w: usize,
    /// Tile rows and columns, `⌈h/2⌉` and `⌈w/2⌉`.
    th: usize,
    tw: usize,
}

impl Geo {
    fn new(d: &ConvDims) -> Self {
        Geo { h: d.h, w: d.w, th: d.h.div_ceil(2), tw: d.w.div_ceil(2) }
    }
    /// Extended tiles of one plane: `th × (tw + 1)`, a column past the last tile in each row (so
    /// that the window values of consecutive tiles are consecutive in the phases; `tile_in`).
    fn per(&self) -> usize {
        self.th * (self.tw + 1)
    }
    /// Length of a phase of the padded input: `(th + 1) × (tw + 1)` and one more, so that the
    /// window read for the extra column of the last row stays inside.
    fn phase(&self) -> usize {
        (self.th + 1) * (self.tw + 1) + 1
    }
    /// Length of the transforms' scratch.
    fn tmp(&self) -> usize {
        4 * self.phase()
    }
    /// Samples per block for `c` input channels and `f` outputs.
    fn samples(&self, c: usize, f: usize) -> usize {
        (BLOCK / (c + f) / self.per()).max(1)
    }
}

/// `G` of F(2×2, 3×3), 4 × 3.
const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// `u[p·rows·cols + r·cols + q] = (G g Gᵀ)[p]` for the 3 × 3 kernel `g = kernel(r, q)` of each
/// output row `r` and column `q` of the 16 products.
fn transform_weights<E: Elem>(
    u: &mut Vec<E>,
    rows: usize,
    cols: usize,
    kernel: impl Fn(usize, usize, usize, usize) -> E,
) {
    u.clear();
    u.resize(PTS * rows * cols, E::zero());
    let g: [[E; 3]; 4] = G.map(|r| r.map(E::lit));
    for r in 0..rows {
        for q in 0..cols {
            // t = G·k (4 × 3), then U = t·Gᵀ (4 × 4).
            let t: [[E; 3]; 4] = core::array::from_fn(|i| {
                core::array::from_fn(|v| (0..3).fold(E::zero(), |a, s| a + g[i][s] * kernel(r, q, s, v)))
            });
            for i in 0..4 {
                for b in 0..4 {
                    u[(4 * i + b) * rows * cols + r * cols + q] = (0..3).fold(E::zero(), |a, v| a + t[i][v] * g[b][v]);
                }
            }
        }
    }
}

/// Tiles per group of the tile transforms (one AVX-512 vector of f32).
const L: usize = 16;

/// Calls `$f::<E, N>(args…, t)` over the groups of `N` consecutive tiles `t..t + N` covering
/// `0..$per`: `N = 16` (or 8, or 4 where fewer tiles), the last group ending at `$per` and
/// overlapping the one before it (recomputing the same values), single tiles only below 4.
macro_rules! each_group {
    ($per:expr, $f:ident($($arg:expr),*)) => {{
        let per: usize = $per;
        macro_rules! by {
            ($n:expr) => {{
                let mut t = 0;
                while t + $n < per {
                    $f::<E, $n>($($arg,)* t);
                    t += $n;
                }
                $f::<E, $n>($($arg,)* per - $n);
            }};
        }
        if per >= L {
            by!(L)
        } else if per >= 8 {
            by!(8)
        } else if per >= 4 {
            by!(4)
        } else {
            for t in 0..per {
                $f::<E, 1>($($arg,)* t);
            }
        }
    }};
}

#[inline(always)]
fn add<E: Elem, const N: usize>(mut x: [E; N], y: [E; N]) -> [E; N] {
    for l in 0..N {
        x[l] += y[l];
    }
    x
}

#[inline(always)]
fn sub<E: Elem, const N: usize>(mut x: [E; N], y: [E; N]) -> [E; N] {
    for l in 0..N {
        x[l] = x[l] - y[l];
    }
    x
}

/// `Bᵀ x` along one axis: `(x0 − x2, x1 + x2, x2 − x1, x1 − x3)`.
#[inline(always)]
fn bt<E: Elem, const N: usize>([x0, x1, x2, x3]: [[E; N]; 4]) -> [[E; N]; 4] {
    [sub(x0, x2), add(x1, x2), sub(x2, x1), sub(x1, x3)]
}

/// `Aᵀ x` along one axis: `(x0 + x1 + x2, x1 − x2 − x3)`.
#[inline(always)]
fn at<E: Elem, const N: usize>([x0, x1, x2, x3]: [[E; N]; 4]) -> [[E; N]; 2] {
    [add(add(x0, x1), x2), sub(sub(x1, x2), x3)]
}

/// `A x` along one axis: `(x0, x0 + x1, x0 − x1, −x1)`.
#[inline(always)]
fn ax<E: Elem, const N: usize>([x0, x1]: [[E; N]; 2]) -> [[E; N]; 4] {
    let mut neg = x1;
    for v in &mut neg {
        *v = -*v;
    }
    [x0, add(x0, x1), sub(x0, x1), neg]
}

/// `N` consecutive values at `p + at`.
///
/// # Safety
/// `p + at .. p + at + N` is inside one allocation.
#[inline(always)]
unsafe fn load<E: Elem, const N: usize>(p: *const E, at: usize) -> [E; N] {
    // SAFETY: the caller's range; `read_unaligned` needs no alignment.
    unsafe { p.add(at).cast::<[E; N]>().read_unaligned() }
}

/// Writes `v` to `p + at ..`.
///
/// # Safety
/// `p + at .. p + at + N` is inside one allocation, writable, and not borrowed elsewhere.
#[inline(always)]
unsafe fn store<E: Elem, const N: usize>(p: *mut E, at: usize, v: [E; N]) {
    // SAFETY: the caller's range.
    unsafe { p.add(at).cast::<[E; N]>().write_unaligned(v) }
}

/// `N` consecutive values of `s` from `at`.
#[inline(always)]
fn lanes<E: Elem, const N: usize>(s: &[E], at: usize) -> [E; N] {
    s[at..][..N].try_into().expect("N lanes")
}

/// `first[j] = row[2j]`, `second[j] = row[2j + 1]` (an odd row's last value goes to `first`):
/// 8 and 4 pairs at a time as one load and two constant shuffles.
#[inline(always)]
fn deinterleave<E: Elem>(row: &[E], first: &mut [E], second: &mut [E]) {
    let n = row.len() / 2;
    let mut j = 0;
    while j + 8 <= n {
        let v: [E; 16] = lanes(row, 2 * j);
        first[j..j + 8].copy_from_slice(&[v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14]]);
        second[j..j + 8].copy_from_slice(&[v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15]]);
        j += 8;
    }
    while j + 4 <= n {
        let v: [E; 8] = lanes(row, 2 * j);
        first[j..j + 4].copy_from_slice(&[v[0], v[2], v[4], v[6]]);
        second[j..j + 4].copy_from_slice(&[v[1], v[3], v[5], v[7]]);
        j += 4;
    }
    for j in j..n {
        first[j] = row[2 * j];
        second[j] = row[2 * j + 1];
    }
    if row.len() % 2 == 1 {
        first[n] = row[2 * n];
    }
}

/// `row[2j] = first[j] + bias`, `row[2j + 1] = second[j] + bias` (an odd row's last value from
/// `first`): 8 and 4 pairs at a time as two loads, a constant shuffle and one store.
#[inline(always)]
fn interleave<E: Elem>(first: &[E], second: &[E], bias: E, row: &mut [E]) {
    let n = row.len() / 2;
    let mut j = 0;
    while j + 8 <= n {
        let (a, b): ([E; 8], [E; 8]) = (lanes(first, j), lanes(second, j));
        let v = [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7]];
        row[2 * j..2 * j + 16].copy_from_slice(&add(v, [bias; 16]));
        j += 8;
    }
    while j + 4 <= n {
        let (a, b): ([E; 4], [E; 4]) = (lanes(first, j), lanes(second, j));
        let v = [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]];
        row[2 * j..2 * j + 8].copy_from_slice(&add(v, [bias; 8]));
        j += 4;
    }
    for j in j..n {
        row[2 * j] = first[j] + bias;
        row[2 * j + 1] = second[j] + bias;
    }
    if row.len() % 2 == 1 {
        row[2 * n] = first[n] + bias;
    }
}

multiversion! {
    /// `V[p][ci][t] = (Bᵀ d B)[p]` for every channel of the samples `x` (`sn × c × h × w`) and
    /// extended tile `t` of the block (`tb` tiles); `tmp` holds one channel's phases.
    fn input_tiles<E: Elem>(x: &[E], c: usize, g: Geo, tb: usize, v: &mut [E], tmp: &mut [E]) => input_tiles_body
}

#[inline(always)]
fn input_tiles_body<E: Elem, const FMA: bool>(x: &[E], c: usize, g: Geo, tb: usize, v: &mut [E], tmp: &mut [E]) {
    let (ew, per, pp) = (g.tw + 1, g.per(), g.phase());
    let phases = &mut tmp[..4 * pp];
    phases.fill(E::zero());
    for (s, xs) in x.chunks_exact(c * g.h * g.w).enumerate() {
        for (ci, plane) in xs.chunks_exact(g.h * g.w).enumerate() {
            // Phase (ry, rx), row i, column j: the padded plane's value at (2i + ry, 2j + rx).
            // Every plane writes the same positions: the padding, zeroed once, stays zero.
            for (y, row) in plane.chunks_exact(g.w).enumerate() {
                let (i, ry) = (y.div_ceil(2), (y + 1) % 2);
                let (even, odd) = phases[2 * ry * pp..][..2 * pp].split_at_mut(pp);
                // Column x sits at padded column x + 1: odd columns x = 0, 2, … land in phase 1.
                deinterleave(row, &mut odd[i * ew..][..ew], &mut even[i * ew + 1..][..g.tw]);
            }
            let (stride, base) = (c * tb, ci * tb + s * per);
            assert!(phases.len() >= 4 * pp && per + ew + 1 == pp && v.len() >= 15 * stride + base + per);
            let (ph, vp) = (phases.as_ptr(), v.as_mut_ptr());
            // SAFETY: the reads stay in the `4·pp` phases and the writes in `v` (asserted above).
            unsafe { each_group!(per, tile_in(ph, (pp, ew), vp, (stride, base))) };
        }
    }
}

/// `N` extended tiles (from `t`) of one channel's `Bᵀ d B`: window value `(a, b)` of tile `t` is
/// `phases[(2·(a mod 2) + b mod 2)·pp + ⌊a/2⌋·ew + ⌊b/2⌋ + t]`; point `p` goes to
/// `v[p·stride + base + t ..]`. (No closures here: they would be compiled without the caller's
/// target features.)
///
/// # Safety
/// `phases` is valid for reads of `4·pp` values, and `v` for writes at
/// `p·stride + base + t .. + N` for every point `p < 16` (the callers assert both for the whole
/// range of `t`).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (`b` indexes each row of `e`)
unsafe fn tile_in<E: Elem, const N: usize>(
    phases: *const E,
    (pp, ew): (usize, usize),
    v: *mut E,
    (stride, base): (usize, usize),
    t: usize,
) {
    // Row `a` of the window starts at phase (a mod 2, ·), row ⌊a/2⌋ (written out: a loop over the
    // rows lets the compiler gather across them).
    let row = |a: usize| phases.wrapping_add(a % 2 * 2 * pp + a / 2 * ew + t);
    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
    // SAFETY: reads up to `a % 2·2·pp + a / 2·ew + t + pp + 1 + N ≤ 3·pp + ew + per + 1 = 4·pp`
    // (`t + N ≤ per`, `per + ew + 1 = pp`).
    let e: [[[E; N]; 4]; 4] = unsafe {
        [
            bt([load(r0, 0), load(r0, pp), load(r0, 1), load(r0, pp + 1)]),
            bt([load(r1, 0), load(r1, pp), load(r1, 1), load(r1, pp + 1)]),
            bt([load(r2, 0), load(r2, pp), load(r2, 1), load(r2, pp + 1)]),
            bt([load(r3, 0), load(r3, pp), load(r3, 1), load(r3, pp + 1)]),
        ]
    };
    for b in 0..4 {
        let col = bt([e[0][b], e[1][b], e[2][b], e[3][b]]);
        for (i, ci) in col.into_iter().enumerate() {
            // SAFETY: in the range the caller asserted.
            unsafe { store(v, (4 * i + b) * stride + base + t, ci) };
        }
    }
}

multiversion! {
    /// `Z[p][fi][t] = (A dY Aᵀ)[p]` for every filter of the output gradients `dy` (`sn × f × h × w`)
    /// and extended tile `t` (zero for the extra column of tiles).
    fn gradient_tiles<E: Elem>(dy: &[E], f: usize, g: Geo, tb: usize, z: &mut [E], tmp: &mut [E]) => gradient_tiles_body
}

#[inline(always)]
fn gradient_tiles_body<E: Elem, const FMA: bool>(dy: &[E], f: usize, g: Geo, tb: usize, z: &mut [E], tmp: &mut [E]) {
    let (ew, per) = (g.tw + 1, g.per());
    let phases = &mut tmp[..4 * per];
    phases.fill(E::zero());
    for (s, ds) in dy.chunks_exact(f * g.h * g.w).enumerate() {
        for (fi, plane) in ds.chunks_exact(g.h * g.w).enumerate() {
            // Phase (r, e), row i, column j: dY at (2i + r, 2j + e); the extra column, zeroed
            // once, stays zero.
            for (y, row) in plane.chunks_exact(g.w).enumerate() {
                let (i, r) = (y / 2, y % 2);
                let (even, odd) = phases[2 * r * per..][..2 * per].split_at_mut(per);
                deinterleave(row, &mut even[i * ew..][..g.tw], &mut odd[i * ew..][..g.tw]);
            }
            let (stride, base) = (f * tb, fi * tb + s * per);
            assert!(phases.len() >= 4 * per && z.len() >= 15 * stride + base + per);
            let (ph, zp) = (phases.as_ptr(), z.as_mut_ptr());
            // SAFETY: the reads stay in the `4·per` phases and the writes in `z` (asserted above).
            unsafe { each_group!(per, tile_grad(ph, per, zp, (stride, base))) };
        }
    }
}

/// `N` extended tiles (from `t`) of one filter's `A dY Aᵀ`; point `p` goes to
/// `z[p·stride + base + t ..]`.
///
/// # Safety
/// `phases` is valid for reads of `4·per` values and `z` for writes at
/// `p·stride + base + t .. + N` for every point `p < 16` (asserted by the caller).
#[inline(always)]
unsafe fn tile_grad<E: Elem, const N: usize>(
    phases: *const E,
    per: usize,
    z: *mut E,
    (stride, base): (usize, usize),
    t: usize,
) {
    let p = phases.wrapping_add(t);
    // SAFETY: `k·per + t + N ≤ 4·per` for `k < 4`.
    let (q0, q1) =
        unsafe { (ax::<E, N>([load(p, 0), load(p, per)]), ax::<E, N>([load(p, 2 * per), load(p, 3 * per)])) };
    for b in 0..4 {
        for (i, col) in ax([q0[b], q1[b]]).into_iter().enumerate() {
            // SAFETY: in the range the caller asserted.
            unsafe { store(z, (4 * i + b) * stride + base + t, col) };
        }
    }
}

multiversion! {
    /// `Y = Aᵀ M A (+ bias)` of every tile from the products `m` (`16 × f × tb`), into the samples
    /// `y` (`sn × f × h × w`); `tmp` holds one filter's four output phases.
    fn output_tiles<E: Elem>(m: &[E], f: usize, g: Geo, tb: usize, bias: Option<&[E]>, y: &mut [E], tmp: &mut [E]) => output_tiles_body
}

#[inline(always)]
fn output_tiles_body<E: Elem, const FMA: bool>(
    m: &[E],
    f: usize,
    g: Geo,
    tb: usize,
    bias: Option<&[E]>,
    y: &mut [E],
    tmp: &mut [E],
) {
    let (ew, per) = (g.tw + 1, g.per());
    let phases = &mut tmp[..4 * per];
    for (s, ys) in y.chunks_exact_mut(f * g.h * g.w).enumerate() {
        for (fi, plane) in ys.chunks_exact_mut(g.h * g.w).enumerate() {
            let (stride, base) = (f * tb, fi * tb + s * per);
            assert!(phases.len() >= 4 * per && m.len() >= 15 * stride + base + per);
            let (mp, ph) = (m.as_ptr(), phases.as_mut_ptr());
            // SAFETY: the reads stay in `m` and the writes in the `4·per` phases (asserted above).
            unsafe { each_group!(per, tile_out(mp, (stride, base), ph, per)) };
            let bias = bias.map_or(E::zero(), |b| b[fi]);
            for (oy, row) in plane.chunks_exact_mut(g.w).enumerate() {
                let (i, r) = (oy / 2, oy % 2);
                let (even, odd) =
                    (&phases[2 * r * per + i * ew..][..g.tw], &phases[(2 * r + 1) * per + i * ew..][..g.tw]);
                interleave(even, odd, bias, row);
            }
        }
    }
}

/// `N` extended tiles (from `t`) of one filter's `Aᵀ M A`: point `p` is at `m[p·stride + base + t ..]`,
/// output `(r, e)` of the tile goes to `phases[(2r + e)·per + t]`.
///
/// # Safety
/// `m` is valid for reads at `p·stride + base + t .. + N` for every point `p < 16`, and
/// `phases` for writes of `4·per` values (asserted by the caller).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (`e` indexes each row of `s`)
unsafe fn tile_out<E: Elem, const N: usize>(
    m: *const E,
    (stride, base): (usize, usize),
    phases: *mut E,
    per: usize,
    t: usize,
) {
    let p = m.wrapping_add(base + t);
    let ld = |k: usize| p.wrapping_add(k * stride);
    // SAFETY: in the range the caller asserted (written out, as in `tile_in`).
    let s: [[[E; N]; 2]; 4] = unsafe {
        [
            at([load(ld(0), 0), load(ld(1), 0), load(ld(2), 0), load(ld(3), 0)]),
            at([load(ld(4), 0), load(ld(5), 0), load(ld(6), 0), load(ld(7), 0)]),
            at([load(ld(8), 0), load(ld(9), 0), load(ld(10), 0), load(ld(11), 0)]),
            at([load(ld(12), 0), load(ld(13), 0), load(ld(14), 0), load(ld(15), 0)]),
        ]
    };
    for e in 0..2 {
        for (r, v) in at([s[0][e], s[1][e], s[2][e], s[3][e]]).into_iter().enumerate() {
            // SAFETY: `(2r + e)·per + t + N ≤ 4·per`.
            unsafe { store(phases, (2 * r + e) * per + t, v) };
        }
    }
}

/// `m[p] = a[p] · b[p]` for the 16 points, each `a[p]` `rows × inner` and `b[p]` `inner × tb`,
/// row-major, one after another.
fn products<E: Elem>((rows, inner, tb): (usize, usize, usize), a: &[E], b: &[E], m: &mut [E]) {
    let (la, lb, lm) = (rows * inner, inner * tb, rows * tb);
    for p in 0..PTS {
        let (ap, bp, mp) = (&a[p * la..][..la], &b[p * lb..][..lb], &mut m[p * lm..][..lm]);
        gemm_small(
            rows,
            tb,
            inner,
            ap,
            Strides::row_major(inner),
            bp,
            Strides::row_major(tb),
            mp,
            Strides::row_major(tb),
            false,
        );
    }
}

/// Makes `v` at least `len` long (never shorter: a short last block would otherwise make the next
/// call zero what it regrows).
fn grow<E: Elem>(v: &mut Vec<E>, len: usize) {
    if v.len() < len {
        v.resize(len, E::zero());
    }
}

/// The forward pass of the samples `x` (`n × c × h × w`) into `y` (`n × f × h × w`) with the
/// transformed weights `u` (`16 × f × c`), block by block; `buf` holds `V`, `M` and the phases.
fn forward_samples<E: Elem>(
    g: Geo,
    (c, f): (usize, usize),
    u: &[E],
    bias: Option<&[E]>,
    x: &[E],
    y: &mut [E],
    [v, m, tmp]: [&mut Vec<E>; 3],
) {
    let (xs, ys) = (c * g.h * g.w, f * g.h * g.w);
    let n = x.len() / xs;
    let sb = g.samples(c, f);
    tmp.resize(g.tmp(), E::zero());
    for s0 in (0..n).step_by(sb) {
        let sn = sb.min(n - s0);
        let tb = sn * g.per();
        grow(v, PTS * c * tb);
        grow(m, PTS * f * tb);
        input_tiles(&x[s0 * xs..][..sn * xs], c, g, tb, v, tmp);
        products((f, c, tb), u, v, m);
        output_tiles(m, f, g, tb, bias, &mut y[s0 * ys..][..sn * ys], tmp);
    }
}

/// Forward pass through Winograd F(2×2, 3×3), for any element type (the convolution entry points
/// choose it for f32; tests run it in f64 too); panics unless the kernel is 3 × 3 with stride 1,
/// padding 1 and at least 8 input channels and filters.
pub fn forward_winograd<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    assert!(fits(d), "Winograd F(2×2, 3×3) needs a 3×3 kernel, stride 1, padding 1, ≥ 8 channels: {d:?}");
    assert!(bias.is_none_or(|b| b.len() == d.f), "convolution: bias length for {} filters", d.f);
    let g = Geo::new(d);
    let (xs, ys) = (d.c * d.h * d.w, d.f * d.h * d.w);
    let mut u = core::mem::take(&mut scratch.wt);
    transform_weights(&mut u, d.f, d.c, |fi, ci, s, v| w[((fi * d.c + ci) * 3 + s) * 3 + v]);
    let parts = split_batch(d.n, ys * d.patch()).max(1);
    let pieces = split_runs(y, d.n, ys, chunk_count(d.n, parts));
    run_chunks(scratch.parts(parts), pieces, |buf, (lo, n, yc)| {
        let [v, m, tmp, _] = buf;
        forward_samples(g, (d.c, d.f), &u, bias, &x[lo * xs..][..n * xs], yc, [v, m, tmp]);
    });
    scratch.wt = u;
}

/// Backward pass through Winograd F(2×2, 3×3), for any element type, with the conditions of
/// [`forward_winograd`]: `dw` (and `db`, `dx` when given) are overwritten.
#[allow(clippy::too_many_arguments)]
pub fn backward_winograd<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_backward(x.len(), w.len(), dy.len(), dw.len(), db.as_ref().map(|b| b.len()), dx.as_ref().map(|t| t.len()));
    assert!(fits(d), "Winograd F(2×2, 3×3) needs a 3×3 kernel, stride 1, padding 1, ≥ 8 channels: {d:?}");
    let g = Geo::new(d);
    let (c, f) = (d.c, d.f);
    let (xs, ys) = (c * d.h * d.w, f * d.h * d.w);
    let mut u = core::mem::take(&mut scratch.wt);
    if dx.is_some() {
        // The input gradient is the forward pass of dY with W'[ci, fi] = W[fi, ci] turned by 180°.
        transform_weights(&mut u, c, f, |ci, fi, s, v| w[((fi * c + ci) * 3 + 2 - s) * 3 + 2 - v]);
    }
    let plen = PTS * f * c;
    let sb = g.samples(c, f);
    let run = |lo: usize, n: usize, dxc: Option<&mut [E]>, mw: &mut [E], buf: &mut [Vec<E>; 4]| {
        let [v, z, tmp, m] = buf;
        tmp.resize(g.tmp(), E::zero());
        mw.fill(E::zero());
        let (xc, dyc) = (&x[lo * xs..][..n * xs], &dy[lo * ys..][..n * ys]);
        for s0 in (0..n).step_by(sb) {
            let sn = sb.min(n - s0);
            let tb = sn * g.per();
            grow(v, PTS * c * tb);
            grow(z, PTS * f * tb);
            input_tiles(&xc[s0 * xs..][..sn * xs], c, g, tb, v, tmp);
            gradient_tiles(&dyc[s0 * ys..][..sn * ys], f, g, tb, z, tmp);
            // Mw[p] (f × c) += Z[p] (f × tiles) · V[p]ᵀ (tiles × c).
            for p in 0..PTS {
                let (zp, vp) = (&z[p * f * tb..][..f * tb], &v[p * c * tb..][..c * tb]);
                let (sz, sv) = (Strides::row_major(tb), Strides { rs: 1, cs: tb });
                gemm_small(f, c, tb, zp, sz, vp, sv, &mut mw[p * f * c..][..f * c], Strides::row_major(c), true);
            }
        }
        if let Some(dxc) = dxc {
            forward_samples(g, (f, c), &u, None, dyc, dxc, [v, m, tmp]);
        }
    };
    let mut partials = core::mem::take(&mut scratch.partials);
    let bufs = scratch.parts(split_batch(d.n, ys * d.patch() * 2).max(1));
    split_backward(d, dy, (dx, db), bufs, (&mut partials, plen), run);
    // dW[fi, ci] = Gᵀ Mw G (3 × 3) from the summed transformed products.
    let gm: [[E; 3]; 4] = G.map(|r| r.map(E::lit));
    for fi in 0..f {
        for ci in 0..c {
            let mw = |i: usize, b: usize| partials[(4 * i + b) * f * c + fi * c + ci];
            let t: [[E; 3]; 4] = core::array::from_fn(|i| {
                core::array::from_fn(|v| (0..4).fold(E::zero(), |s, b| s + mw(i, b) * gm[b][v]))
            });
            for s in 0..3 {
                for v in 0..3 {
                    dw[((fi * c + ci) * 3 + s) * 3 + v] = (0..4).fold(E::zero(), |acc, i| acc + gm[i][s] * t[i][v]);
                }
            }
        }
    }
    scratch.partials = partials;
    scratch.wt = u;
}
