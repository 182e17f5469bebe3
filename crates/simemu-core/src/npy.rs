//! The NumPy `.npy` format (versions 1.0–3.0): what numpy writes, read back exactly.
//!
//! Supported element types: little- and big-endian `f4`, `f8`, `u8`/`i8` (8-byte
//! integers, for seed arrays). Fortran-ordered arrays are refused with a clear error.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::{Error, Result};

/// The first bytes of every `.npy` file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Element type found in an `.npy` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyDType {
    F32,
    F64,
    U64,
    I64,
}

impl NpyDType {
    pub fn size(self) -> usize {
        match self {
            NpyDType::F32 => 4,
            _ => 8,
        }
    }
    fn descr(self) -> &'static str {
        match self {
            NpyDType::F32 => "<f4",
            NpyDType::F64 => "<f8",
            NpyDType::U64 => "<u8",
            NpyDType::I64 => "<i8",
        }
    }
}

/// Parsed header of an `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub dtype: NpyDType,
    pub big_endian: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the first element.
    pub data_offset: u64,
}

impl NpyHeader {
    pub fn count(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Reads and validates the header; checks that the file holds all the data it declares.
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let header = read_header_from(&mut f, path)?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let need = header.data_offset + (header.count() * header.dtype.size()) as u64;
    if len < need {
        return Err(Error::bad_file(
            path,
            format!(
                "truncated .npy: shape {:?} needs {need} bytes, file has {len}",
                header.shape
            ),
        ));
    }
    Ok(header)
}

/// An `.npy` header as written, before its element type is interpreted: for arrays
/// of types simemu does not store (strings, say) that a format plugin reads itself.
#[derive(Clone, Debug, PartialEq)]
pub struct RawHeader {
    /// numpy's type string, e.g. `<f4` or `<U7`.
    pub descr: String,
    pub shape: Vec<usize>,
    /// Byte offset of the first element.
    pub data_offset: u64,
}

/// Reads a header from a stream positioned at the start of an `.npy` file (an `.npz`
/// member, say); `path` names the source in errors. Fortran order is refused.
pub fn read_raw_header_from(r: &mut impl Read, path: &Path) -> Result<RawHeader> {
    let bad = |m: String| Error::bad_file(path, m);
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| bad("not a .npy file (too short)".into()))?;
    if &pre[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let (hlen, prefix) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| bad("truncated .npy header".into()))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| bad("truncated .npy header".into()))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let mut h = vec![0u8; hlen];
    r.read_exact(&mut h)
        .map_err(|_| bad("truncated .npy header".into()))?;
    let text = String::from_utf8_lossy(&h);
    let descr = dict_value(&text, "descr").ok_or_else(|| bad("header has no 'descr'".into()))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(&text, "fortran_order")
        .ok_or_else(|| bad("header has no 'fortran_order'".into()))?;
    if fortran.trim() != "False" {
        return Err(bad(
            "Fortran-ordered array; save it with np.ascontiguousarray first".into(),
        ));
    }
    let shape_text =
        dict_value(&text, "shape").ok_or_else(|| bad("header has no 'shape'".into()))?;
    let inner = shape_text
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(format!("malformed shape '{shape_text}'")))?;
    let mut shape = Vec::new();
    for part in inner.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        shape.push(
            part.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad(format!("malformed shape '{shape_text}'")))?,
        );
    }
    // Element counts and byte sizes computed from the shape must not overflow,
    // whatever a hostile header declares: at most 2^56 elements (of up to 256
    // bytes each), far beyond any file that exists.
    let representable = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .and_then(|n| n.checked_mul(256))
        .is_some_and(|bytes| usize::try_from(bytes).is_ok());
    if !representable {
        return Err(bad(format!("shape {shape:?} is too large for any file")));
    }
    Ok(RawHeader {
        descr: descr.to_string(),
        shape,
        data_offset: (prefix + hlen) as u64,
    })
}

/// Reads and interprets a header from a stream (see [`read_raw_header_from`]); the
/// element type must be one simemu stores.
pub fn read_header_from(r: &mut impl Read, path: &Path) -> Result<NpyHeader> {
    let raw = read_raw_header_from(r, path)?;
    let (big_endian, dtype) = match raw.descr.as_str() {
        "<f4" | "=f4" => (false, NpyDType::F32),
        "<f8" | "=f8" => (false, NpyDType::F64),
        ">f4" => (true, NpyDType::F32),
        ">f8" => (true, NpyDType::F64),
        "<u8" | "=u8" => (false, NpyDType::U64),
        "<i8" | "=i8" => (false, NpyDType::I64),
        ">u8" => (true, NpyDType::U64),
        ">i8" => (true, NpyDType::I64),
        other => {
            return Err(Error::bad_file(
                path,
                format!("unsupported element type '{other}' (expected float32 or float64)"),
            ))
        }
    };
    Ok(NpyHeader {
        dtype,
        big_endian,
        shape: raw.shape,
        data_offset: raw.data_offset,
    })
}

/// How a float array's shape reads as samples: a 2D array is one sample (a map), a
/// higher-dimensional one a stack `(N, ...)` of N samples.
pub fn stack_layout(shape: &[usize]) -> std::result::Result<(usize, Vec<usize>), String> {
    match shape.len() {
        0 | 1 => Err(format!(
            "a sample stack must be at least 2D, got shape {shape:?}"
        )),
        2 => Ok((1, shape.to_vec())),
        _ => Ok((shape[0], shape[1..].to_vec())),
    }
}

/// The text of one value in numpy's header dict literal (values are simple:
/// a quoted string, True/False, or a tuple).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text
        .find(&format!("'{key}'"))
        .or_else(|| text.find(&format!("\"{key}\"")))?;
    let rest = &text[start + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(&rest[..end])
}

/// The header numpy writes for `dtype` and `shape` (version 1.0, data aligned to 64
/// bytes), for writers that stream the data after it.
pub fn header_bytes(dtype: NpyDType, shape: &[usize]) -> Vec<u8> {
    header_bytes_for(dtype.descr(), shape)
}

/// The header for any numpy type string (`<U7` for strings of up to 7 characters).
pub fn header_bytes_for(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        descr, shape_txt
    );
    // numpy pads the header with spaces so that data start on a 64-byte boundary.
    let total = 10 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    dict.extend(std::iter::repeat_n(' ', pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Element types that can be written to and read from `.npy`.
pub trait NpyElement: Copy + Send + Sync + 'static {
    const DTYPE: NpyDType;
    fn write_le(values: &[Self], out: &mut Vec<u8>);
    fn read(bytes: &[u8], big_endian: bool) -> Self;
}

macro_rules! npy_element {
    ($t:ty, $d:expr, $n:expr) => {
        impl NpyElement for $t {
            const DTYPE: NpyDType = $d;
            fn write_le(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * $n);
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            fn read(bytes: &[u8], big_endian: bool) -> Self {
                let b: [u8; $n] = bytes.try_into().expect("element size");
                if big_endian {
                    <$t>::from_be_bytes(b)
                } else {
                    <$t>::from_le_bytes(b)
                }
            }
        }
    };
}
npy_element!(f32, NpyDType::F32, 4);
npy_element!(f64, NpyDType::F64, 8);
npy_element!(u64, NpyDType::U64, 8);
npy_element!(i64, NpyDType::I64, 8);

/// Writes `values` with `shape` to `path` atomically (temporary file, then rename).
pub fn write<T: NpyElement>(path: &Path, shape: &[usize], values: &[T]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != values.len() {
        return Err(Error::Data(format!(
            "{}: shape {shape:?} needs {n} values, got {}",
            path.display(),
            values.len()
        )));
    }
    let mut bytes = header_bytes(T::DTYPE, shape);
    T::write_le(values, &mut bytes);
    crate::fsutil::write_atomic(path, &bytes)
}

/// Reads a whole `.npy` array, converting to `T` (f32 files may be read as f64 and
/// vice versa; integer files only as their own type).
pub fn read<T: NpyElement + FromNpy>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    let header = read_header(path)?;
    let values = read_range(path, &header, 0, header.count())?;
    Ok((header.shape, values))
}

/// Reads elements `[start, start+count)` (in flat C order) of an `.npy` file.
pub fn read_range<T: NpyElement + FromNpy>(
    path: &Path,
    header: &NpyHeader,
    start: usize,
    count: usize,
) -> Result<Vec<T>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::new(f);
    let es = header.dtype.size();
    r.seek(SeekFrom::Start(header.data_offset + (start * es) as u64))
        .map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; count * es];
    r.read_exact(&mut buf).map_err(|_| {
        Error::bad_file(
            path,
            format!(
                "truncated .npy: cannot read elements {start}..{}",
                start + count
            ),
        )
    })?;
    T::convert(&buf, header.dtype, header.big_endian).ok_or_else(|| {
        Error::bad_file(
            path,
            format!("cannot read {:?} data as the requested type", header.dtype),
        )
    })
}

/// Conversion from the raw bytes of any supported element type.
pub trait FromNpy: Sized {
    fn convert(bytes: &[u8], dtype: NpyDType, big_endian: bool) -> Option<Vec<Self>>;
}

fn decode<S: NpyElement>(bytes: &[u8], be: bool) -> impl Iterator<Item = S> + '_ {
    bytes
        .chunks_exact(std::mem::size_of::<S>())
        .map(move |c| S::read(c, be))
}

impl FromNpy for f32 {
    fn convert(bytes: &[u8], dtype: NpyDType, be: bool) -> Option<Vec<Self>> {
        match dtype {
            NpyDType::F32 => Some(decode::<f32>(bytes, be).collect()),
            NpyDType::F64 => Some(decode::<f64>(bytes, be).map(|x| x as f32).collect()),
            _ => None,
        }
    }
}

impl FromNpy for f64 {
    fn convert(bytes: &[u8], dtype: NpyDType, be: bool) -> Option<Vec<Self>> {
        match dtype {
            NpyDType::F32 => Some(decode::<f32>(bytes, be).map(|x| x as f64).collect()),
            NpyDType::F64 => Some(decode::<f64>(bytes, be).collect()),
            _ => None,
        }
    }
}

impl FromNpy for u64 {
    fn convert(bytes: &[u8], dtype: NpyDType, be: bool) -> Option<Vec<Self>> {
        match dtype {
            NpyDType::U64 => Some(decode::<u64>(bytes, be).collect()),
            NpyDType::I64 => decode::<i64>(bytes, be)
                .map(|x| u64::try_from(x).ok())
                .collect(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let v: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        write(&p, &[3, 4], &v).unwrap();
        let h = read_header(&p).unwrap();
        assert_eq!(h.data_offset % 64, 0);
        assert_eq!(h.shape, vec![3, 4]);
        let (shape, back) = read::<f32>(&p).unwrap();
        assert_eq!(shape, vec![3, 4]);
        assert_eq!(back, v);
        let (_, wide) = read::<f64>(&p).unwrap();
        assert_eq!(wide[3], 1.5);
    }

    #[test]
    fn big_endian_and_fortran() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("be.npy");
        let dict = "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&1.25f64.to_be_bytes());
        bytes.extend_from_slice(&(-3.0f64).to_be_bytes());
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read::<f64>(&p).unwrap().1, vec![1.25, -3.0]);

        let f = dir.path().join("f.npy");
        let mut fb = bytes.clone();
        let at = fb.windows(5).position(|w| w == b"False").unwrap();
        fb[at..at + 5].copy_from_slice(b"True ");
        std::fs::write(&f, &fb).unwrap();
        let e = read::<f64>(&f).unwrap_err().to_string();
        assert!(e.contains("Fortran"), "{e}");
    }

    #[test]
    fn truncated_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        write(&p, &[10], &[1.0f64; 10]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = read::<f64>(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    /// A shape whose element count overflows (found by the `npy` fuzz target,
    /// which panicked in `count`) is refused by the header parser.
    #[test]
    fn shapes_too_large_for_any_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.npy");
        for shape in [
            vec![5, 7_039_476_560_217_360_155],
            vec![1 << 40, 1 << 40],
            vec![1 << 60],
        ] {
            std::fs::write(&p, header_bytes(NpyDType::F64, &shape)).unwrap();
            let e = read_header(&p).unwrap_err().to_string();
            assert!(e.contains("too large for any file"), "{shape:?}: {e}");
        }
    }
}
