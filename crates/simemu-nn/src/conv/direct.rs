//! [`Kernel::Forward`](super::Kernel::Forward) read straight from the phased
//! planes, on AVX-512: no im2col matrix, and no packed copy of it for gemm.
//!
//! Tap `t` of channel `c` reads a window of a phased plane at a fixed offset, and
//! consecutive grid pixels of one row read consecutive values of it. On a grid
//! whose rows are as wide as the phased planes' (`x.extent`, a few more pixels
//! than the grid's width), every window is one contiguous run of values, so row
//! `k = (c, t)` of the im2col matrix is `phased[offset(k)..]` itself. A
//! microkernel multiplies 48 pixels into 8 channels at a time; the extra pixels of
//! each row are computed and dropped (a 5×5 stride-2 kernel on a 16×16 grid: 12%
//! more multiplications, against an im2col matrix written and packed per sample).
//!
//! The bytes are those of the im2col + gemm path. gemm's AVX-512
//! microkernel computes each value as one chain of fused multiply-adds over the
//! summed dimension in order, from zero, in depth blocks of at least 512
//! (gemm-common 0.19: `kernel_params` and its small-matrix path); the chains here
//! are the same, so the kernel is used only where gemm would sum in one block and
//! in its general kernels (not its dot-product or matrix-vector paths), and only
//! where gemm runs its AVX-512 kernels. `direct_matches_im2col_and_gemm` checks it
//! byte for byte.
//!
//! The same scheme for [`Kernel::Adjoint`](super::Kernel::Adjoint) (tap by tap
//! over the whole grid, to add each image value's taps in col2im's order) was
//! no faster than gemm + col2im on any layer of the benchmark networks, and 2×
//! slower on 4×4 grids; for the weight gradient (channels along the
//! vectors, each sum a chain over the grid's pixels) it was 2× slower on grids of
//! 16 pixels, slower on 64 and 3% faster on 256. Neither was kept.

use super::{copy_window, ColumnLayout, Dims, Geometry, PhasedPlane};

/// Values per vector.
const LANES: usize = 16;
/// Vectors of pixels per tile.
const PIXEL_VECTORS: usize = 3;
/// Pixels per tile.
const TILE_PIXELS: usize = LANES * PIXEL_VECTORS;
/// Channels per tile.
const TILE_CHANNELS: usize = 8;
/// The longest sum gemm computes in one depth block whatever the shape.
const ONE_DEPTH_BLOCK: usize = 512;

/// Whether gemm computes an `m × n` product summed over `depth` in its general
/// kernels and in one depth block, on AVX-512: ≤ 512 values in one block, not ≤ 2
/// (its outer-product kernel), not a single row or column (its matrix-vector
/// kernels), not ≤ 256 outputs (its dot-product kernel).
fn gemm_sums_in_one_chain(m: usize, n: usize, depth: usize) -> bool {
    depth <= ONE_DEPTH_BLOCK && depth > 2 && m > 1 && n > 1 && m * n > 256 && avx512()
}

pub(super) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The forward product: grid = W · im2col(image).
pub(super) struct Forward {
    plane: PhasedPlane,
    plane_len: usize,
    /// Grid pixels on rows as wide as the planes' (`plane.x.extent`), rounded up
    /// to whole tiles.
    padded_pixels: usize,
    /// Start of row `k = c·k² + tap` in the sample's phased planes.
    offsets: Vec<usize>,
    /// Grid channels rounded up to whole tiles.
    padded_channels: usize,
    /// `weight_t[k][c] = W[c][k]`, zero for the padding channels.
    weight_t: Vec<f32>,
}

impl Forward {
    /// The plan for this product, or `None` where it would not give gemm's bytes.
    pub(super) fn new(d: &Dims, g: Geometry, weight: &[f32]) -> Option<Forward> {
        let patch = d.patch(g);
        if !gemm_sums_in_one_chain(d.grid_c, d.grid_px(), patch) {
            return None;
        }
        let plane = PhasedPlane::new(d, g);
        let plane_len = plane.len();
        let windows = plane.windows(g);
        let offsets = (0..d.image_c)
            .flat_map(|c| windows.iter().map(move |w| c * plane_len + w))
            .collect();
        let padded_channels = d.grid_c.next_multiple_of(TILE_CHANNELS);
        let mut weight_t = vec![0f32; patch * padded_channels];
        for (c, row) in weight.chunks_exact(patch).enumerate() {
            for (k, &w) in row.iter().enumerate() {
                weight_t[k * padded_channels + c] = w;
            }
        }
        Some(Forward {
            padded_pixels: (d.gh * plane.x.extent).next_multiple_of(TILE_PIXELS),
            plane,
            plane_len,
            offsets,
            padded_channels,
            weight_t,
        })
    }

    /// Scratch one sample needs: (phased planes with room for the last tile's
    /// overrun, the grid on their pitch).
    pub(super) fn scratch(&self, d: &Dims) -> [usize; 2] {
        [
            d.image_c * self.plane_len + self.padded_pixels,
            self.padded_channels * self.padded_pixels,
        ]
    }

    /// One sample's grid, through `phased` and `padded` (sized by
    /// [`Forward::scratch`]).
    pub(super) fn sample(
        &self,
        image: &[f32],
        d: &Dims,
        phased: &mut [f32],
        padded: &mut [f32],
        grid: &mut [f32],
    ) {
        let [phased_len, padded_len] = self.scratch(d);
        assert!(phased.len() >= phased_len && padded.len() >= padded_len);
        assert!(image.len() == d.image_len() && grid.len() == d.grid_len());
        phased[..phased_len].fill(0.0);
        for (c, plane) in image.chunks_exact(d.ih * d.iw).enumerate() {
            self.plane
                .split(plane, d.iw, &mut phased[c * self.plane_len..]);
        }
        // SAFETY: a plan exists only on a CPU with AVX-512; every row offset is
        // below image_c·plane_len, so each tile's reads end within phased_len,
        // and its writes within padded_len (both asserted above).
        unsafe { self.product(phased.as_ptr(), padded.as_mut_ptr()) };
        for (c, grid_c) in grid.chunks_exact_mut(d.grid_px()).enumerate() {
            let padded_c = &padded[c * self.padded_pixels..];
            copy_window(padded_c, self.plane.x.extent, d.gw, grid_c);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn product(&self, phased: *const f32, padded: *mut f32) {
        let pixels = self.padded_pixels;
        for c in (0..self.padded_channels).step_by(TILE_CHANNELS) {
            for p in (0..pixels).step_by(TILE_PIXELS) {
                let acc = chains(
                    self.offsets.iter().map(|&offset| phased.add(offset + p)),
                    self.weight_t.as_ptr().add(c),
                    self.padded_channels,
                );
                for (j, acc_j) in acc.iter().enumerate() {
                    for (v, &a) in acc_j.iter().enumerate() {
                        use std::arch::x86_64::_mm512_storeu_ps;
                        _mm512_storeu_ps(padded.add((c + j) * pixels + p + v * LANES), a);
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn product(&self, _: *const f32, _: *mut f32) {
        unreachable!("no plan without AVX-512")
    }
}

/// For 8 channels j and 48 pixels: Σ_k row_k[pixel] · weight[k·w_pitch + j], each
/// sum one chain of fused multiply-adds from zero in k order, as gemm's
/// microkernel computes it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn chains(
    rows: impl Iterator<Item = *const f32>,
    weight: *const f32,
    w_pitch: usize,
) -> [[std::arch::x86_64::__m512; PIXEL_VECTORS]; TILE_CHANNELS] {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); PIXEL_VECTORS]; TILE_CHANNELS];
    for (k, row) in rows.enumerate() {
        let mut x = [_mm512_setzero_ps(); PIXEL_VECTORS];
        for (v, xv) in x.iter_mut().enumerate() {
            *xv = _mm512_loadu_ps(row.add(v * LANES));
        }
        let w = weight.add(k * w_pitch);
        for (j, acc_j) in acc.iter_mut().enumerate() {
            let wj = _mm512_set1_ps(*w.add(j));
            for (a, &xv) in acc_j.iter_mut().zip(&x) {
                // gemm's microkernel: mul_add(lhs, rhs, acc).
                *a = _mm512_fmadd_ps(xv, wj, *a);
            }
        }
    }
    acc
}
