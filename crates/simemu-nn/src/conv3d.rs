//! 3-D convolutions for generator networks of volumes: `conv3d` and
//! `conv_transpose3d` with both backward passes, as candle custom ops (candle has
//! no 3-D convolution).
//!
//! The layout is [`crate::conv`]'s: call the larger side of a convolution the
//! *image* and the smaller the *grid*, and read the weight as a matrix
//! `W: (grid channels, image channels·k³)` — the layout of both PyTorch's `Conv3d`
//! weight `(c_out, c_in, k, k, k)` and its `ConvTranspose3d` weight
//! `(c_in, c_out, k, k, k)`. Three kernels serve all six passes:
//!
//! | pass | kernel |
//! |---|---|
//! | conv3d forward, convT input gradient | [`Kernel::Forward`]: `grid = W · vol2col(image)` |
//! | convT forward, conv3d input gradient | [`Kernel::Adjoint`]: `image = col2vol(Wᵀ · grid)` |
//! | both weight gradients | [`Kernel::WeightGrad`]: `∂W = Σ_b grid · vol2col(image)ᵀ` |
//!
//! The products, their parallel split over the batch and their blocking of small
//! grids are [`crate::conv`]'s (through [`ColumnLayout`]); only the column
//! transforms are volumes' own: vol2col and col2vol read and write a volume split
//! by phase (`PhasedVolume`), so each tap moves contiguous rows. Weight
//! gradients sum fixed chunks of the batch in a fixed order, so the bytes do not
//! depend on the number of threads.
//!
//! Off the CPU, or in another dtype, the same functions compute the same result from
//! 2-D convolutions, one per depth tap of the kernel ([`tensor_ops`]), which candle
//! runs on any device.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::conv::{
    add_window, adjoint, contiguous, copy_window, every_nth, every_nth_of, fast_path,
    forward_with_columns, shape_error, to_every_nth, to_every_nth_of, vectorised, weight_grad,
    ColumnLayout, Geometry, PhasedAxis,
};

/// One image and its grid, per sample; sides are (depth, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dims {
    batch: usize,
    image_c: usize,
    image: [usize; 3],
    grid_c: usize,
    grid: [usize; 3],
}

impl Dims {
    fn image_px(&self) -> usize {
        self.image.iter().product()
    }
}

/// A volume split by phase along all three axes and framed with zeros (the 3-D
/// form of [`crate::conv`]'s phased plane): `phased[pz][py][px][z][y][x] =
/// volume[(z + min_z)·s + pz][(y + min_y)·s + py][(x + min_x)·s + px]`. Every tap
/// of a strided convolution then reads (vol2col) or adds into (col2vol) a whole
/// grid-sized window of one phase at a fixed offset: rows of contiguous values,
/// with no bounds to test and no padding to fill.
struct PhasedVolume {
    stride: usize,
    /// Depth, height, width.
    axes: [PhasedAxis; 3],
}

impl PhasedVolume {
    fn new(d: &Dims, g: Geometry) -> Self {
        PhasedVolume {
            stride: g.stride,
            axes: std::array::from_fn(|a| PhasedAxis::new(d.image[a], d.grid[a], g)),
        }
    }
    fn len(&self) -> usize {
        self.stride.pow(3) * self.axes.iter().map(|a| a.extent).product::<usize>()
    }
    /// Values between consecutive stored depths of one phase.
    fn plane_pitch(&self) -> usize {
        self.axes[1].extent * self.axes[2].extent
    }
    /// Where stored position (z, y, x) of phase (pz, py, px) is.
    fn at(&self, phase: [usize; 3], stored: [usize; 3]) -> usize {
        let s = self.stride;
        let [ez, ey, ex] = self.axes.map(|a| a.extent);
        (((((phase[0] * s + phase[1]) * s + phase[2]) * ez + stored[0]) * ey + stored[1]) * ex)
            + stored[2]
    }
    /// Start of each tap's window, in (z, y, x) order: the same for every channel.
    fn windows(&self, g: Geometry) -> Vec<usize> {
        let k = g.kernel;
        (0..k * k * k)
            .map(|tap| {
                let taps = [tap / (k * k), tap / k % k, tap % k];
                let placed: [(usize, usize); 3] =
                    std::array::from_fn(|a| self.axes[a].tap(taps[a], g));
                self.at(placed.map(|p| p.0), placed.map(|p| p.1))
            })
            .collect()
    }
    /// Where image row (iz, iy)'s values of column phase `px` start.
    fn image_row(&self, iz: usize, iy: usize, px: usize) -> usize {
        let s = self.stride;
        let stored = |i: usize, axis: &PhasedAxis| ((i / s) as isize - axis.min_shift) as usize;
        self.at(
            [iz % s, iy % s, px],
            [
                stored(iz, &self.axes[0]),
                stored(iy, &self.axes[1]),
                (-self.axes[2].min_shift) as usize,
            ],
        )
    }
    /// Writes the values of `volume` (sides `image`) into `phased`, whose frame
    /// must be zero.
    #[inline(always)]
    fn split(&self, volume: &[f32], image: [usize; 3], phased: &mut [f32]) {
        let [_, ih, iw] = image;
        for (row, src) in volume.chunks_exact(iw).enumerate() {
            let (iz, iy) = (row / ih, row % ih);
            for px in 0..self.stride.min(iw) {
                let start = self.image_row(iz, iy, px);
                match self.stride {
                    // The networks' stride, as a constant: a vector shuffle
                    // instead of one move per value.
                    2 => every_nth::<2>(&src[px..], &mut phased[start..]),
                    s => every_nth_of(&src[px..], s, &mut phased[start..]),
                }
            }
        }
    }
    /// Writes every value of `volume` from `phased`: the adjoint of [`Self::split`].
    #[inline(always)]
    fn merge(&self, phased: &[f32], image: [usize; 3], volume: &mut [f32]) {
        let [_, ih, iw] = image;
        for (row, dst) in volume.chunks_exact_mut(iw).enumerate() {
            let (iz, iy) = (row / ih, row % ih);
            for px in 0..self.stride.min(iw) {
                let start = self.image_row(iz, iy, px);
                match self.stride {
                    2 => to_every_nth::<2>(&phased[start..], &mut dst[px..]),
                    s => to_every_nth_of(&phased[start..], s, &mut dst[px..]),
                }
            }
        }
    }
}

vectorised! {
    /// cols[c·k³ + tap][grid position] = image[c][grid position·s + tap − p]
    /// (0 outside), each row `pitch` after the last; `phased` is scratch of
    /// [`PhasedVolume::len`] values.
    fn vol2col(image: &[f32], d: &Dims, g: Geometry, phased: &mut [f32], cols: &mut [f32], pitch: usize) = vol2col_portable
}

#[inline(always)]
fn vol2col_portable(
    image: &[f32],
    d: &Dims,
    g: Geometry,
    phased: &mut [f32],
    cols: &mut [f32],
    pitch: usize,
) {
    let (taps, n) = (g.kernel.pow(3), d.grid_px());
    let [gd, gh, gw] = d.grid;
    let volume = PhasedVolume::new(d, g);
    let (windows, plane, row_pitch) = (
        volume.windows(g),
        volume.plane_pitch(),
        volume.axes[2].extent,
    );
    // Every channel writes the same positions, so the frame stays zero.
    phased[..volume.len()].fill(0.0);
    for (c, channel) in image.chunks_exact(d.image_px()).enumerate() {
        volume.split(channel, d.image, phased);
        for (tap, &window) in windows.iter().enumerate() {
            let row = &mut cols[(c * taps + tap) * pitch..][..n];
            for (z, slab) in row.chunks_exact_mut(gh * gw).enumerate().take(gd) {
                copy_window(&phased[window + z * plane..], row_pitch, gw, slab);
            }
        }
    }
}

vectorised! {
    /// The adjoint of [`vol2col`]: image = scatter-add(cols); every value is
    /// written. Each image value sums its taps in (z, y, x) order.
    fn col2vol(d: &Dims, g: Geometry, cols: &[f32], pitch: usize, phased: &mut [f32], image: &mut [f32]) = col2vol_portable
}

#[inline(always)]
fn col2vol_portable(
    d: &Dims,
    g: Geometry,
    cols: &[f32],
    pitch: usize,
    phased: &mut [f32],
    image: &mut [f32],
) {
    let (taps, n) = (g.kernel.pow(3), d.grid_px());
    let [_, gh, gw] = d.grid;
    let volume = PhasedVolume::new(d, g);
    let (windows, plane, row_pitch) = (
        volume.windows(g),
        volume.plane_pitch(),
        volume.axes[2].extent,
    );
    let phased = &mut phased[..volume.len()];
    for (c, channel) in image.chunks_exact_mut(d.image_px()).enumerate() {
        phased.fill(0.0);
        for (tap, &window) in windows.iter().enumerate() {
            let row = &cols[(c * taps + tap) * pitch..][..n];
            for (z, slab) in row.chunks_exact(gh * gw).enumerate() {
                add_window(slab, gw, &mut phased[window + z * plane..], row_pitch);
            }
        }
        volume.merge(phased, d.image, channel);
    }
}

/// Volumes for the blocked products of [`crate::conv`]: the same sizes per
/// sample, with vol2col and col2vol as the column transforms.
impl ColumnLayout for Dims {
    fn batch(&self) -> usize {
        self.batch
    }
    fn grid_c(&self) -> usize {
        self.grid_c
    }
    fn image_len(&self) -> usize {
        self.image_c * self.image_px()
    }
    fn grid_len(&self) -> usize {
        self.grid_c * self.grid_px()
    }
    fn grid_px(&self) -> usize {
        self.grid.iter().product()
    }
    fn patch(&self, g: Geometry) -> usize {
        self.image_c * g.kernel.pow(3)
    }
    fn phased_len(&self, g: Geometry) -> usize {
        PhasedVolume::new(self, g).len()
    }
    fn gather_columns(
        &self,
        image: &[f32],
        g: Geometry,
        phased: &mut [f32],
        cols: &mut [f32],
        pitch: usize,
    ) {
        vol2col(image, self, g, phased, cols, pitch)
    }
    fn scatter_columns(
        &self,
        g: Geometry,
        cols: &[f32],
        pitch: usize,
        phased: &mut [f32],
        image: &mut [f32],
    ) {
        col2vol(self, g, cols, pitch, phased, image)
    }
}

/// Which of the three products a [`Conv3dOp`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// (image, W) → grid: conv3d forward.
    Forward,
    /// (grid, W) → image of the given (depth, height, width): conv_transpose3d forward.
    Adjoint { image: [usize; 3] },
    /// (image, grid) → W.
    WeightGrad,
}

/// A candle custom op computing one [`Kernel`]; with `differentiable`, its backward
/// pass is made of the other kernels and skips inputs that need no gradient.
#[derive(Clone, Copy, Debug)]
pub struct Conv3dOp {
    pub kernel: Kernel,
    pub geometry: Geometry,
    pub differentiable: bool,
}

fn dims5(l: &Layout, what: &str) -> candle_core::Result<[usize; 5]> {
    let (a, b, c, d, e) = l
        .shape()
        .dims5()
        .map_err(|_| shape_error(format!("{what} must be 5-D, got {:?}", l.dims())))?;
    Ok([a, b, c, d, e])
}

/// Joins (d, h, w) sides as "d×h×w".
fn sides(s: &[usize]) -> String {
    s.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

impl Conv3dOp {
    fn grid_of(&self, image: [usize; 3]) -> candle_core::Result<[usize; 3]> {
        let g = self.geometry;
        let mut grid = [0; 3];
        for (out, &side) in grid.iter_mut().zip(&image) {
            *out = g.grid_side(side).filter(|&v| v > 0).ok_or_else(|| {
                shape_error(format!(
                    "image {} is smaller than kernel {} with padding {}",
                    sides(&image),
                    g.kernel,
                    g.padding
                ))
            })?;
        }
        Ok(grid)
    }

    fn check_weight(
        &self,
        w: [usize; 5],
        grid_c: usize,
        image_c: usize,
    ) -> candle_core::Result<()> {
        let k = self.geometry.kernel;
        if w != [grid_c, image_c, k, k, k] {
            return Err(shape_error(format!(
                "weight {w:?} does not match [{grid_c}, {image_c}, {k}, {k}, {k}]"
            )));
        }
        Ok(())
    }

    /// The per-sample dimensions of a call, checked against each other.
    fn dims(&self, l1: &Layout, l2: &Layout) -> candle_core::Result<Dims> {
        match self.kernel {
            Kernel::Forward => {
                let [batch, image_c, id, ih, iw] = dims5(l1, "input")?;
                let w = dims5(l2, "weight")?;
                self.check_weight(w, w[0], image_c)?;
                Ok(Dims {
                    batch,
                    image_c,
                    image: [id, ih, iw],
                    grid_c: w[0],
                    grid: self.grid_of([id, ih, iw])?,
                })
            }
            Kernel::Adjoint { image } => {
                let [batch, grid_c, gd, gh, gw] = dims5(l1, "input")?;
                let w = dims5(l2, "weight")?;
                self.check_weight(w, grid_c, w[1])?;
                if self.grid_of(image)? != [gd, gh, gw] {
                    return Err(shape_error(format!(
                        "an image of {} does not convolve to {}",
                        sides(&image),
                        sides(&[gd, gh, gw])
                    )));
                }
                Ok(Dims {
                    batch,
                    image_c: w[1],
                    image,
                    grid_c,
                    grid: [gd, gh, gw],
                })
            }
            Kernel::WeightGrad => {
                let [batch, image_c, id, ih, iw] = dims5(l1, "image")?;
                let [gb, grid_c, gd, gh, gw] = dims5(l2, "grid")?;
                if gb != batch || self.grid_of([id, ih, iw])? != [gd, gh, gw] {
                    return Err(shape_error(format!(
                        "image ({batch}, {image_c}, {}) and grid ({gb}, {grid_c}, {}) do not match",
                        sides(&[id, ih, iw]),
                        sides(&[gd, gh, gw])
                    )));
                }
                Ok(Dims {
                    batch,
                    image_c,
                    image: [id, ih, iw],
                    grid_c,
                    grid: [gd, gh, gw],
                })
            }
        }
    }
}

impl CustomOp2 for Conv3dOp {
    fn name(&self) -> &'static str {
        match self.kernel {
            Kernel::Forward => "simemu-conv3d",
            Kernel::Adjoint { .. } => "simemu-conv-transpose3d",
            Kernel::WeightGrad => "simemu-conv3d-weight-grad",
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
        let [gd, gh, gw] = d.grid;
        let [id, ih, iw] = d.image;
        let (out, shape): (Vec<f32>, Shape) = match self.kernel {
            Kernel::Forward => (
                forward_with_columns(a, b, &d, g),
                (d.batch, d.grid_c, gd, gh, gw).into(),
            ),
            Kernel::Adjoint { .. } => (
                adjoint(a, b, &d, g),
                (d.batch, d.image_c, id, ih, iw).into(),
            ),
            Kernel::WeightGrad => (
                weight_grad(a, b, &d, g),
                (d.grid_c, d.image_c, k, k, k).into(),
            ),
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
        let op = |kernel| Conv3dOp {
            kernel,
            geometry: self.geometry,
            differentiable: false,
        };
        // Data and detached tensors track no op: their gradient is never needed.
        let (grad_arg, grad_weight) = match self.kernel {
            Kernel::Forward => {
                let (_, _, id, ih, iw) = arg1.dims5()?;
                let ga = arg1
                    .track_op()
                    .then(|| {
                        grad.apply_op2_no_bwd(
                            weight,
                            &op(Kernel::Adjoint {
                                image: [id, ih, iw],
                            }),
                        )
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

/// The side of a cubic kernel (C_a, C_b, k, k, k).
fn cubic_kernel(kernel: &Tensor) -> candle_core::Result<usize> {
    match kernel.dims() {
        &[_, _, kd, kh, kw] if kd == kh && kh == kw && kd > 0 => Ok(kd),
        dims => Err(shape_error(format!(
            "a 3-D kernel must be (C, C, k, k, k) with k ≥ 1, got {dims:?}"
        ))),
    }
}

/// 3-D convolution of `x` (B, C_in, D, H, W) with `kernel` (C_out, C_in, k, k, k),
/// as PyTorch's `conv3d` with dilation 1, one group and zero padding. f32 on the CPU
/// takes the fast path; anything else runs on [`tensor_ops`].
pub fn conv3d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    let k = cubic_kernel(kernel)?;
    if stride == 0 {
        return Err(shape_error("the stride must be at least 1".into()));
    }
    let op = Conv3dOp {
        kernel: Kernel::Forward,
        geometry: Geometry {
            kernel: k,
            stride,
            padding,
        },
        differentiable: true,
    };
    let (_, _, d, h, w) = x.dims5()?;
    op.grid_of([d, h, w])?;
    if !fast_path(x, kernel) {
        return tensor_ops::conv3d(x, kernel, stride, padding);
    }
    x.contiguous()?.apply_op2(&kernel.contiguous()?, op)
}

/// Transposed 3-D convolution of `x` (B, C_in, D, H, W) with `kernel`
/// (C_in, C_out, k, k, k), as PyTorch's `conv_transpose3d` with dilation 1 and one
/// group: each output side is (side − 1)·stride − 2·padding + k + output_padding.
pub fn conv_transpose3d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> candle_core::Result<Tensor> {
    let k = cubic_kernel(kernel)?;
    if stride == 0 {
        return Err(shape_error("the stride must be at least 1".into()));
    }
    if output_padding >= stride {
        return Err(shape_error(format!(
            "output_padding {output_padding} must be smaller than the stride {stride}"
        )));
    }
    let (_, _, d, h, w) = x.dims5()?;
    let side = |g: usize| {
        ((g.max(1) - 1) * stride + k + output_padding)
            .checked_sub(2 * padding)
            .filter(|&v| g > 0 && v > 0)
            .ok_or_else(|| {
                shape_error(format!(
                    "padding {padding} leaves no output for input side {g}"
                ))
            })
    };
    let image = [side(d)?, side(h)?, side(w)?];
    if !fast_path(x, kernel) {
        return tensor_ops::conv_transpose3d(x, kernel, stride, padding, output_padding);
    }
    let op = Conv3dOp {
        kernel: Kernel::Adjoint { image },
        geometry: Geometry {
            kernel: k,
            stride,
            padding,
        },
        differentiable: true,
    };
    x.contiguous()?.apply_op2(&kernel.contiguous()?, op)
}

/// Pads the last three dimensions of `x` by `p` on each side with the values from
/// the opposite face: a convolution of the padded volume without padding is the
/// convolution of a periodic volume (a 3-torus).
pub fn circular_pad3d(x: &Tensor, p: usize) -> candle_core::Result<Tensor> {
    crate::conv::pad_periodic(x, p, &[2, 3, 4])
}

/// `conv3d` of a periodic volume: PyTorch's `Conv3d` with `padding_mode =
/// "circular"`.
pub fn circular_conv3d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    conv3d(&circular_pad3d(x, padding)?, kernel, stride, 0)
}

/// `conv_transpose3d` of a periodic volume to a `stride`× larger periodic volume:
/// one period of the zero-padded transpose of the input repeated without end. It is
/// the input padded circularly by as many grid positions as any output reads beyond
/// the grid, transposed without padding, and cropped where the zero-padded
/// version's output would sit. Where 0 < k − 2·padding ≤ stride (4/1/2, 3/1/1,
/// 5/2/2) it is the adjoint of [`circular_conv3d`] with the same weight.
pub fn circular_conv_transpose3d(
    x: &Tensor,
    kernel: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    let k = cubic_kernel(kernel)?;
    if stride == 0 || padding >= k {
        return Err(shape_error(format!(
            "a periodic transposed convolution needs stride ≥ 1 and padding < k, got \
             stride {stride}, padding {padding}, k {k}"
        )));
    }
    // Output position o (of the transpose with padding p) reads inputs i with
    // i·s + t − p = o for taps t < k: from ⌈(o + p − k + 1)/s⌉ to ⌊(o + p)/s⌋, that
    // is up to ⌊(k − 1 − p)/s⌋ positions before the grid and ⌈p/s⌉ past it; at
    // least one, so that the unpadded transpose reaches past the crop.
    let margin = ((k - 1 - padding) / stride)
        .max(padding.div_ceil(stride))
        .max(1);
    let (_, _, d, h, w) = x.dims5()?;
    let full = conv_transpose3d(&circular_pad3d(x, margin)?, kernel, stride, 0, 0)?;
    let offset = margin * stride + padding;
    full.narrow(2, offset, stride * d)?
        .narrow(3, offset, stride * h)?
        .narrow(4, offset, stride * w)
}

/// The 3-D convolutions from 2-D ones: a kernel of depth k is k 2-D kernels, one per
/// depth tap, applied to the depth slices that tap reads. Differentiable through
/// candle's own backward passes, on any device and dtype.
pub mod tensor_ops {
    use candle_core::Tensor;

    fn depth_index(
        count: usize,
        stride: usize,
        tap: usize,
        x: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let index: Vec<u32> = (0..count).map(|z| (z * stride + tap) as u32).collect();
        Tensor::new(index.as_slice(), x.device())
    }

    /// [`super::conv3d`] (shapes already checked).
    pub fn conv3d(
        x: &Tensor,
        kernel: &Tensor,
        stride: usize,
        padding: usize,
    ) -> candle_core::Result<Tensor> {
        let (b, c, depth, h, w) = x.dims5()?;
        let (c_out, _, k, _, _) = kernel.dims5()?;
        let out_depth = (depth + 2 * padding - k) / stride + 1;
        let x = x.pad_with_zeros(2, padding, padding)?;
        let mut sum: Option<Tensor> = None;
        for tap in 0..k {
            let slices = x
                .index_select(&depth_index(out_depth, stride, tap, &x)?, 2)?
                .permute((0, 2, 1, 3, 4))?
                .reshape((b * out_depth, c, h, w))?;
            let plane = kernel.narrow(2, tap, 1)?.squeeze(2)?.contiguous()?;
            let y = crate::conv::conv2d(&slices, &plane, stride, padding)?;
            sum = Some(match sum {
                None => y,
                Some(s) => (s + y)?,
            });
        }
        let y = sum.expect("a kernel has at least one tap");
        let (_, _, oh, ow) = y.dims4()?;
        y.reshape((b, out_depth, c_out, oh, ow))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }

    /// [`super::conv_transpose3d`] (shapes already checked).
    pub fn conv_transpose3d(
        x: &Tensor,
        kernel: &Tensor,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> candle_core::Result<Tensor> {
        let (b, c_in, depth, h, w) = x.dims5()?;
        let (_, c_out, k, _, _) = kernel.dims5()?;
        let full_depth = (depth - 1) * stride + k + output_padding;
        let slices = x
            .permute((0, 2, 1, 3, 4))?
            .reshape((b * depth, c_in, h, w))?;
        let mut full: Option<Tensor> = None;
        let mut plane_sides = (0, 0);
        for tap in 0..k {
            let plane = kernel.narrow(2, tap, 1)?.squeeze(2)?.contiguous()?;
            let y =
                crate::conv::conv_transpose2d(&slices, &plane, stride, padding, output_padding)?;
            let (_, _, oh, ow) = y.dims4()?;
            plane_sides = (oh, ow);
            let y = y.reshape((b, depth, c_out * oh * ow))?;
            let acc = match full {
                Some(acc) => acc,
                None => Tensor::zeros((b, full_depth, c_out * oh * ow), x.dtype(), x.device())?,
            };
            full = Some(acc.index_add(&depth_index(depth, stride, tap, x)?, &y, 1)?);
        }
        let (oh, ow) = plane_sides;
        let out_depth = full_depth - 2 * padding;
        full.expect("a kernel has at least one tap")
            .narrow(1, padding, out_depth)?
            .reshape((b, out_depth, c_out, oh, ow))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::check_blocks_round_as_one_sample;
    use candle_core::{DType, Device, Var};
    use rand::{Rng, SeedableRng};

    type TestRng = rand_chacha::ChaCha8Rng;

    /// The shapes of one convolution: its image (the larger side) and grid, per
    /// sample, and whether image positions wrap around (a periodic volume) instead
    /// of reading zeros outside.
    #[derive(Clone, Copy, Debug)]
    struct Case {
        batch: usize,
        image_c: usize,
        image: [usize; 3],
        grid_c: usize,
        grid: [usize; 3],
        g: Geometry,
        periodic: bool,
    }

    impl Case {
        fn image_shape(&self) -> Vec<usize> {
            [vec![self.batch, self.image_c], self.image.to_vec()].concat()
        }
        fn grid_shape(&self) -> Vec<usize> {
            [vec![self.batch, self.grid_c], self.grid.to_vec()].concat()
        }
        fn weight_shape(&self) -> Vec<usize> {
            let k = self.g.kernel;
            vec![self.grid_c, self.image_c, k, k, k]
        }

        /// Calls `term(grid index, image index, weight index)` for every product
        /// of the convolution: each sample, grid channel and position, image
        /// channel and tap whose image position lies inside the image (or wraps).
        fn for_each_term(&self, mut term: impl FnMut(usize, usize, usize)) {
            let Geometry {
                kernel: k,
                stride: s,
                padding: p,
            } = self.g;
            let [gd, gh, gw] = self.grid;
            let [id, ih, iw] = self.image;
            let at = |grid: usize, tap: usize, side: usize| {
                let i = (grid * s + tap) as isize - p as isize;
                if self.periodic {
                    Some(i.rem_euclid(side as isize) as usize)
                } else {
                    (0..side as isize).contains(&i).then_some(i as usize)
                }
            };
            for b in 0..self.batch {
                for gc in 0..self.grid_c {
                    for (gz, gy, gx) in cube(gd, gh, gw) {
                        let grid = (((b * self.grid_c + gc) * gd + gz) * gh + gy) * gw + gx;
                        for ic in 0..self.image_c {
                            for (tz, ty, tx) in cube(k, k, k) {
                                let (Some(iz), Some(iy), Some(ix)) =
                                    (at(gz, tz, id), at(gy, ty, ih), at(gx, tx, iw))
                                else {
                                    continue;
                                };
                                let image =
                                    (((b * self.image_c + ic) * id + iz) * ih + iy) * iw + ix;
                                let weight =
                                    (((gc * self.image_c + ic) * k + tz) * k + ty) * k + tx;
                                term(grid, image, weight);
                            }
                        }
                    }
                }
            }
        }
    }

    fn cube(a: usize, b: usize, c: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        (0..a).flat_map(move |i| (0..b).flat_map(move |j| (0..c).map(move |l| (i, j, l))))
    }

    /// Exact (f64) sums of products, with the magnitude Σ|a·b| and number of terms
    /// of each: the f32 result of any summation order lies within (n + 2)·2⁻²⁴·Σ|a·b|
    /// of the exact sum of n products of f32 values (the standard bound γₙ for a
    /// dot product, plus the final rounding).
    struct Sums {
        value: Vec<f64>,
        magnitude: Vec<f64>,
        terms: Vec<usize>,
    }

    impl Sums {
        fn new(len: usize) -> Self {
            Sums {
                value: vec![0.0; len],
                magnitude: vec![0.0; len],
                terms: vec![0; len],
            }
        }
        fn add(&mut self, i: usize, a: f32, b: f32) {
            let product = a as f64 * b as f64;
            self.value[i] += product;
            self.magnitude[i] += product.abs();
            self.terms[i] += 1;
        }
        /// Asserts that `t` holds these sums to f32 rounding (`slack` times the bound).
        fn assert_close(&self, t: &Tensor, slack: f64, what: &str) {
            self.assert_near(&as_f64(t), &self.value, slack, what);
        }
        /// Asserts that `got` and `expected` differ by at most `slack` times the
        /// rounding bound of these sums.
        fn assert_near(&self, got: &[f64], expected: &[f64], slack: f64, what: &str) {
            assert_eq!(got.len(), self.value.len(), "{what}: size");
            assert_eq!(expected.len(), self.value.len(), "{what}: size");
            for (i, (&v, &e)) in got.iter().zip(expected).enumerate() {
                let bound = slack * (self.terms[i] + 2) as f64 * f32::EPSILON as f64 / 2.0
                    * self.magnitude[i];
                assert!(
                    (v - e).abs() <= bound,
                    "{what}: value {i} is {v}, expected {e} (bound {bound})"
                );
            }
        }
    }

    fn as_f64(t: &Tensor) -> Vec<f64> {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn random(shape: &[usize], rng: &mut TestRng) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// What a convolution computes from its input and weight: the image from the
    /// grid (transposed) or the grid from the image.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Direction {
        Forward,
        Transposed,
    }

    /// The values of `op(x, w)` and the gradients of L = Σ op(x, w)·r (r random)
    /// with respect to x and w, against the exact sums of `case`.
    fn check(
        case: &Case,
        direction: Direction,
        op: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        rng: &mut TestRng,
        what: &str,
    ) {
        let (input_shape, output_shape) = match direction {
            Direction::Forward => (case.image_shape(), case.grid_shape()),
            Direction::Transposed => (case.grid_shape(), case.image_shape()),
        };
        let x = Var::from_tensor(&random(&input_shape, rng)).unwrap();
        let w = Var::from_tensor(&random(&case.weight_shape(), rng)).unwrap();
        let y = op(x.as_tensor(), w.as_tensor()).unwrap();
        assert_eq!(y.dims(), output_shape.as_slice(), "{what}: output shape");
        let r = random(&output_shape, rng);
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let [out, dx, dw] = exact_sums(case, direction, x.as_tensor(), w.as_tensor(), &r);
        out.assert_close(&y, 1.0, &format!("{what}: values"));
        dx.assert_close(
            grads.get(&x).unwrap(),
            1.0,
            &format!("{what}: input gradient"),
        );
        dw.assert_close(
            grads.get(&w).unwrap(),
            1.0,
            &format!("{what}: weight gradient"),
        );
    }

    /// The exact output of `case` for input `x` and weight `w`, and the gradients of
    /// L = Σ output·r with respect to x and w.
    fn exact_sums(
        case: &Case,
        direction: Direction,
        x: &Tensor,
        w: &Tensor,
        r: &Tensor,
    ) -> [Sums; 3] {
        let (xv, wv, rv) = (values(x), values(w), values(r));
        let (mut out, mut dx, mut dw) = (
            Sums::new(r.elem_count()),
            Sums::new(x.elem_count()),
            Sums::new(w.elem_count()),
        );
        case.for_each_term(|grid, image, weight| {
            let (input, output) = match direction {
                Direction::Forward => (image, grid),
                Direction::Transposed => (grid, image),
            };
            out.add(output, xv[input], wv[weight]);
            dx.add(input, rv[output], wv[weight]);
            dw.add(weight, rv[output], xv[input]);
        });
        [out, dx, dw]
    }

    fn random_geometry(rng: &mut TestRng) -> Geometry {
        let kernel = rng.random_range(1..=5);
        Geometry {
            kernel,
            stride: rng.random_range(1..=3),
            padding: rng.random_range(0..kernel),
        }
    }

    /// A zero-padded conv3d of random shape (odd sides, sides below the kernel
    /// with padding, one side of 1 included).
    fn forward_case(rng: &mut TestRng, batch: usize) -> Case {
        loop {
            let g = random_geometry(rng);
            let image = [0; 3].map(|_| rng.random_range(1..=11));
            if let [Some(gd), Some(gh), Some(gw)] = image.map(|n| g.grid_side(n)) {
                return Case {
                    batch,
                    image_c: rng.random_range(1..=4),
                    image,
                    grid_c: rng.random_range(1..=4),
                    grid: [gd, gh, gw],
                    g,
                    periodic: false,
                };
            }
        }
    }

    /// A zero-padded conv_transpose3d of random shape and its output padding.
    fn transposed_case(rng: &mut TestRng, batch: usize) -> (Case, usize) {
        loop {
            let g = random_geometry(rng);
            let output_padding = rng.random_range(0..g.stride);
            let grid = [0; 3].map(|_| rng.random_range(1..=6));
            let image = grid.map(|n| {
                ((n - 1) * g.stride + g.kernel + output_padding) as isize - 2 * g.padding as isize
            });
            if image.iter().all(|&n| n > 0) {
                let case = Case {
                    batch,
                    image_c: rng.random_range(1..=4),
                    image: image.map(|n| n as usize),
                    grid_c: rng.random_range(1..=4),
                    grid,
                    g,
                    periodic: false,
                };
                return (case, output_padding);
            }
        }
    }

    /// Grids laid side by side in one product round every value as one sample
    /// alone does: the bytes of the unblocked kernels, on the 4³/2/1 layers of a
    /// width-16 and a width-4 network and on odd shapes.
    #[test]
    fn blocks_of_samples_round_as_one_sample() {
        let mut rng = TestRng::seed_from_u64(13);
        let g = Geometry {
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let mut blocked = 0;
        // (image channels, image side, grid channels)
        for (image_c, side, grid_c) in [
            (64, 4, 128),
            (32, 8, 64),
            (16, 4, 32),
            (8, 4, 16),
            (4, 8, 8),
            (3, 6, 5),
            (1, 4, 3),
            (5, 2, 7),
        ] {
            let d = Dims {
                batch: 13,
                image_c,
                image: [side; 3],
                grid_c,
                grid: [side / 2; 3],
            };
            blocked += check_blocks_round_as_one_sample(&d, g, &mut rng);
        }
        assert!(blocked >= 6, "only {blocked} products were blocked");
    }

    #[test]
    fn conv3d_equals_the_exact_sums_to_f32_rounding() {
        let mut rng = TestRng::seed_from_u64(3);
        // 24 shapes; batches of 9 and 17 split the weight gradient into chunks.
        for i in 0..24 {
            let batch = [1, 2, 3, 9, 17][i % 5];
            let case = forward_case(&mut rng, batch);
            let Geometry {
                stride, padding, ..
            } = case.g;
            check(
                &case,
                Direction::Forward,
                |x, w| conv3d(x, w, stride, padding),
                &mut rng,
                &format!("conv3d {case:?}"),
            );
        }
    }

    #[test]
    fn conv_transpose3d_equals_the_exact_sums_to_f32_rounding() {
        let mut rng = TestRng::seed_from_u64(4);
        for i in 0..24 {
            let batch = [1, 2, 3, 9, 17][i % 5];
            let (case, output_padding) = transposed_case(&mut rng, batch);
            let Geometry {
                stride, padding, ..
            } = case.g;
            check(
                &case,
                Direction::Transposed,
                |x, w| conv_transpose3d(x, w, stride, padding, output_padding),
                &mut rng,
                &format!("conv_transpose3d {case:?}, output padding {output_padding}"),
            );
        }
    }

    #[test]
    fn circular_convolutions_equal_the_periodic_sums() {
        let mut rng = TestRng::seed_from_u64(5);
        // (kernel, stride, padding): the generator's and discriminator's layers, odd
        // kernels, and kernels narrower than the stride.
        let geometries = [
            (4, 2, 1),
            (3, 1, 1),
            (5, 2, 2),
            (3, 2, 1),
            (4, 2, 0),
            (1, 2, 0),
            (5, 1, 2),
            (2, 3, 1),
        ];
        for (i, &(kernel, stride, padding)) in geometries.iter().enumerate() {
            let g = Geometry {
                kernel,
                stride,
                padding,
            };
            let batch = [1, 2, 9][i % 3];
            let (image_c, grid_c) = (rng.random_range(1..=3), rng.random_range(1..=3));
            // conv3d of a periodic image, sides from the kernel up.
            let image = [0; 3].map(|_| rng.random_range(kernel.max(padding).max(2)..=9));
            let grid = image.map(|n| g.grid_side(n).unwrap());
            let case = Case {
                batch,
                image_c,
                image,
                grid_c,
                grid,
                g,
                periodic: true,
            };
            check(
                &case,
                Direction::Forward,
                |x, w| circular_conv3d(x, w, stride, padding),
                &mut rng,
                &format!("circular_conv3d {case:?}"),
            );
            // Its transpose onto a volume `stride`× larger.
            let grid = [0; 3].map(|_| rng.random_range(2..=5));
            let case = Case {
                batch,
                image_c,
                image: grid.map(|n| n * stride),
                grid_c,
                grid,
                g,
                periodic: true,
            };
            check(
                &case,
                Direction::Transposed,
                |x, w| circular_conv_transpose3d(x, w, stride, padding),
                &mut rng,
                &format!("circular_conv_transpose3d {case:?}"),
            );
        }
    }

    #[test]
    fn the_tensor_op_path_equals_the_exact_sums() {
        // The path other devices take, run on the CPU: through the fast 2-D kernels
        // in f32, through candle's own in f64.
        let mut rng = TestRng::seed_from_u64(6);
        for i in 0..8 {
            let case = forward_case(&mut rng, 1 + i % 3);
            let Geometry {
                stride, padding, ..
            } = case.g;
            check(
                &case,
                Direction::Forward,
                |x, w| tensor_ops::conv3d(x, w, stride, padding),
                &mut rng,
                &format!("tensor ops conv3d {case:?}"),
            );
            let (case, output_padding) = transposed_case(&mut rng, 1 + i % 3);
            let Geometry {
                stride, padding, ..
            } = case.g;
            check(
                &case,
                Direction::Transposed,
                |x, w| tensor_ops::conv_transpose3d(x, w, stride, padding, output_padding),
                &mut rng,
                &format!("tensor ops conv_transpose3d {case:?}"),
            );
        }
        let case = forward_case(&mut rng, 2);
        let Geometry {
            stride, padding, ..
        } = case.g;
        let f64_path = |x: &Tensor, w: &Tensor| {
            let f = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            conv3d(&f(x), &f(w), stride, padding)?.to_dtype(DType::F32)
        };
        check(
            &case,
            Direction::Forward,
            f64_path,
            &mut rng,
            &format!("f64 conv3d {case:?}"),
        );
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_thread_count() {
        let mut rng = TestRng::seed_from_u64(7);
        let x = Var::from_tensor(&random(&[19, 3, 8, 9, 7], &mut rng)).unwrap();
        let w = Var::from_tensor(&random(&[5, 3, 4, 4, 4], &mut rng)).unwrap();
        let wt = Var::from_tensor(&random(&[3, 2, 4, 4, 4], &mut rng)).unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let y = conv3d(x.as_tensor(), w.as_tensor(), 2, 1).unwrap();
                let z =
                    conv_transpose3d(&y.narrow(1, 0, 3).unwrap(), wt.as_tensor(), 2, 1, 1).unwrap();
                let grads = z.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                [
                    values(&z),
                    values(grads.get(&x).unwrap()),
                    values(grads.get(&w).unwrap()),
                    values(grads.get(&wt).unwrap()),
                ]
            })
        };
        let one = run(1);
        for threads in [2, 3, 5] {
            assert!(one == run(threads), "{threads} threads");
        }
    }

    #[test]
    fn bad_shapes_are_refused_with_the_problem_named() {
        let t = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
        let err = |r: candle_core::Result<Tensor>| r.unwrap_err().to_string();
        assert!(
            err(conv3d(&t(&[1, 2, 8, 8, 8]), &t(&[3, 2, 4, 4, 3]), 2, 1))
                .contains("(C, C, k, k, k)")
        );
        assert!(
            err(conv3d(&t(&[1, 2, 8, 8, 8]), &t(&[3, 1, 4, 4, 4]), 2, 1))
                .contains("does not match")
        );
        assert!(
            err(conv3d(&t(&[1, 2, 2, 8, 8]), &t(&[3, 2, 5, 5, 5]), 1, 0))
                .contains("smaller than kernel 5")
        );
        assert!(err(conv3d(&t(&[1, 2, 8, 8, 8]), &t(&[3, 2, 3, 3, 3]), 0, 1)).contains("stride"));
        assert!(err(conv3d(&t(&[2, 8, 8, 8]), &t(&[3, 2, 3, 3, 3]), 1, 1)).contains("5"));
        assert!(err(conv_transpose3d(
            &t(&[1, 2, 4, 4, 4]),
            &t(&[2, 3, 4, 4, 4]),
            2,
            1,
            2
        ))
        .contains("output_padding 2"));
        assert!(err(conv_transpose3d(
            &t(&[1, 2, 1, 4, 4]),
            &t(&[2, 3, 1, 1, 1]),
            1,
            1,
            0
        ))
        .contains("leaves no output"));
        assert!(err(circular_conv3d(
            &t(&[1, 2, 2, 8, 8]),
            &t(&[3, 2, 7, 7, 7]),
            1,
            3
        ))
        .contains("exceeds the side 2"));
        assert!(err(circular_conv_transpose3d(
            &t(&[1, 2, 4, 4, 4]),
            &t(&[2, 3, 3, 3, 3]),
            2,
            3
        ))
        .contains("padding < k"));
    }

    #[test]
    fn the_convolutions_equal_pytorchs() {
        // tests/fixtures/make_conv3d_torch.py: PyTorch's values and gradients. Both
        // sides lie within the rounding bound of the exact sums, so within twice it
        // of each other.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/conv3d_torch.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 9);
        for case in cases {
            let tensor = |key: &str| {
                let shape: Vec<usize> = serde_json::from_value(case[key]["shape"].clone()).unwrap();
                let data: Vec<f32> = serde_json::from_value(case[key]["data"].clone()).unwrap();
                Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
            };
            let op = case["op"].as_str().unwrap();
            let number = |key: &str| case[key].as_u64().unwrap() as usize;
            let (stride, padding, output_padding) = (
                number("stride"),
                number("padding"),
                number("output_padding"),
            );
            let (x, w, r) = (
                Var::from_tensor(&tensor("x")).unwrap(),
                Var::from_tensor(&tensor("w")).unwrap(),
                tensor("r"),
            );
            let y = match op {
                "conv3d" => conv3d(&x, &w, stride, padding),
                "conv_transpose3d" => conv_transpose3d(&x, &w, stride, padding, output_padding),
                "circular_conv3d" => circular_conv3d(&x, &w, stride, padding),
                "circular_conv_transpose3d" => circular_conv_transpose3d(&x, &w, stride, padding),
                other => panic!("unknown op {other}"),
            }
            .unwrap();
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let direction = if op.contains("transpose") {
                Direction::Transposed
            } else {
                Direction::Forward
            };
            let (image, grid) = match direction {
                Direction::Forward => (x.dims(), y.dims()),
                Direction::Transposed => (y.dims(), x.dims()),
            };
            let k = w.dim(2).unwrap();
            let sides = |d: &[usize]| [d[2], d[3], d[4]];
            let geometry = Case {
                batch: image[0],
                image_c: image[1],
                image: sides(image),
                grid_c: grid[1],
                grid: sides(grid),
                g: Geometry {
                    kernel: k,
                    stride,
                    padding,
                },
                periodic: op.starts_with("circular"),
            };
            let sums = exact_sums(&geometry, direction, &x, &w, &r);
            for ((sums, ours), key) in sums
                .iter()
                .zip([&y, grads.get(&x).unwrap(), grads.get(&w).unwrap()])
                .zip(["y", "grad_x", "grad_w"])
            {
                let theirs = as_f64(&tensor(key));
                let what = format!("{op} {:?}: {key}", x.dims());
                sums.assert_near(
                    &theirs,
                    &sums.value,
                    1.0,
                    &format!("{what} (PyTorch against the exact sums)"),
                );
                sums.assert_near(&as_f64(ours), &theirs, 2.0, &what);
            }
        }
    }
}
