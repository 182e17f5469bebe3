//! Fast CPU convolutions for generator networks: `conv2d` and `conv_transpose2d`
//! with both backward passes, as candle custom ops.
//!
//! candle's CPU `conv_transpose2d` is a direct loop parallel only over output
//! channels, its `conv2d` input gradient runs through that loop, and its backward
//! pass computes gradients for data that needs none. These kernels lower every pass
//! to im2col/col2im plus one `gemm` per sample, parallel over the batch.
//!
//! One observation keeps the code small. Call the larger side of a convolution the
//! *image* and the smaller the *grid*, and let the weight be a matrix
//! `W: (grid channels, image channels·k²)` — that is the layout of both candle's
//! `conv2d` kernel `(c_out, c_in, k, k)` and its `conv_transpose2d` kernel
//! `(c_in, c_out, k, k)`. Then three kernels serve all six passes:
//!
//! | pass | kernel |
//! |---|---|
//! | conv2d forward, convT input gradient | [`Kernel::Forward`]: `grid = W · im2col(image)` |
//! | convT forward, conv2d input gradient | [`Kernel::Adjoint`]: `image = col2im(Wᵀ · grid)` |
//! | both weight gradients | [`Kernel::WeightGrad`]: `∂W = Σ_b grid · im2col(image)ᵀ` |
//!
//! On AVX-512, the forward kernel of products that gemm sums in one chain (at most
//! 512 values: D's first two layers at width 16, and the input gradients of G's
//! last two) skips the im2col matrix and reads the phased planes directly
//! ([`direct`]), with gemm's bytes.
//!
//! Results are deterministic: each sample's product is computed by one thread, and
//! weight gradients are summed over fixed chunks of the batch in a fixed order, so
//! the bytes do not depend on the number of threads.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::cell::RefCell;

mod direct;

/// Samples per partial weight-gradient sum (fixed so results do not depend on the
/// thread count).
const WEIGHT_GRAD_CHUNK: usize = 8;

/// Square kernel, stride and symmetric zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Geometry {
    /// Side of the grid a convolution produces from an image side, if any.
    pub fn grid_side(&self, image: usize) -> Option<usize> {
        if self.stride == 0 {
            return None;
        }
        (image + 2 * self.padding)
            .checked_sub(self.kernel)
            .map(|v| v / self.stride + 1)
    }
}

/// One image and its grid, per sample.
#[derive(Clone, Copy, Debug)]
struct Dims {
    batch: usize,
    image_c: usize,
    ih: usize,
    iw: usize,
    grid_c: usize,
    gh: usize,
    gw: usize,
}

/// What the blocked products ([`forward_in_blocks`], [`adjoint_in_blocks`],
/// [`weight_grad`]) need of a convolution: its sizes per sample and the column
/// transforms between an image and its im2col matrix — for maps here, for
/// volumes in [`crate::conv3d`].
pub(crate) trait ColumnLayout: Sync {
    fn batch(&self) -> usize;
    fn grid_c(&self) -> usize;
    /// Values of one sample's image and grid, and pixels (voxels) of its grid.
    fn image_len(&self) -> usize;
    fn grid_len(&self) -> usize;
    fn grid_px(&self) -> usize;
    /// Rows of the column matrix: image channels × taps.
    fn patch(&self, g: Geometry) -> usize;
    /// Scratch the column transforms need for their phased copy of a channel.
    fn phased_len(&self, g: Geometry) -> usize;
    /// cols[channel·taps + tap][grid position] = the image value the tap reads
    /// there (0 outside), rows `pitch` apart.
    fn gather_columns(
        &self,
        image: &[f32],
        g: Geometry,
        phased: &mut [f32],
        cols: &mut [f32],
        pitch: usize,
    );
    /// The adjoint of [`Self::gather_columns`], writing every value of `image`.
    fn scatter_columns(
        &self,
        g: Geometry,
        cols: &[f32],
        pitch: usize,
        phased: &mut [f32],
        image: &mut [f32],
    );
}

impl ColumnLayout for Dims {
    fn batch(&self) -> usize {
        self.batch
    }
    fn grid_c(&self) -> usize {
        self.grid_c
    }
    fn image_len(&self) -> usize {
        self.image_c * self.ih * self.iw
    }
    fn grid_len(&self) -> usize {
        self.grid_c * self.gh * self.gw
    }
    fn grid_px(&self) -> usize {
        self.gh * self.gw
    }
    fn patch(&self, g: Geometry) -> usize {
        self.image_c * g.kernel * g.kernel
    }
    fn phased_len(&self, g: Geometry) -> usize {
        PhasedPlane::new(self, g).len()
    }
    fn gather_columns(
        &self,
        image: &[f32],
        g: Geometry,
        phased: &mut [f32],
        cols: &mut [f32],
        pitch: usize,
    ) {
        im2col(image, self, g, phased, cols, pitch)
    }
    fn scatter_columns(
        &self,
        g: Geometry,
        cols: &[f32],
        pitch: usize,
        phased: &mut [f32],
        image: &mut [f32],
    ) {
        col2im(self, g, cols, pitch, phased, image)
    }
}

/// One axis of a [`PhasedPlane`]: image positions `i = x·s + phase` are stored at
/// `x − min_shift` for `x` from `min_shift` to `min_shift + extent`, zero where `i`
/// falls outside the image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PhasedAxis {
    /// floor(−p / s): the most negative whole-stride shift of a tap.
    pub(crate) min_shift: isize,
    /// Stored positions per phase.
    pub(crate) extent: usize,
}

impl PhasedAxis {
    pub(crate) fn new(image: usize, grid: usize, g: Geometry) -> Self {
        let (s, p) = (g.stride as isize, g.padding as isize);
        let min_shift = (-p).div_euclid(s);
        let max_shift = (g.kernel as isize - 1 - p).div_euclid(s);
        let real = image.div_ceil(g.stride) as isize;
        let extent = ((grid as isize + max_shift).max(real) - min_shift) as usize;
        PhasedAxis { min_shift, extent }
    }
    /// (phase, first stored position) of the window tap `t` reads for grid
    /// positions 0, 1, …: image position `g·s + t − p = (g + shift)·s + phase`.
    pub(crate) fn tap(&self, t: usize, g: Geometry) -> (usize, usize) {
        let (s, offset) = (g.stride as isize, t as isize - g.padding as isize);
        (
            offset.rem_euclid(s) as usize,
            (offset.div_euclid(s) - self.min_shift) as usize,
        )
    }
}

/// An image plane split by phase along both axes and framed with zeros:
/// `phased[py][px][y][x] = plane[(y + min_y)·s + py][(x + min_x)·s + px]`. Every
/// tap of a strided convolution then reads (im2col) or adds into (col2im) a whole
/// `grid height × grid width` window of one phase at a fixed offset: rows of
/// contiguous values, with no bounds to test and no padding to fill.
struct PhasedPlane {
    stride: usize,
    y: PhasedAxis,
    x: PhasedAxis,
}

impl PhasedPlane {
    fn new(d: &Dims, g: Geometry) -> Self {
        PhasedPlane {
            stride: g.stride,
            y: PhasedAxis::new(d.ih, d.gh, g),
            x: PhasedAxis::new(d.iw, d.gw, g),
        }
    }
    fn len(&self) -> usize {
        self.stride * self.stride * self.y.extent * self.x.extent
    }
    /// Start of the window of tap (ky, kx).
    fn window(&self, ky: usize, kx: usize, g: Geometry) -> usize {
        let ((py, y), (px, x)) = (self.y.tap(ky, g), self.x.tap(kx, g));
        ((py * self.stride + px) * self.y.extent + y) * self.x.extent + x
    }
    /// Start of each tap's window, in (ky, kx) order: the same for every channel.
    fn windows(&self, g: Geometry) -> Vec<usize> {
        (0..g.kernel)
            .flat_map(|ky| (0..g.kernel).map(move |kx| self.window(ky, kx, g)))
            .collect()
    }
    /// Where image row `iy`'s values of column phase `px` start (column 0 of it).
    fn image_row(&self, iy: usize, px: usize) -> usize {
        let s = self.stride;
        let y = ((iy / s) as isize - self.y.min_shift) as usize;
        let x = (-self.x.min_shift) as usize;
        (((iy % s) * s + px) * self.y.extent + y) * self.x.extent + x
    }
    /// Writes the image values of `plane` into `phased`, whose frame must be zero.
    #[inline(always)]
    fn split(&self, plane: &[f32], width: usize, phased: &mut [f32]) {
        for (iy, src) in plane.chunks_exact(width).enumerate() {
            for px in 0..self.stride.min(width) {
                let start = self.image_row(iy, px);
                match self.stride {
                    // The networks' stride, as a constant: a vector shuffle
                    // instead of one move per value.
                    2 => every_nth::<2>(&src[px..], &mut phased[start..]),
                    s => every_nth_of(&src[px..], s, &mut phased[start..]),
                }
            }
        }
    }
    #[inline(always)]
    fn merge(&self, phased: &[f32], width: usize, plane: &mut [f32]) {
        for (iy, dst) in plane.chunks_exact_mut(width).enumerate() {
            for px in 0..self.stride.min(width) {
                let start = self.image_row(iy, px);
                match self.stride {
                    2 => to_every_nth::<2>(&phased[start..], &mut dst[px..]),
                    s => to_every_nth_of(&phased[start..], s, &mut dst[px..]),
                }
            }
        }
    }
}

/// dst[i] = src[i·N] for every such value of src (dst is long enough).
#[inline(always)]
pub(crate) fn every_nth<const N: usize>(src: &[f32], dst: &mut [f32]) {
    let whole = src.chunks_exact(N);
    let tail = whole.remainder().first();
    let count = whole.len();
    for (d, chunk) in dst[..count].iter_mut().zip(whole) {
        *d = chunk[0];
    }
    if let Some(&v) = tail {
        dst[count] = v;
    }
}

#[inline(always)]
pub(crate) fn every_nth_of(src: &[f32], n: usize, dst: &mut [f32]) {
    for (d, &v) in dst.iter_mut().zip(src.iter().step_by(n)) {
        *d = v;
    }
}

/// dst[i·N] = src[i] for every such position of dst.
#[inline(always)]
pub(crate) fn to_every_nth<const N: usize>(src: &[f32], dst: &mut [f32]) {
    let mut whole = dst.chunks_exact_mut(N);
    let count = whole.len();
    for (chunk, &v) in (&mut whole).zip(&src[..count]) {
        chunk[0] = v;
    }
    if let Some(d) = whole.into_remainder().first_mut() {
        *d = src[count];
    }
}

#[inline(always)]
pub(crate) fn to_every_nth_of(src: &[f32], n: usize, dst: &mut [f32]) {
    for (d, &v) in dst.iter_mut().step_by(n).zip(src) {
        *d = v;
    }
}

/// dst (rows × `width`, contiguous) = the rows of `width` values `pitch` apart in src.
#[inline(always)]
pub(crate) fn copy_window(src: &[f32], pitch: usize, width: usize, dst: &mut [f32]) {
    #[inline(always)]
    fn rows(src: &[f32], pitch: usize, width: usize, dst: &mut [f32]) {
        for (r, row) in dst.chunks_exact_mut(width).enumerate() {
            row.copy_from_slice(&src[r * pitch..][..width]);
        }
    }
    // The widths of the grids here, as constants: a copy of a known short length
    // is a few vector moves, of an unknown one a call into memcpy.
    match width {
        4 => rows(src, pitch, 4, dst),
        8 => rows(src, pitch, 8, dst),
        16 => rows(src, pitch, 16, dst),
        32 => rows(src, pitch, 32, dst),
        _ => rows(src, pitch, width, dst),
    }
}

/// dst's rows of `width` values `pitch` apart += src (rows × `width`, contiguous).
#[inline(always)]
pub(crate) fn add_window(src: &[f32], width: usize, dst: &mut [f32], pitch: usize) {
    #[inline(always)]
    fn rows(src: &[f32], width: usize, dst: &mut [f32], pitch: usize) {
        for (r, row) in src.chunks_exact(width).enumerate() {
            for (o, v) in dst[r * pitch..][..width].iter_mut().zip(row) {
                *o += v;
            }
        }
    }
    // As in copy_window: whole vector additions for the usual widths.
    match width {
        4 => rows(src, 4, dst, pitch),
        8 => rows(src, 8, dst, pitch),
        16 => rows(src, 16, dst, pitch),
        32 => rows(src, 32, dst, pitch),
        _ => rows(src, width, dst, pitch),
    }
}

/// Defines `fn $name` as `$portable` compiled for AVX-512 and for AVX2 besides the
/// portable build, one picked at run time. The functions it serves move and add
/// values elementwise, which no vector width reorders, so every build gives the
/// same bytes.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) = $portable:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}
pub(crate) use vectorised;

/// Scratch of the kernels: the im2col matrix of a block of samples, one phased
/// plane, and the block's grids side by side.
struct Scratch<'a> {
    cols: &'a mut [f32],
    phased: &'a mut [f32],
    grids: &'a mut [f32],
}

thread_local! {
    /// Each thread's scratch buffers, kept between calls: a training step runs
    /// hundreds of convolutions of a few shapes, and fresh buffers cost an
    /// allocation and a page-faulting zero fill each time. Every kernel writes
    /// what it reads, so stale contents never leak into a result.
    static SCRATCH: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Runs `f` with scratch for blocks of `block` samples of the sizes `d` and `g`
/// need, from this thread's buffers.
fn with_scratch<D: ColumnLayout, R>(
    d: &D,
    g: Geometry,
    block: usize,
    f: impl FnOnce(&mut Scratch) -> R,
) -> R {
    let wide = block * d.grid_px();
    let sizes = [
        d.patch(g) * wide,
        d.phased_len(g),
        if block > 1 { d.grid_c() * wide } else { 0 },
    ];
    with_buffers(sizes, |[cols, phased, grids]| {
        f(&mut Scratch {
            cols,
            phased,
            grids,
        })
    })
}

/// Runs `f` with this thread's three buffers, cut to `sizes`.
fn with_buffers<R>(sizes: [usize; 3], f: impl FnOnce([&mut [f32]; 3]) -> R) -> R {
    let run = |buffers: &mut [Vec<f32>; 3]| {
        for (buffer, &size) in buffers.iter_mut().zip(&sizes) {
            if buffer.len() < size {
                buffer.resize(size, 0.0);
            }
        }
        let [a, b, c] = buffers;
        f([&mut a[..sizes[0]], &mut b[..sizes[1]], &mut c[..sizes[2]]])
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => run(&mut buffers),
        // Only a kernel called from inside a kernel would get here; none is.
        Err(_) => run(&mut Default::default()),
    })
}

vectorised! {
    /// cols[(c·k + ky)·k + kx][gy·gw + gx] = image[c][gy·s + ky − p][gx·s + kx − p]
    /// (0 outside), each row `pitch` after the last.
    fn im2col(image: &[f32], d: &Dims, g: Geometry, phased: &mut [f32], cols: &mut [f32], pitch: usize) = im2col_portable
}

#[inline(always)]
fn im2col_portable(
    image: &[f32],
    d: &Dims,
    g: Geometry,
    phased: &mut [f32],
    cols: &mut [f32],
    pitch: usize,
) {
    let (taps, n) = (g.kernel * g.kernel, d.grid_px());
    let plane = PhasedPlane::new(d, g);
    let windows = plane.windows(g);
    // Every channel writes the same positions, so the frame stays zero.
    phased.fill(0.0);
    for c in 0..d.image_c {
        plane.split(&image[c * d.ih * d.iw..][..d.ih * d.iw], d.iw, phased);
        for (tap, &window) in windows.iter().enumerate() {
            let row = &mut cols[(c * taps + tap) * pitch..][..n];
            copy_window(&phased[window..], plane.x.extent, d.gw, row);
        }
    }
}

vectorised! {
    /// The adjoint of [`im2col`]: image = scatter-add(cols); every value is written.
    /// Each image value sums its taps in (ky, kx) order.
    fn col2im(d: &Dims, g: Geometry, cols: &[f32], pitch: usize, phased: &mut [f32], image: &mut [f32]) = col2im_portable
}

#[inline(always)]
fn col2im_portable(
    d: &Dims,
    g: Geometry,
    cols: &[f32],
    pitch: usize,
    phased: &mut [f32],
    image: &mut [f32],
) {
    let (taps, n) = (g.kernel * g.kernel, d.grid_px());
    let plane = PhasedPlane::new(d, g);
    let windows = plane.windows(g);
    for c in 0..d.image_c {
        phased.fill(0.0);
        for (tap, &window) in windows.iter().enumerate() {
            let row = &cols[(c * taps + tap) * pitch..][..n];
            add_window(row, d.gw, &mut phased[window..], plane.x.extent);
        }
        plane.merge(phased, d.iw, &mut image[c * d.ih * d.iw..][..d.ih * d.iw]);
    }
}

/// A row-major matrix operand with arbitrary strides.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Operand {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Operand {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }
}

/// dst (m×n, rows `dst_pitch` apart) = [dst +] lhs (m×k) · rhs (k×n), on the
/// calling thread: the kernels parallelise over samples, and a product split across
/// threads could round differently with the thread count.
fn matmul(
    (m, n, k): (usize, usize, usize),
    (dst, dst_pitch): (&mut [f32], usize),
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
) {
    assert!(n <= dst_pitch && dst.len() >= (m.max(1) - 1) * dst_pitch + n);
    assert!(lhs.data.len() > (m.max(1) - 1) * lhs.row_stride + (k.max(1) - 1) * lhs.col_stride);
    assert!(rhs.data.len() > (k.max(1) - 1) * rhs.row_stride + (n.max(1) - 1) * rhs.col_stride);
    // SAFETY: the asserts above keep every access of the m×n, m×k and k×n
    // operands with the given strides inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_pitch as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Samples whose grids [`forward`] and [`adjoint`] lay side by side in one
/// product.
///
/// gemm's vector lanes run along the grid's pixels, 64 at a time; a 4×4 grid
/// alone fills a quarter of them, and its product (D's last convolution, G's
/// first) ran at two thirds the speed of a wide one. Blocks are formed only where
/// gemm sums the shared dimension in the same blocks for one sample and for
/// several (it picks its depth blocking per shape, and the blocking is the order
/// of the sum), so a block rounds every value exactly as one sample alone does
/// and results stay byte-identical to the unblocked kernels.
fn samples_per_product(n: usize, other: usize, depth: usize) -> usize {
    const LANES: usize = 64;
    // gemm sums a product of at most 256 values (or one with a single row or
    // column) in other kernels, and one with both sides ≤ 64 in depth blocks of
    // 512; a general product in blocks of the same size for any width, whole
    // when the depth is ≤ 512.
    let same_kernels = n > 1 && n * other > 256;
    let same_depth_blocks = n.max(other) > LANES || depth <= 512;
    if n < LANES && same_kernels && same_depth_blocks {
        LANES.div_ceil(n)
    } else {
        1
    }
}

/// grid[b] = W · im2col(image[b]).
fn forward(image: &[f32], weight: &[f32], d: &Dims, g: Geometry) -> Vec<f32> {
    if let Some(plan) = direct::Forward::new(d, g, weight) {
        return forward_direct(image, &plan, d);
    }
    forward_with_columns(image, weight, d, g)
}

/// grid[b] = W · columns(image[b]), with the grids of [`samples_per_product`]
/// samples side by side in each product: [`forward`]'s general path, and the
/// forward product of volumes.
pub(crate) fn forward_with_columns<D: ColumnLayout>(
    image: &[f32],
    weight: &[f32],
    d: &D,
    g: Geometry,
) -> Vec<f32> {
    let block = samples_per_product(d.grid_px(), d.grid_c(), d.patch(g));
    forward_in_blocks(image, weight, d, g, block)
}

/// [`forward`] with `block` samples per product.
fn forward_in_blocks<D: ColumnLayout>(
    image: &[f32],
    weight: &[f32],
    d: &D,
    g: Geometry,
    block: usize,
) -> Vec<f32> {
    let (patch, n) = (d.patch(g), d.grid_px());
    crate::output::par_filled(
        d.batch() * d.grid_len(),
        block * d.grid_len(),
        |i, out_block| {
            let samples = out_block.len() / d.grid_len();
            let wide = samples * n;
            with_scratch(d, g, block, |scratch| {
                for s in 0..samples {
                    let b = i * block + s;
                    let image_b = &image[b * d.image_len()..][..d.image_len()];
                    d.gather_columns(image_b, g, scratch.phased, &mut scratch.cols[s * n..], wide);
                }
                let product = if block == 1 {
                    &mut *out_block
                } else {
                    &mut *scratch.grids
                };
                matmul(
                    (d.grid_c(), wide, patch),
                    (product, wide),
                    Operand::rows(weight, patch),
                    Operand::rows(scratch.cols, wide),
                    false,
                );
                if block > 1 {
                    // (channel, sample, pixel) → (sample, channel, pixel)
                    for (s, out_b) in out_block.chunks_exact_mut(d.grid_len()).enumerate() {
                        for (c, out_c) in out_b.chunks_exact_mut(n).enumerate() {
                            out_c.copy_from_slice(&scratch.grids[c * wide + s * n..][..n]);
                        }
                    }
                }
            })
        },
    )
}

/// [`forward`] without an im2col matrix, where [`direct::Forward`] gives gemm's bytes.
fn forward_direct(image: &[f32], plan: &direct::Forward, d: &Dims) -> Vec<f32> {
    let [phased, padded] = plan.scratch(d);
    crate::output::par_filled(d.batch * d.grid_len(), d.grid_len(), |b, grid| {
        with_buffers([phased, padded, 0], |[phased, padded, _]| {
            let image_b = &image[b * d.image_len()..][..d.image_len()];
            plan.sample(image_b, d, phased, padded, grid)
        })
    })
}

/// image[b] = col2im(Wᵀ · grid[b]) (col2vol for volumes), blocked as
/// [`forward_with_columns`].
pub(crate) fn adjoint<D: ColumnLayout>(
    grid: &[f32],
    weight: &[f32],
    d: &D,
    g: Geometry,
) -> Vec<f32> {
    let block = samples_per_product(d.grid_px(), d.patch(g), d.grid_c());
    adjoint_in_blocks(grid, weight, d, g, block)
}

/// [`adjoint`] with `block` samples per product.
fn adjoint_in_blocks<D: ColumnLayout>(
    grid: &[f32],
    weight: &[f32],
    d: &D,
    g: Geometry,
    block: usize,
) -> Vec<f32> {
    let (patch, n) = (d.patch(g), d.grid_px());
    crate::output::par_filled(
        d.batch() * d.image_len(),
        block * d.image_len(),
        |i, out_block| {
            let samples = out_block.len() / d.image_len();
            let wide = samples * n;
            let grids = &grid[i * block * d.grid_len()..][..samples * d.grid_len()];
            with_scratch(d, g, block, |scratch| {
                let rhs = if block == 1 {
                    grids
                } else {
                    // (sample, channel, pixel) → (channel, sample, pixel)
                    for (s, grid_b) in grids.chunks_exact(d.grid_len()).enumerate() {
                        for (c, grid_c) in grid_b.chunks_exact(n).enumerate() {
                            scratch.grids[c * wide + s * n..][..n].copy_from_slice(grid_c);
                        }
                    }
                    &*scratch.grids
                };
                matmul(
                    (patch, wide, d.grid_c()),
                    (scratch.cols, wide),
                    Operand::transposed(weight, patch),
                    Operand::rows(rhs, wide),
                    false,
                );
                for (s, out_b) in out_block.chunks_exact_mut(d.image_len()).enumerate() {
                    d.scatter_columns(g, &scratch.cols[s * n..], wide, scratch.phased, out_b);
                }
            })
        },
    )
}

/// ∂W = Σ_b grid[b] · im2col(image[b])ᵀ, shape (grid_c, image_c·k²).
pub(crate) fn weight_grad<D: ColumnLayout>(
    image: &[f32],
    grid: &[f32],
    d: &D,
    g: Geometry,
) -> Vec<f32> {
    let (patch, n) = (d.patch(g), d.grid_px());
    let chunks = d.batch().div_ceil(WEIGHT_GRAD_CHUNK);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![0f32; d.grid_c() * patch];
            let end = ((chunk + 1) * WEIGHT_GRAD_CHUNK).min(d.batch());
            with_scratch(d, g, 1, |scratch| {
                for b in chunk * WEIGHT_GRAD_CHUNK..end {
                    let image_b = &image[b * d.image_len()..][..d.image_len()];
                    d.gather_columns(image_b, g, scratch.phased, scratch.cols, n);
                    matmul(
                        (d.grid_c(), patch, n),
                        (&mut acc, patch),
                        Operand::rows(&grid[b * d.grid_len()..][..d.grid_len()], n),
                        Operand::transposed(scratch.cols, n),
                        b > chunk * WEIGHT_GRAD_CHUNK,
                    );
                }
            });
            acc
        })
        .collect();
    sum_in_order(&partials, d.grid_c() * patch)
}

/// The element-wise sum of `partials` (each of `len` values): each value sums the
/// partials in their order, whichever worker adds it up, so the bytes do not depend
/// on the thread count; on the calling thread alone this sum was 2% of a width-64
/// step's work.
fn sum_in_order(partials: &[Vec<f32>], len: usize) -> Vec<f32> {
    const SPAN: usize = 1 << 14;
    crate::output::par_filled(len, SPAN, |i, total| {
        for part in partials {
            for (t, p) in total.iter_mut().zip(&part[i * SPAN..]) {
                *t += p;
            }
        }
    })
}

/// Checks that the blocks [`samples_per_product`] picks give, on random values,
/// the bytes of one sample per product, for the forward product and the adjoint;
/// returns how many of the two were blocked.
#[cfg(test)]
pub(crate) fn check_blocks_round_as_one_sample<D: ColumnLayout + std::fmt::Debug>(
    d: &D,
    g: Geometry,
    rng: &mut impl rand::Rng,
) -> usize {
    let mut uniform =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let (n, patch) = (d.grid_px(), d.patch(g));
    let image = uniform(d.batch() * d.image_len());
    let grid = uniform(d.batch() * d.grid_len());
    let weight = uniform(d.grid_c() * patch);
    let forward_block = samples_per_product(n, d.grid_c(), patch);
    assert!(
        forward_in_blocks(&image, &weight, d, g, forward_block)
            == forward_in_blocks(&image, &weight, d, g, 1),
        "forward {d:?}, {forward_block} per product"
    );
    let adjoint_block = samples_per_product(n, patch, d.grid_c());
    assert!(
        adjoint(&grid, &weight, d, g) == adjoint_in_blocks(&grid, &weight, d, g, 1),
        "adjoint {d:?}, {adjoint_block} per product"
    );
    usize::from(forward_block > 1) + usize::from(adjoint_block > 1)
}

/// Which of the three products a [`ConvOp`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// (image, W) → grid: conv2d forward.
    Forward,
    /// (grid, W) → image of the given side: conv_transpose2d forward.
    Adjoint { image: (usize, usize) },
    /// (image, grid) → W.
    WeightGrad,
}

/// A candle custom op computing one [`Kernel`]; with `differentiable`, its backward
/// pass is made of the other kernels and skips inputs that need no gradient.
#[derive(Clone, Copy, Debug)]
pub struct ConvOp {
    pub kernel: Kernel,
    pub geometry: Geometry,
    pub differentiable: bool,
}

fn dims4(l: &Layout, what: &str) -> candle_core::Result<(usize, usize, usize, usize)> {
    l.shape()
        .dims4()
        .map_err(|_| candle_core::Error::Msg(format!("{what} must be 4-D, got {:?}", l.dims())))
}

pub(crate) fn contiguous<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => {
            return Err(candle_core::Error::Msg(format!(
                "fast convolution: {what} must be f32, got {:?}",
                s.dtype()
            )))
        }
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(candle_core::Error::Msg(format!(
            "fast convolution: {what} must be contiguous"
        ))),
    }
}

pub(crate) fn shape_error(msg: String) -> candle_core::Error {
    candle_core::Error::Msg(format!("fast convolution: {msg}"))
}

impl ConvOp {
    /// The per-sample dimensions of a call, checked against each other.
    fn dims(&self, l1: &Layout, l2: &Layout) -> candle_core::Result<Dims> {
        let g = self.geometry;
        let grid_of = |ih: usize, iw: usize| match (g.grid_side(ih), g.grid_side(iw)) {
            (Some(gh), Some(gw)) if gh > 0 && gw > 0 => Ok((gh, gw)),
            _ => Err(shape_error(format!(
                "image {ih}×{iw} is smaller than kernel {} with padding {}",
                g.kernel, g.padding
            ))),
        };
        let check_weight = |w: (usize, usize, usize, usize), gc: usize, ic: usize| {
            if w != (gc, ic, g.kernel, g.kernel) {
                Err(shape_error(format!(
                    "weight {w:?} does not match ({gc}, {ic}, {k}, {k})",
                    k = g.kernel
                )))
            } else {
                Ok(())
            }
        };
        match self.kernel {
            Kernel::Forward => {
                let (batch, image_c, ih, iw) = dims4(l1, "input")?;
                let w = dims4(l2, "weight")?;
                check_weight(w, w.0, image_c)?;
                let (gh, gw) = grid_of(ih, iw)?;
                Ok(Dims {
                    batch,
                    image_c,
                    ih,
                    iw,
                    grid_c: w.0,
                    gh,
                    gw,
                })
            }
            Kernel::Adjoint { image: (ih, iw) } => {
                let (batch, grid_c, gh, gw) = dims4(l1, "input")?;
                let w = dims4(l2, "weight")?;
                check_weight(w, grid_c, w.1)?;
                if grid_of(ih, iw)? != (gh, gw) {
                    return Err(shape_error(format!(
                        "an image of {ih}×{iw} does not convolve to {gh}×{gw}"
                    )));
                }
                Ok(Dims {
                    batch,
                    image_c: w.1,
                    ih,
                    iw,
                    grid_c,
                    gh,
                    gw,
                })
            }
            Kernel::WeightGrad => {
                let (batch, image_c, ih, iw) = dims4(l1, "image")?;
                let (gb, grid_c, gh, gw) = dims4(l2, "grid")?;
                if gb != batch || grid_of(ih, iw)? != (gh, gw) {
                    return Err(shape_error(format!(
                        "image ({batch}, {image_c}, {ih}, {iw}) and grid ({gb}, {grid_c}, {gh}, {gw}) do not match"
                    )));
                }
                Ok(Dims {
                    batch,
                    image_c,
                    ih,
                    iw,
                    grid_c,
                    gh,
                    gw,
                })
            }
        }
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.kernel {
            Kernel::Forward => "simemu-conv2d",
            Kernel::Adjoint { .. } => "simemu-conv-transpose2d",
            Kernel::WeightGrad => "simemu-conv-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2)?;
        let a = contiguous(s1, l1, "first operand")?;
        let b = contiguous(s2, l2, "second operand")?;
        let g = self.geometry;
        let k = g.kernel;
        let (out, shape): (Vec<f32>, Shape) = match self.kernel {
            Kernel::Forward => (forward(a, b, &d, g), (d.batch, d.grid_c, d.gh, d.gw).into()),
            Kernel::Adjoint { .. } => (
                adjoint(a, b, &d, g),
                (d.batch, d.image_c, d.ih, d.iw).into(),
            ),
            Kernel::WeightGrad => (weight_grad(a, b, &d, g), (d.grid_c, d.image_c, k, k).into()),
        };
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if !self.differentiable {
            return Err(candle_core::Error::BackwardNotSupported { op: self.name() });
        }
        let grad = grad.contiguous()?;
        let op = |kernel| ConvOp {
            kernel,
            geometry: self.geometry,
            differentiable: false,
        };
        // Data and detached tensors track no op: their gradient is never needed.
        let (grad_arg, grad_weight) = match self.kernel {
            Kernel::Forward => {
                let (_, _, ih, iw) = arg1.dims4()?;
                let ga = arg1
                    .track_op()
                    .then(|| {
                        grad.apply_op2_no_bwd(weight, &op(Kernel::Adjoint { image: (ih, iw) }))
                    })
                    .transpose()?;
                let gw = weight
                    .track_op()
                    .then(|| arg1.apply_op2_no_bwd(&grad, &op(Kernel::WeightGrad)))
                    .transpose()?;
                (ga, gw)
            }
            Kernel::Adjoint { .. } => {
                let ga = arg1
                    .track_op()
                    .then(|| grad.apply_op2_no_bwd(weight, &op(Kernel::Forward)))
                    .transpose()?;
                let gw = weight
                    .track_op()
                    .then(|| grad.apply_op2_no_bwd(arg1, &op(Kernel::WeightGrad)))
                    .transpose()?;
                (ga, gw)
            }
            Kernel::WeightGrad => {
                return Err(candle_core::Error::BackwardNotSupported { op: self.name() })
            }
        };
        Ok((grad_arg, grad_weight))
    }
}

pub(crate) fn fast_path(x: &Tensor, w: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32
}

/// 2-D convolution of `x` (B, C_in, H, W) with `kernel` (C_out, C_in, k, k), as
/// candle's `Tensor::conv2d` with dilation 1 and one group. f32 on the CPU takes
/// the fast path; anything else falls back to candle.
pub fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    if !fast_path(x, kernel) {
        return x.conv2d(kernel, padding, stride, 1, 1);
    }
    let (_, _, kh, kw) = kernel.dims4()?;
    if kh != kw {
        return Err(shape_error(format!("kernel must be square, got {kh}×{kw}")));
    }
    let op = ConvOp {
        kernel: Kernel::Forward,
        geometry: Geometry {
            kernel: kh,
            stride,
            padding,
        },
        differentiable: true,
    };
    x.contiguous()?.apply_op2(&kernel.contiguous()?, op)
}

/// Transposed 2-D convolution of `x` (B, C_in, H, W) with `kernel`
/// (C_in, C_out, k, k), as candle's `Tensor::conv_transpose2d` with dilation 1:
/// the output side is (H − 1)·stride − 2·padding + k + output_padding.
pub fn conv_transpose2d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> candle_core::Result<Tensor> {
    if !fast_path(x, kernel) {
        return x.conv_transpose2d(kernel, padding, output_padding, stride, 1);
    }
    let (_, _, kh, kw) = kernel.dims4()?;
    let (_, _, h, w) = x.dims4()?;
    if kh != kw {
        return Err(shape_error(format!("kernel must be square, got {kh}×{kw}")));
    }
    if output_padding >= stride.max(1) {
        return Err(shape_error(format!(
            "output_padding {output_padding} must be smaller than the stride {stride}"
        )));
    }
    let side = |g: usize| {
        ((g.max(1) - 1) * stride + kh + output_padding)
            .checked_sub(2 * padding)
            .filter(|_| g > 0)
            .ok_or_else(|| {
                shape_error(format!(
                    "padding {padding} leaves no output for input side {g}"
                ))
            })
    };
    let op = ConvOp {
        kernel: Kernel::Adjoint {
            image: (side(h)?, side(w)?),
        },
        geometry: Geometry {
            kernel: kh,
            stride,
            padding,
        },
        differentiable: true,
    };
    x.contiguous()?.apply_op2(&kernel.contiguous()?, op)
}

/// Pads the last two dimensions of `x` by `p` on each side with the values from the
/// opposite edge: a convolution of the padded tensor without padding is the
/// convolution of a periodic image (a torus), with no border for the network to
/// learn.
pub fn circular_pad(x: &Tensor, p: usize) -> candle_core::Result<Tensor> {
    pad_periodic(x, p, &[2, 3])
}

/// Pads each of `dims` of `x` by `p` on each side with the values from the
/// opposite edge.
pub(crate) fn pad_periodic(x: &Tensor, p: usize, dims: &[usize]) -> candle_core::Result<Tensor> {
    if p == 0 {
        return Ok(x.clone());
    }
    let mut x = x.clone();
    for &d in dims {
        let n = x.dim(d)?;
        if p > n {
            candle_core::bail!("circular padding {p} exceeds the side {n}");
        }
        x = Tensor::cat(&[&x.narrow(d, n - p, p)?, &x, &x.narrow(d, 0, p)?], d)?;
    }
    Ok(x)
}

/// `conv_transpose2d` of a periodic image to a `stride`× larger periodic image: the
/// input padded circularly by one grid pixel, transposed without padding, and the
/// output cropped where the zero-padded version's would sit. One pixel suffices
/// for the layers used here (stride 2 with 4×4/padding 1 or 5×5/padding 2): no
/// output pixel draws on an input more than one pixel beyond the grid.
pub fn circular_conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let full = conv_transpose2d(&circular_pad(x, 1)?, weight, stride, 0, 0)?;
    let offset = stride + padding;
    full.narrow(2, offset, stride * h)?
        .narrow(3, offset, stride * w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    /// `n` values uniform in [−1, 1).
    fn uniform(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn random(shape: &[usize], rng: &mut rand_chacha::ChaCha8Rng) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(uniform(n, rng), shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn scale(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .max(1.0)
    }

    fn dot64(a: &Tensor, b: &Tensor) -> (f64, f64) {
        let a = a.to_dtype(DType::F64).unwrap();
        let b = b.to_dtype(DType::F64).unwrap();
        let dot = (&a * &b)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let mag = (a.abs().unwrap() * b.abs().unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        (dot, mag)
    }

    /// Values and both gradients of `fast` against candle's `reference` for the loss
    /// L = Σ y·r with a random r. Values: f32 sums of up to C·k² products of terms
    /// ≤ 1 differ by reassociation only, so 1e-5 of the largest value. Gradients:
    /// L is linear in each argument, so for a random direction δ the exact identity
    /// ⟨∂L/∂x, δ⟩ = L(x + δ) − L(x) holds; the right side is evaluated in f64 and the
    /// left from the f32 gradient, so they agree to 1e-5 of Σ|∂L/∂x·δ|. Where
    /// candle's own backward works (it fails on sides that stride does not divide),
    /// the gradients are also compared with it directly.
    fn check(
        x: &Tensor,
        w: &Tensor,
        fast: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        reference: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        rng: &mut rand_chacha::ChaCha8Rng,
        what: &str,
    ) {
        let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
        let y_ref = reference(xv.as_tensor(), wv.as_tensor()).unwrap();
        let y_fast = fast(xv.as_tensor(), wv.as_tensor()).unwrap();
        assert_eq!(y_ref.dims(), y_fast.dims(), "{what}: shape");
        let tol = 1e-5 * scale(&y_ref);
        assert!(max_abs_diff(&y_ref, &y_fast) <= tol, "{what}: values");
        let r = random(y_ref.dims(), rng);
        let g_fast = (&y_fast * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let loss64 = |x: &Tensor, w: &Tensor| {
            let f = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            dot64(&reference(&f(x), &f(w)).unwrap(), &r).0
        };
        let base = loss64(x, w);
        for (name, v) in [("input", &xv), ("weight", &wv)] {
            let g = g_fast.get(v).unwrap();
            let delta = random(g.dims(), rng);
            let (xd, wd) = if name == "input" {
                ((x + &delta).unwrap(), w.clone())
            } else {
                (x.clone(), (w + &delta).unwrap())
            };
            let (predicted, magnitude) = dot64(g, &delta);
            let actual = loss64(&xd, &wd) - base;
            assert!(
                (predicted - actual).abs() <= 1e-5 * magnitude,
                "{what}: {name} gradient predicts {predicted}, the loss moved {actual}"
            );
        }
        if let Ok(g_ref) = (&y_ref * &r).unwrap().sum_all().unwrap().backward() {
            for (name, v) in [("input", &xv), ("weight", &wv)] {
                let (a, b) = (g_ref.get(v).unwrap(), g_fast.get(v).unwrap());
                let d = max_abs_diff(a, b);
                assert!(
                    d <= 1e-5 * scale(a),
                    "{what}: {name} gradient differs by {d}"
                );
            }
        }
    }

    #[test]
    fn conv2d_matches_candle_values_and_gradients() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        // (batch, c_in, c_out, h, w, k, stride, padding), odd sizes included;
        // the last two take the direct kernel on AVX-512.
        let cases = [
            (3, 2, 4, 10, 10, 5, 2, 2),
            (2, 3, 5, 9, 7, 5, 2, 2),
            (1, 1, 3, 8, 8, 3, 1, 1),
            (17, 4, 2, 6, 11, 3, 2, 0),
            (2, 2, 2, 5, 5, 5, 3, 1),
            (9, 1, 8, 16, 16, 5, 2, 2),
            (3, 5, 11, 13, 13, 4, 2, 1),
        ];
        for (b, ci, co, h, w, k, s, p) in cases {
            let x = random(&[b, ci, h, w], &mut rng);
            let kern = random(&[co, ci, k, k], &mut rng);
            check(
                &x,
                &kern,
                |x, w| conv2d(x, w, s, p),
                |x, w| x.conv2d(w, p, s, 1, 1),
                &mut rng,
                &format!("conv2d {:?}", (b, ci, co, h, w, k, s, p)),
            );
        }
    }

    #[test]
    fn conv_transpose2d_matches_candle_values_and_gradients() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        // (batch, c_in, c_out, h, w, k, stride, padding, output_padding).
        let cases = [
            (3, 4, 2, 5, 5, 5, 2, 2, 1),
            (2, 3, 5, 4, 7, 5, 2, 2, 0),
            (1, 2, 3, 6, 6, 3, 1, 1, 0),
            (17, 2, 1, 3, 5, 3, 2, 0, 1),
            (2, 2, 2, 4, 4, 5, 3, 1, 2),
            (9, 8, 1, 8, 8, 5, 2, 2, 1),
        ];
        for (b, ci, co, h, w, k, s, p, op) in cases {
            let x = random(&[b, ci, h, w], &mut rng);
            let kern = random(&[ci, co, k, k], &mut rng);
            check(
                &x,
                &kern,
                |x, w| conv_transpose2d(x, w, s, p, op),
                |x, w| x.conv_transpose2d(w, p, op, s, 1),
                &mut rng,
                &format!("conv_transpose2d {:?}", (b, ci, co, h, w, k, s, p, op)),
            );
        }
    }

    #[test]
    fn non_contiguous_inputs_and_untracked_data() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // A transposed view: (B, C, W, H) → (B, C, H, W), not contiguous.
        let x = random(&[4, 3, 10, 8], &mut rng).transpose(2, 3).unwrap();
        assert!(!x.is_contiguous());
        let w = Var::from_tensor(&random(&[2, 3, 5, 5], &mut rng)).unwrap();
        let y_ref = x.conv2d(w.as_tensor(), 2, 2, 1, 1).unwrap();
        let y = conv2d(&x, w.as_tensor(), 2, 2).unwrap();
        assert!(max_abs_diff(&y_ref, &y) <= 1e-5 * scale(&y_ref));
        // Data needs no gradient: only the weight gets one.
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        let gw = grads.get(&w).unwrap();
        let gw_ref = y_ref.sum_all().unwrap().backward().unwrap();
        assert!(max_abs_diff(gw, gw_ref.get(&w).unwrap()) <= 1e-5 * scale(gw));
        let xt = random(&[2, 3, 4, 6], &mut rng).transpose(2, 3).unwrap();
        let wt = random(&[3, 2, 5, 5], &mut rng).transpose(2, 3).unwrap();
        let y_ref = xt
            .conv_transpose2d(&wt.contiguous().unwrap(), 2, 1, 2, 1)
            .unwrap();
        let y = conv_transpose2d(&xt, &wt, 2, 2, 1).unwrap();
        assert!(max_abs_diff(&y_ref, &y) <= 1e-5 * scale(&y_ref));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let x = random(&[20, 3, 12, 12], &mut rng);
        let w = Var::from_tensor(&random(&[4, 3, 5, 5], &mut rng)).unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let xv = Var::from_tensor(&x).unwrap();
                let y = conv2d(xv.as_tensor(), w.as_tensor(), 2, 2).unwrap();
                let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (
                    flat(&y),
                    flat(g.get(&xv).unwrap()),
                    flat(g.get(&w).unwrap()),
                )
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn im2col_is_its_definition_and_col2im_its_adjoint() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let geometries = [
            (5, 2, 2),
            (4, 2, 1),
            (3, 1, 1),
            (3, 2, 0),
            (5, 3, 1),
            (1, 1, 0),
            (2, 2, 0),
            (5, 1, 4),
        ];
        for (kernel, stride, padding) in geometries {
            let g = Geometry {
                kernel,
                stride,
                padding,
            };
            for (ih, iw) in [(8, 8), (9, 7), (5, 6), (16, 3)] {
                let (Some(gh), Some(gw)) = (g.grid_side(ih), g.grid_side(iw)) else {
                    continue;
                };
                let d = Dims {
                    batch: 1,
                    image_c: 2,
                    ih,
                    iw,
                    grid_c: 1,
                    gh,
                    gw,
                };
                let what = format!("{g:?} on {ih}×{iw}");
                let image = uniform(d.image_len(), &mut rng);
                let adjoint_probe = uniform(d.patch(g) * d.grid_px(), &mut rng);
                let (cols, back) = with_scratch(&d, g, 1, |scratch| {
                    im2col(&image, &d, g, scratch.phased, scratch.cols, d.grid_px());
                    let cols = scratch.cols.to_vec();
                    let mut back = vec![f32::NAN; d.image_len()];
                    col2im(
                        &d,
                        g,
                        &adjoint_probe,
                        d.grid_px(),
                        scratch.phased,
                        &mut back,
                    );
                    (cols, back)
                });
                let mut expected = Vec::with_capacity(cols.len());
                for c in 0..d.image_c {
                    for ky in 0..kernel {
                        for kx in 0..kernel {
                            for gy in 0..gh {
                                for gx in 0..gw {
                                    let iy = (gy * stride + ky) as isize - padding as isize;
                                    let ix = (gx * stride + kx) as isize - padding as isize;
                                    let inside = (0..ih as isize).contains(&iy)
                                        && (0..iw as isize).contains(&ix);
                                    expected.push(if inside {
                                        image[(c * ih + iy as usize) * iw + ix as usize]
                                    } else {
                                        0.0
                                    });
                                }
                            }
                        }
                    }
                }
                assert_eq!(cols, expected, "im2col, {what}");
                // ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩, and col2im writes every value.
                let dot = |a: &[f32], b: &[f32]| {
                    a.iter()
                        .zip(b)
                        .map(|(&u, &v)| u as f64 * v as f64)
                        .sum::<f64>()
                };
                let (lhs, rhs) = (dot(&cols, &adjoint_probe), dot(&image, &back));
                assert!(
                    (lhs - rhs).abs() <= 1e-5 * (1.0 + lhs.abs()),
                    "col2im, {what}: {lhs} vs {rhs}"
                );
            }
        }
    }

    /// Blocks of samples are formed only where gemm rounds them as it rounds one
    /// sample, byte for byte: the 4×4 grids of the benchmark networks' last D and
    /// first G layer at widths 1 to 64, a 2×2 grid, an odd batch, and shapes on
    /// either side of gemm's small-matrix and depth-block limits.
    #[test]
    fn blocks_of_samples_round_as_one_sample() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let g = Geometry {
            kernel: 5,
            stride: 2,
            padding: 2,
        };
        let mut blocked = 0;
        // (image channels, image side, grid channels)
        for (image_c, side, grid_c) in [
            (32, 8, 64),
            (64, 8, 128),
            (256, 8, 512),
            (128, 4, 256),
            (8, 8, 16),
            (4, 8, 8),
            (30, 8, 20),
            (21, 8, 70),
            (3, 6, 5),
            (1, 4, 3),
        ] {
            let d = Dims {
                batch: 13,
                image_c,
                ih: side,
                iw: side,
                grid_c,
                gh: side.div_ceil(2),
                gw: side.div_ceil(2),
            };
            blocked += check_blocks_round_as_one_sample(&d, g, &mut rng);
        }
        assert!(blocked >= 10, "only {blocked} products were blocked");
    }

    #[test]
    fn direct_matches_im2col_and_gemm() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let mut direct = 0;
        // (image channels, image side, grid channels) of the width-16 networks'
        // layers (G's transposed convolutions have D's shapes; D3's and D4's sum
        // too many values for the direct kernel) and D1 at width 64, then random
        // geometries.
        let mut cases = vec![
            ((5, 2, 2), (1, 64, 16)),
            ((5, 2, 2), (16, 32, 32)),
            ((5, 2, 2), (32, 16, 64)),
            ((5, 2, 2), (64, 8, 128)),
            ((5, 2, 2), (1, 64, 64)),
            ((5, 2, 2), (20, 31, 9)),
        ];
        for _ in 0..40 {
            let kernel = rng.random_range(1..=6);
            let geometry = (kernel, rng.random_range(1..=3), rng.random_range(0..kernel));
            let shape = (
                rng.random_range(1..=12),
                rng.random_range(kernel..=40),
                rng.random_range(2..=40),
            );
            cases.push((geometry, shape));
        }
        for ((kernel, stride, padding), (image_c, side, grid_c)) in cases {
            let g = Geometry {
                kernel,
                stride,
                padding,
            };
            let grid_side = g.grid_side(side).unwrap();
            let d = Dims {
                batch: 3,
                image_c,
                ih: side,
                iw: side,
                grid_c,
                gh: grid_side,
                gw: grid_side,
            };
            let weight = uniform(grid_c * d.patch(g), &mut rng);
            let Some(plan) = direct::Forward::new(&d, g, &weight) else {
                continue;
            };
            direct += 1;
            let mut image = uniform(d.batch * d.image_len(), &mut rng);
            // Exact zeros too: a sum of zero products keeps gemm's sign of zero.
            for v in image.iter_mut().step_by(7) {
                *v = 0.0;
            }
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(
                bits(forward_direct(&image, &plan, &d)),
                bits(forward_in_blocks(&image, &weight, &d, g, 1)),
                "{g:?} {d:?}"
            );
        }
        // 42 of the 46 shapes sum at most 512 values with enough outputs.
        if direct::avx512() {
            assert!(
                direct >= 40,
                "only {direct} products took the direct kernel"
            );
        }
    }

    #[test]
    fn bad_shapes_are_named() {
        let x = Tensor::zeros((1, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((4, 3, 5, 5), DType::F32, &Device::Cpu).unwrap();
        let e = conv2d(&x, &w, 2, 2).unwrap_err().to_string();
        assert!(e.contains("weight"), "{e}");
        let w = Tensor::zeros((2, 1, 5, 5), DType::F32, &Device::Cpu).unwrap();
        let e = conv_transpose2d(&x, &w, 2, 2, 2).unwrap_err().to_string();
        assert!(e.contains("output_padding"), "{e}");
    }
    /// 3×3 copies of an image side by side: the middle copy sees periodic neighbours.
    fn tiled(x: &Tensor) -> Tensor {
        let row = Tensor::cat(&[x, x, x], 3).unwrap();
        Tensor::cat(&[&row, &row, &row], 2).unwrap()
    }

    /// The circular layers equal the zero-padded ones applied to a periodically
    /// tiled image, read in the middle copy, where no border is in reach.
    #[test]
    fn circular_layers_see_a_periodic_image() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 6;
        let x = random(&[2, 3, n, n], &mut rng);
        for (k, padding) in [(4, 1), (5, 2)] {
            let w = random(&[3, 4, k, k], &mut rng);
            let got = circular_conv_transpose2d(&x, &w, 2, padding).unwrap();
            let output_padding = (k + 1) % 2;
            let big = conv_transpose2d(&tiled(&x), &w, 2, padding, output_padding).unwrap();
            let want = big
                .narrow(2, 2 * n, 2 * n)
                .unwrap()
                .narrow(3, 2 * n, 2 * n)
                .unwrap();
            assert!(max_abs_diff(&got, &want) < 1e-5 * scale(&want), "{k}×{k}");
        }
        let w = random(&[4, 3, 5, 5], &mut rng);
        let got = conv2d(&circular_pad(&x, 2).unwrap(), &w, 2, 0).unwrap();
        let big = conv2d(&tiled(&x), &w, 2, 2).unwrap();
        let h = n / 2;
        let want = big.narrow(2, h, h).unwrap().narrow(3, h, h).unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-5 * scale(&want));
        assert!(circular_pad(&x, n + 1).is_err());
    }
}
