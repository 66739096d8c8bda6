//! The element-wise steps of the encoder that are not matrix products: the exact (erf) GELU
//! of the feed-forward layers, the attention softmax (with its scale and padding mask), and
//! the additions (biases, residuals, position rows).
//!
//! Why not candle's: its CPU versions call the scalar `libm` `erff`/`expf` once per element.
//! Profiled on one 128-token window (perf, one thread), those calls were a fifth of the
//! forward pass once the matrix products ran on AVX-512: `erff` 13 %, `expf` 8 %. Here both
//! are written as straight-line arithmetic (a rational erfc and a polynomial `exp` after
//! range reduction, no branches and no calls), so the compiler vectorizes the loops; `pulp`
//! runs each loop under the widest instruction set the CPU has (AVX-512, AVX2, or the
//! baseline), chosen at run time, without `unsafe` in this crate.
//!
//! Why the additions too: candle runs every element-wise operation of 64 Ki elements or more
//! on its own "barrier pool", a second set of threads outside any rayon pool whose workers
//! spin while they wait and whose one lock serialises callers. The model's own threads (two
//! windows at once, see `embed.rs`) would queue on that lock while a third thread spun on a
//! two-core machine. Here the additions, the GELU and the softmax run on the caller's thread,
//! split with rayon when large (inside the model's pool that is the model's threads), and
//! write *in place* into the tensor they update: the matrix product's fresh output takes its
//! bias and residual without a new allocation (fewer pages mapped and faulted per pass).
//!
//! Every operation does the same `f32` arithmetic in the same order as the candle expression
//! it replaces (`(s · scale) + mask`, `a + b`), so results do not move.
//!
//! Accuracy: `exp` is within a few units in the last place over the range used;
//! `erfc` uses the Abramowitz–Stegun 7.1.26 rational form (absolute error ≤ 1.5e-7), and GELU
//! is computed from `erfc` on the negative side so that `1 + erf(x)` does not cancel. The
//! unit tests bound both against the `f64` standard library, and the embedding cross-check
//! (`tests/embeddings.rs`) holds the whole encoder to the reference implementation.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result, Tensor, bail};
#[cfg(test)]
use candle_core::{CustomOp1, Shape};
use rayon::prelude::*;

/// Element counts at or above which an operation is split across the current rayon pool
/// (below it, the split costs more than it saves).
const PAR_MIN: usize = 32 * 1024;

/// `gelu(x) = x/2 · (1 + erf(x/√2))`, element-wise, on a contiguous `f32` tensor.
#[cfg(test)]
pub(crate) fn gelu_erf(t: &Tensor) -> Result<Tensor> {
    t.apply_op1_no_bwd(&Gelu)
}

/// [`gelu_erf`] in place.
pub(crate) fn gelu_erf_inplace(t: &Tensor) -> Result<()> {
    t.inplace_op1(&Gelu)
}

/// Softmax over the last dimension of a contiguous `f32` tensor.
#[cfg(test)]
pub(crate) fn softmax_last_dim(t: &Tensor) -> Result<Tensor> {
    t.apply_op1_no_bwd(&Softmax)
}

/// The attention's `softmax(scores · scale + mask)` in place: `scores` is `(batch, heads,
/// len, len)` and contiguous, `mask` is `(batch, len)` (0 for a token, −1e9 for padding).
pub(crate) fn masked_softmax_inplace(scores: &Tensor, mask: &Tensor, scale: f32) -> Result<()> {
    let (_, heads, rows, width) = scores.dims4()?;
    scores.inplace_op2(
        mask,
        &MaskedSoftmax {
            heads,
            rows,
            width,
            scale,
        },
    )
}

/// `x[i] += y[i mod y.len()]` in place, on contiguous `f32` tensors: a bias added to every
/// row, a residual of the same shape, or position rows added to every window of a batch.
pub(crate) fn add_cyclic_inplace(x: &Tensor, y: &Tensor) -> Result<()> {
    x.inplace_op2(y, &AddCyclic)
}

/// The contiguous `f32` data of a storage, or an error naming the operation.
fn f32_data<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expected f32 data, got {:?}", storage.dtype())
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: expected a contiguous tensor")
    };
    data.get(start..end)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: layout outside its storage")))
}

/// [`f32_data`], writable.
fn f32_data_mut<'a>(
    op: &str,
    storage: &'a mut CpuStorage,
    layout: &Layout,
) -> Result<&'a mut [f32]> {
    let dtype = storage.dtype();
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expected f32 data, got {dtype:?}")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: expected a contiguous tensor")
    };
    data.get_mut(start..end)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: layout outside its storage")))
}

/// Rows of `width` per rayon task so that a task has about [`PAR_MIN`] elements.
fn rows_per_task(width: usize) -> usize {
    (PAR_MIN / width.max(1)).max(1)
}

struct AddCyclic;

impl InplaceOp2 for AddCyclic {
    fn name(&self) -> &'static str {
        "warden-add"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let y = f32_data(self.name(), s2, l2)?;
        let x = f32_data_mut(self.name(), s1, l1)?;
        if y.is_empty() || !x.len().is_multiple_of(y.len()) {
            bail!(
                "warden-add: {} values do not repeat {} values",
                x.len(),
                y.len()
            )
        }
        let add = |x: &mut [f32], y: &[f32]| pulp::Arch::new().dispatch(AddLoop { x, y });
        if x.len() < PAR_MIN {
            for row in x.chunks_exact_mut(y.len()) {
                add(row, y);
            }
        } else if x.len() == y.len() {
            let task = PAR_MIN;
            x.par_chunks_mut(task)
                .zip(y.par_chunks(task))
                .for_each(|(x, y)| add(x, y));
        } else {
            let task = rows_per_task(y.len()) * y.len();
            x.par_chunks_mut(task).for_each(|x| {
                for row in x.chunks_exact_mut(y.len()) {
                    add(row, y);
                }
            });
        }
        Ok(())
    }
}

struct AddLoop<'a> {
    x: &'a mut [f32],
    y: &'a [f32],
}

impl pulp::WithSimd for AddLoop<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (a, &b) in self.x.iter_mut().zip(self.y) {
            *a += b;
        }
    }
}

struct Gelu;

#[cfg(test)]
impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "warden-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = f32_data(CustomOp1::name(self), storage, layout)?.to_vec();
        gelu_slice(&mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "warden-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        gelu_slice(f32_data_mut(InplaceOp1::name(self), storage, layout)?);
        Ok(())
    }
}

fn gelu_slice(x: &mut [f32]) {
    if x.len() < PAR_MIN {
        pulp::Arch::new().dispatch(GeluLoop { x });
    } else {
        x.par_chunks_mut(PAR_MIN)
            .for_each(|x| pulp::Arch::new().dispatch(GeluLoop { x }));
    }
}

/// Plain softmax over the last dimension (the unit tests compare it with candle's).
#[cfg(test)]
struct Softmax;

#[cfg(test)]
impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "warden-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = f32_data(self.name(), storage, layout)?.to_vec();
        let width = layout.shape().dims().last().copied().unwrap_or(1);
        if width > 0 {
            pulp::Arch::new().dispatch(SoftmaxLoop {
                x: &mut out,
                mask: &[],
                width,
                scale: 1.0,
            });
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

struct MaskedSoftmax {
    heads: usize,
    rows: usize,
    width: usize,
    scale: f32,
}

impl InplaceOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "warden-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let mask = f32_data(self.name(), s2, l2)?;
        let scores = f32_data_mut(self.name(), s1, l1)?;
        // One (window, head) block of `rows × width` scores at a time; its window's mask row.
        let block = self.rows * self.width;
        if block == 0 {
            return Ok(());
        }
        let windows = scores.len() / block;
        if scores.len() != windows * block
            || self.heads == 0
            || !windows.is_multiple_of(self.heads)
            || mask.len() != windows / self.heads * self.width
        {
            bail!(
                "warden-masked-softmax: {} scores and {} mask values do not fit {} heads of {}×{}",
                scores.len(),
                mask.len(),
                self.heads,
                self.rows,
                self.width
            )
        }
        let run = |(i, x): (usize, &mut [f32])| {
            let w = i / self.heads;
            pulp::Arch::new().dispatch(SoftmaxLoop {
                x,
                mask: &mask[w * self.width..(w + 1) * self.width],
                width: self.width,
                scale: self.scale,
            });
        };
        if scores.len() < PAR_MIN {
            scores.chunks_exact_mut(block).enumerate().for_each(run);
        } else {
            scores.par_chunks_exact_mut(block).enumerate().for_each(run);
        }
        Ok(())
    }
}

// The loops are `WithSimd` types rather than closures: `with_simd` is monomorphised for the
// instruction set `dispatch` picked and inlined into pulp's function compiled for it, which
// is what lets the compiler use that set's registers (a closure body was compiled for the
// baseline and called from there).

struct GeluLoop<'a> {
    x: &'a mut [f32],
}

impl pulp::WithSimd for GeluLoop<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for v in self.x.iter_mut() {
            *v = gelu(*v);
        }
    }
}

/// Rows of `width` softmaxed in place, each first scaled and given the mask (an empty mask:
/// neither).
struct SoftmaxLoop<'a> {
    x: &'a mut [f32],
    mask: &'a [f32],
    width: usize,
    scale: f32,
}

impl pulp::WithSimd for SoftmaxLoop<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for row in self.x.chunks_exact_mut(self.width) {
            if !self.mask.is_empty() {
                for (v, &m) in row.iter_mut().zip(self.mask) {
                    *v = *v * self.scale + m;
                }
            }
            softmax_row(row);
        }
    }
}

/// Lanes of the partial maxima and sums: enough for one AVX-512 register, so the compiler
/// keeps 16 independent accumulators instead of one serial chain.
const LANES: usize = 16;

#[inline(always)]
fn softmax_row(x: &mut [f32]) {
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &v) in lane_max.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = rest
        .iter()
        .chain(&lane_max)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let mut lane_sum = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (s, &v) in lane_sum.iter_mut().zip(c) {
            *s += v;
        }
    }
    let sum: f32 = lane_sum.iter().chain(rest).sum();
    // The row's maximum contributes exp(0) = 1, so `sum ≥ 1` for any finite row.
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `exp(x)` for `f32`: `x = n·ln2 + r` with `|r| ≤ ln2/2`, a degree-6 Taylor polynomial for
/// `e^r`, and `2^n` put straight into the exponent bits. Inputs below −87.3 give 0 (the
/// attention mask's −1e9 lands there), above 88.3 the value at 88.3 (finite).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let underflow = x < -87.3;
    let x = x.clamp(-87.3, 88.3);
    let k = x * LOG2_E + ROUND;
    let n = k - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // `k`'s bits are ROUND's plus `n` in the low mantissa bits, so `n + 127` (the biased
    // exponent of 2^n, in 1..=254 after the clamp) comes out with integer arithmetic alone;
    // `n as i32` would be a saturating conversion that does not vectorize.
    let scale = f32::from_bits(k.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if underflow { 0.0 } else { p * scale }
}

/// `gelu(x) = x/2 · (1 + erf(x/√2))`. With `z = |x|/√2`, `1 + erf(x/√2)` is `2 − erfc(z)` for
/// `x ≥ 0` and `erfc(z)` for `x < 0`.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let erfc = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * exp(-z * z);
    let one_plus_erf = if x < 0.0 { erfc } else { 2.0 - erfc };
    0.5 * x * one_plus_erf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf64(x: f64) -> f64 {
        // erf by its Taylor series (converges fast for |x| ≤ 3) and 1 − erfc's continued
        // fraction beyond; used only as the test's reference.
        if x.abs() <= 3.0 {
            let mut term = x;
            let mut sum = x;
            let mut n = 0.0;
            loop {
                n += 1.0;
                term *= -x * x / n;
                let add = term / (2.0 * n + 1.0);
                sum += add;
                if add.abs() < 1e-17 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let z = x.abs();
            let mut frac = 0.0;
            for k in (1..=60).rev() {
                frac = (k as f64 / 2.0) / (z + frac);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + frac);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn exp_is_close_to_the_standard_library_over_the_range_used() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(1e9).is_finite());
    }

    #[test]
    fn gelu_is_close_to_the_exact_one() {
        let mut worst = 0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let x64 = f64::from(x);
            let want = 0.5 * x64 * (1.0 + erf64(x64 / std::f64::consts::SQRT_2));
            worst = worst.max((f64::from(gelu(x)) - want).abs());
            x += 0.0007;
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
        assert_eq!(gelu(0.0), 0.0);
        assert_eq!(gelu(-200.0), 0.0);
        assert_eq!(gelu(200.0), 200.0);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_masked_entries_vanish() {
        let dev = candle_core::Device::Cpu;
        // Two rows of 37 (not a multiple of the lane count), the second with a masked tail.
        let mut v: Vec<f32> = (0..74).map(|i| ((i * 7 % 11) as f32) * 0.9 - 4.0).collect();
        for x in &mut v[60..] {
            *x -= 1e9;
        }
        let t = Tensor::from_vec(v.clone(), (2, 37), &dev).unwrap();
        let ours: Vec<Vec<f32>> = softmax_last_dim(&t).unwrap().to_vec2().unwrap();
        let theirs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&t)
            .unwrap()
            .to_vec2()
            .unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            let sum: f32 = a.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "row sums to {sum}");
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 5e-7, "{x} vs candle's {y}");
            }
        }
        assert!(ours[1][23..].iter().all(|&p| p == 0.0));
    }

    #[test]
    fn gelu_matches_candles_on_a_tensor() {
        let dev = candle_core::Device::Cpu;
        let v: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.017).collect();
        let t = Tensor::from_vec(v, (10, 100), &dev).unwrap();
        let ours: Vec<Vec<f32>> = gelu_erf(&t).unwrap().to_vec2().unwrap();
        let theirs: Vec<Vec<f32>> = t.gelu_erf().unwrap().to_vec2().unwrap();
        for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
            assert!((a - b).abs() < 1e-6, "{a} vs candle's {b}");
        }
    }

    #[test]
    fn masked_softmax_is_candles_expression_exactly() {
        let dev = candle_core::Device::Cpu;
        // Two windows, three heads, 5 × 5 scores; the second window has two padding tokens.
        let (b, h, l) = (2, 3, 5);
        let v: Vec<f32> = (0..b * h * l * l)
            .map(|i| ((i * 37 % 101) as f32) * 0.173 - 8.0)
            .collect();
        let scores = Tensor::from_vec(v, (b, h, l, l), &dev).unwrap();
        let used = [5usize, 3];
        let mask: Vec<f32> = used
            .iter()
            .flat_map(|&u| (0..l).map(move |t| if t < u { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (b, l), &dev).unwrap();
        let scale = 0.176_776_7_f32;
        // What the encoder computed before: affine scale, broadcast add, softmax.
        let want = (scores.clone() * f64::from(scale))
            .unwrap()
            .broadcast_add(&mask.reshape((b, 1, 1, l)).unwrap())
            .unwrap();
        let want: Vec<f32> = softmax_last_dim(&want)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got = scores.copy().unwrap();
        masked_softmax_inplace(&got, &mask, scale).unwrap();
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, want);
        // Padding columns of the second window get nothing.
        for row in got[h * l * l..].chunks(l) {
            assert_eq!(&row[3..], &[0.0, 0.0]);
        }
    }

    #[test]
    fn masked_softmax_refuses_a_mask_of_the_wrong_size() {
        let dev = candle_core::Device::Cpu;
        let scores = Tensor::zeros((2, 3, 4, 4), candle_core::DType::F32, &dev).unwrap();
        let mask = Tensor::zeros((1, 4), candle_core::DType::F32, &dev).unwrap();
        assert!(masked_softmax_inplace(&scores, &mask, 1.0).is_err());
    }

    #[test]
    fn cyclic_add_is_candles_broadcast_add_small_and_large() {
        let dev = candle_core::Device::Cpu;
        // Below and above the size at which the addition is split across threads.
        for rows in [3usize, 300] {
            let width = 384;
            let x: Vec<f32> = (0..rows * width)
                .map(|i| ((i * 13 % 97) as f32) * 0.31 - 15.0)
                .collect();
            let x = Tensor::from_vec(x, (rows, width), &dev).unwrap();
            let bias: Vec<f32> = (0..width).map(|i| (i as f32) * 0.01 - 1.9).collect();
            let bias = Tensor::from_vec(bias, width, &dev).unwrap();
            let want: Vec<f32> = x
                .broadcast_add(&bias)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = x.copy().unwrap();
            add_cyclic_inplace(&got, &bias).unwrap();
            assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
            // Same shape (a residual).
            let other = (x.clone() * 0.5).unwrap();
            let want: Vec<f32> = (&x + &other)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = x.copy().unwrap();
            add_cyclic_inplace(&got, &other).unwrap();
            assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
        }
        let x = Tensor::zeros((2, 5), candle_core::DType::F32, &dev).unwrap();
        let y = Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap();
        assert!(
            add_cyclic_inplace(&x, &y).is_err(),
            "10 values do not repeat 3"
        );
        // A tensor may not be added to itself in place (candle refuses the aliasing).
        assert!(add_cyclic_inplace(&x, &x).is_err());
    }

    #[test]
    fn gelu_in_place_matches_the_copying_op_above_the_split_size() {
        let dev = candle_core::Device::Cpu;
        let v: Vec<f32> = (0..100_000)
            .map(|i| (i as f32 - 50_000.0) * 0.0002)
            .collect();
        let t = Tensor::from_vec(v, (100, 1000), &dev).unwrap();
        let want: Vec<f32> = gelu_erf(&t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got = t.copy().unwrap();
        gelu_erf_inplace(&got).unwrap();
        assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
    }

    #[test]
    fn other_types_and_strided_tensors_are_errors_not_garbage() {
        let dev = candle_core::Device::Cpu;
        let t = Tensor::zeros((4, 4), candle_core::DType::F64, &dev).unwrap();
        assert!(gelu_erf(&t).is_err());
        let t = Tensor::zeros((4, 3), candle_core::DType::F32, &dev)
            .unwrap()
            .t()
            .unwrap();
        assert!(softmax_last_dim(&t).is_err());
    }
}
