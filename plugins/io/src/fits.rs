//! FITS images (FITS Standard 4.0, the image subset): read a 2-D image from the
//! primary HDU or an IMAGE extension of any BITPIX, with BSCALE/BZERO scaling and
//! BLANK; write one 2-D float image per file in the primary HDU.
//!
//! Why by hand: the pure-Rust reader (fitsrs) neither writes nor applies BSCALE/BZERO,
//! and cfitsio is a C dependency; the image subset is small and fully specified.
//!
//! Conventions shared with lenstools' `ConvergenceMap.load/save`: the map is the
//! primary HDU's data, `ANGLE` is the side angle in degrees. Axis order: FITS NAXIS1
//! is the fastest-varying axis, so an image of NAXIS1 = columns and NAXIS2 = rows is
//! the C-ordered array `[rows, columns]` that astropy returns as `hdu.data`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use simemu_core::formats::{ExportSummary, Format, ImportSink};
use simemu_core::fsutil::TempDir;
use simemu_core::{Array, DType, Dataset, Error, Result};

use crate::{ExportOptions, ImportOptions, ANGLE_ATTR, BLOCK_SAMPLES};

const BLOCK: usize = 2880;
const CARD: usize = 80;
/// A header longer than this is not a header (or a corrupt one): stop reading.
const MAX_HEADER_BLOCKS: usize = 10_000;

/// A header keyword's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Logical(bool),
    Int(i64),
    Real(f64),
    Text(String),
    /// Empty, or a form simemu does not interpret (complex numbers).
    Other(String),
}

impl Value {
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Real(x) => Some(*x),
            _ => None,
        }
    }
}

/// The keywords of one header, in order (COMMENT, HISTORY and blank cards dropped).
#[derive(Clone, Debug, Default, PartialEq)]
struct Header {
    cards: Vec<(String, Value)>,
}

impl Header {
    fn get(&self, key: &str) -> Option<&Value> {
        self.cards.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn int(&self, key: &str, origin: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(v) => Err(Error::Data(format!(
                "{origin}: keyword {key} should be an integer, found {v:?}"
            ))),
        }
    }

    fn real(&self, key: &str, origin: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                Error::Data(format!(
                    "{origin}: keyword {key} should be a number, found {v:?}"
                ))
            }),
        }
    }
}

fn parse_value(text: &str) -> Value {
    let t = text.trim_start();
    if let Some(rest) = t.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        return Value::Text(out.trim_end().to_string());
    }
    let t = t.split('/').next().unwrap_or("").trim();
    match t {
        "T" => Value::Logical(true),
        "F" => Value::Logical(false),
        _ => {
            if let Ok(i) = t.parse::<i64>() {
                Value::Int(i)
            } else if let Ok(x) = t.replace(['D', 'd'], "E").parse::<f64>() {
                Value::Real(x)
            } else {
                Value::Other(t.to_string())
            }
        }
    }
}

/// Reads one header starting at the reader's position. `Ok(None)` at a clean end of
/// file (no further HDU).
fn read_header(r: &mut impl Read, path: &Path, hdu: usize) -> Result<Option<Header>> {
    let mut header = Header::default();
    let mut block = vec![0u8; BLOCK];
    for n in 0..MAX_HEADER_BLOCKS {
        let got = read_full(r, &mut block).map_err(|e| Error::io(path, e))?;
        if got == 0 && n == 0 && hdu > 0 {
            return Ok(None);
        }
        if got < BLOCK {
            return Err(Error::bad_file(
                path,
                if hdu == 0 && n == 0 {
                    "not a FITS file (shorter than one 2880-byte block)".to_string()
                } else {
                    format!("truncated: the header of HDU {hdu} ends mid-block")
                },
            ));
        }
        for (i, card) in block.chunks_exact(CARD).enumerate() {
            if !card.iter().all(|b| (0x20..=0x7e).contains(b)) {
                return Err(Error::bad_file(
                    path,
                    if hdu == 0 && n == 0 && i == 0 {
                        "not a FITS file".to_string()
                    } else {
                        format!("corrupt header in HDU {hdu}: a card holds non-ASCII bytes")
                    },
                ));
            }
            let card = std::str::from_utf8(card).expect("checked ASCII");
            let key = card[..8].trim_end();
            if n == 0 && i == 0 {
                let want = if hdu == 0 { "SIMPLE" } else { "XTENSION" };
                if key != want {
                    return Err(Error::bad_file(
                        path,
                        if hdu == 0 {
                            "not a FITS file (it does not start with SIMPLE)".to_string()
                        } else {
                            format!("corrupt: HDU {hdu} does not start with XTENSION")
                        },
                    ));
                }
            }
            if key == "END" {
                return Ok(Some(header));
            }
            if &card[8..10] == "= " && !key.is_empty() {
                header
                    .cards
                    .push((key.to_string(), parse_value(&card[10..])));
            }
        }
    }
    Err(Error::bad_file(
        path,
        format!("corrupt header in HDU {hdu}: no END card"),
    ))
}

/// Reads until `buf` is full or the end of the input; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Where an image lives in a file and how to decode it.
#[derive(Clone, Debug, PartialEq)]
struct ImageHdu {
    path: PathBuf,
    hdu: usize,
    data_start: u64,
    bitpix: i64,
    /// C order: `[NAXISn, …, NAXIS1]` with degenerate axes beyond the second dropped.
    shape: Vec<usize>,
    bscale: f64,
    bzero: f64,
    blank: Option<i64>,
    angle: Option<f64>,
    params: Vec<(String, f64)>,
}

impl ImageHdu {
    fn dtype(&self) -> DType {
        match self.bitpix {
            8 | 16 | -32 => DType::F32,
            _ => DType::F64,
        }
    }
}

/// Finds the image to read: HDU `wanted`, or the first HDU holding an image.
fn locate_image(path: &Path, wanted: Option<usize>) -> Result<ImageHdu> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = BufReader::new(file);
    let mut compressed_seen = false;
    // An extension inherits the primary header's keywords it lacks (FITS INHERIT
    // convention), which is where tools put ANGLE when the map is an extension.
    let mut primary = Header::default();
    for hdu in 0.. {
        let Some(header) = read_header(&mut r, path, hdu)? else {
            break;
        };
        let origin = format!("{} (HDU {hdu})", path.display());
        let pos = r.stream_position().map_err(|e| Error::io(path, e))?;
        let bitpix = header
            .int("BITPIX", &origin)?
            .ok_or_else(|| Error::bad_file(path, format!("HDU {hdu} has no BITPIX")))?;
        if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
            return Err(Error::bad_file(
                path,
                format!("HDU {hdu}: invalid BITPIX {bitpix}"),
            ));
        }
        let naxis = header
            .int("NAXIS", &origin)?
            .ok_or_else(|| Error::bad_file(path, format!("HDU {hdu} has no NAXIS")))?;
        if !(0..=999).contains(&naxis) {
            return Err(Error::bad_file(
                path,
                format!("HDU {hdu}: invalid NAXIS {naxis}"),
            ));
        }
        let mut axes = Vec::new();
        for k in 1..=naxis {
            let n = header
                .int(&format!("NAXIS{k}"), &origin)?
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    Error::bad_file(path, format!("HDU {hdu}: NAXIS{k} missing or negative"))
                })?;
            axes.push(n as u64);
        }
        let groups = header.get("GROUPS") == Some(&Value::Logical(true));
        let pcount = header.int("PCOUNT", &origin)?.unwrap_or(0).max(0) as u64;
        let gcount = header.int("GCOUNT", &origin)?.unwrap_or(1).max(0) as u64;
        // Checked: a corrupt header must not overflow into a small, plausible size.
        let counted = if groups && !axes.is_empty() {
            &axes[1..]
        } else {
            &axes[..]
        };
        let data_len = if axes.is_empty() {
            Some(0)
        } else {
            counted
                .iter()
                .try_fold(1u64, |acc, &n| acc.checked_mul(n))
                .and_then(|elements| elements.checked_add(pcount))
                .and_then(|v| v.checked_mul(gcount))
                .and_then(|v| v.checked_mul(bitpix.unsigned_abs() / 8))
        };
        let available = file_len - pos;
        let data_len = match data_len {
            Some(len) if len <= available => len,
            declared => {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "truncated: HDU {hdu} declares {} bytes of data but the file ends {available} bytes after its header",
                        declared.map_or_else(|| "more than 2^64".to_string(), |d| d.to_string())
                    ),
                ))
            }
        };
        let xtension = match header.get("XTENSION") {
            Some(Value::Text(t)) => Some(t.trim().to_string()),
            _ => None,
        };
        let is_image =
            !axes.is_empty() && !groups && (hdu == 0 || xtension.as_deref() == Some("IMAGE"));
        if xtension.as_deref() == Some("BINTABLE")
            && header.get("ZIMAGE") == Some(&Value::Logical(true))
        {
            compressed_seen = true;
        }
        if wanted == Some(hdu) && !is_image {
            return Err(Error::bad_file(
                path,
                format!(
                    "HDU {hdu} holds no image ({})",
                    xtension
                        .map(|x| format!("XTENSION = '{x}'"))
                        .unwrap_or_else(|| "NAXIS = 0".into())
                ),
            ));
        }
        if is_image && wanted.is_none_or(|w| w == hdu) {
            return image_hdu(path, hdu, pos, bitpix, &axes, &header, &primary);
        }
        if hdu == 0 {
            primary = header;
        }
        let next = pos + data_len.div_ceil(BLOCK as u64) * BLOCK as u64;
        if next >= file_len {
            break;
        }
        r.seek(SeekFrom::Start(next))
            .map_err(|e| Error::io(path, e))?;
    }
    Err(Error::bad_file(
        path,
        match wanted {
            Some(h) => format!("has no HDU {h}"),
            None if compressed_seen => "no image: it holds a tile-compressed image (decompress it first, e.g. with funpack or astropy)".into(),
            None => "no image: the primary HDU is empty and there is no IMAGE extension".into(),
        },
    ))
}

fn image_hdu(
    path: &Path,
    hdu: usize,
    data_start: u64,
    bitpix: i64,
    axes: &[u64],
    header: &Header,
    primary: &Header,
) -> Result<ImageHdu> {
    let origin = &format!("{} (HDU {hdu})", path.display());
    // Axes of extent 1 beyond the second carry no data (a map saved as 1×N×N).
    let kept: Vec<u64> = axes
        .iter()
        .enumerate()
        .filter(|&(k, &n)| k < 2 || n != 1)
        .map(|(_, &n)| n)
        .collect();
    let shape: Vec<usize> = kept.iter().rev().map(|&n| n as usize).collect();
    match shape.len() {
        2 => {}
        1 => {
            return Err(Error::bad_file(
                path,
                format!("HDU {hdu} is a 1-D image of {} values where a 2-D map is expected", shape[0]),
            ))
        }
        d => {
            return Err(Error::bad_file(
                path,
                format!("HDU {hdu} is a {d}-D image (a cube of shape {shape:?}) where a 2-D map is expected; simemu imports one map per file"),
            ))
        }
    }
    if shape.contains(&0) {
        return Err(Error::bad_file(
            path,
            format!("HDU {hdu} is an empty image {shape:?}"),
        ));
    }
    let bscale = header.real("BSCALE", origin)?.unwrap_or(1.0);
    let bzero = header.real("BZERO", origin)?.unwrap_or(0.0);
    if !(bscale.is_finite() && bzero.is_finite()) {
        return Err(Error::bad_file(
            path,
            format!("HDU {hdu}: non-finite BSCALE/BZERO"),
        ));
    }
    let blank = if bitpix > 0 {
        header.int("BLANK", origin)?
    } else {
        None
    };
    let angle = match header.real("ANGLE", origin)? {
        Some(a) => Some(a),
        None => primary.real("ANGLE", origin)?,
    };
    if let Some(a) = angle {
        crate::check_angle(a, &format!("{origin}: ANGLE"))?;
    }
    let mut params = Vec::new();
    for k in 1.. {
        let Some(name) = header.get(&format!("PNAME{k}")) else {
            break;
        };
        let Value::Text(name) = name else {
            return Err(Error::bad_file(path, format!("PNAME{k} is not a string")));
        };
        let value = header
            .real(&format!("PVAL{k}"), origin)?
            .ok_or_else(|| Error::bad_file(path, format!("PNAME{k} = '{name}' has no PVAL{k}")))?;
        params.push((name.clone(), value));
    }
    Ok(ImageHdu {
        path: path.to_path_buf(),
        hdu,
        data_start,
        bitpix,
        shape,
        bscale,
        bzero,
        blank,
        angle,
        params,
    })
}

/// Decodes the image's values: big-endian raw values, scaled by BSCALE and BZERO.
fn read_image(img: &ImageHdu) -> Result<Array> {
    let path = &img.path;
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    f.seek(SeekFrom::Start(img.data_start))
        .map_err(|e| Error::io(path, e))?;
    let n: usize = img.shape.iter().product();
    let width = img.bitpix.unsigned_abs() as usize / 8;
    let mut bytes = vec![0u8; n * width];
    f.read_exact(&mut bytes).map_err(|_| {
        Error::bad_file(
            path,
            format!("truncated: the image data of HDU {} is incomplete", img.hdu),
        )
    })?;
    let cols = img.shape[1];
    let blank_at = |i: usize| {
        Error::bad_file(
            path,
            format!(
                "pixel [{}, {}] is BLANK (undefined); simemu datasets hold finite values only",
                i / cols,
                i % cols
            ),
        )
    };
    let raw: Vec<f64> = match img.bitpix {
        -32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes(c.try_into().expect("4 bytes")) as f64)
            .collect(),
        -64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        bits => {
            let ints: Vec<i64> = match bits {
                8 => bytes.iter().map(|&b| b as i64).collect(),
                16 => bytes
                    .chunks_exact(2)
                    .map(|c| i16::from_be_bytes([c[0], c[1]]) as i64)
                    .collect(),
                32 => bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_be_bytes(c.try_into().expect("4 bytes")) as i64)
                    .collect(),
                _ => bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_be_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            };
            if let Some(blank) = img.blank {
                if let Some(i) = ints.iter().position(|&v| v == blank) {
                    return Err(blank_at(i));
                }
            }
            ints.into_iter().map(|v| v as f64).collect()
        }
    };
    // Scaled exactly as astropy does it (`data *= BSCALE; data += BZERO` in the
    // output's precision, float32 for BITPIX 8 and 16), so that the values agree
    // with what users get from `fits.getdata` bit for bit.
    Ok(match img.dtype() {
        DType::F32 => {
            let (scale, zero) = (img.bscale as f32, img.bzero as f32);
            Array::F32(
                raw.into_iter()
                    .map(|x| {
                        let mut v = x as f32;
                        if img.bscale != 1.0 {
                            v *= scale;
                        }
                        if img.bzero != 0.0 {
                            v += zero;
                        }
                        v
                    })
                    .collect(),
            )
        }
        DType::F64 => Array::F64(
            raw.into_iter()
                .map(|mut v| {
                    if img.bscale != 1.0 {
                        v *= img.bscale;
                    }
                    if img.bzero != 0.0 {
                        v += img.bzero;
                    }
                    v
                })
                .collect(),
        ),
    })
}

/// A 2-D image read from or written to a FITS file, with the keywords simemu uses.
#[derive(Clone, Debug, PartialEq)]
pub struct FitsImage {
    /// `[rows, columns]`.
    pub shape: Vec<usize>,
    pub data: Array,
    /// `ANGLE`: side angle in degrees.
    pub angle_deg: Option<f64>,
    /// `PNAMEn` / `PVALn`: the parameters σ the map was made with.
    pub params: Vec<(String, f64)>,
}

impl FitsImage {
    /// Reads HDU `hdu`, or the first HDU holding an image.
    pub fn read(path: &Path, hdu: Option<usize>) -> Result<FitsImage> {
        let img = locate_image(path, hdu)?;
        Ok(FitsImage {
            data: read_image(&img)?,
            shape: img.shape,
            angle_deg: img.angle,
            params: img.params,
        })
    }

    /// Writes the image as the primary HDU (BITPIX −32 or −64 after the data's type).
    pub fn write(&self, w: &mut impl Write, path: &Path) -> Result<()> {
        let [rows, cols] = self.shape[..] else {
            return Err(Error::Data(format!(
                "FITS export writes 2-D maps, got shape {:?}",
                self.shape
            )));
        };
        let bitpix = match self.data {
            Array::F32(_) => -32,
            Array::F64(_) => -64,
        };
        let mut cards = vec![
            card("SIMPLE", "T", "conforms to FITS standard"),
            card("BITPIX", &bitpix.to_string(), "IEEE floating point"),
            card("NAXIS", "2", ""),
            card("NAXIS1", &cols.to_string(), "columns"),
            card("NAXIS2", &rows.to_string(), "rows"),
            card("EXTEND", "T", ""),
        ];
        if let Some(a) = self.angle_deg {
            cards.push(card("ANGLE", &fits_real(a)?, "side angle in degrees"));
        }
        for (k, (name, value)) in self.params.iter().enumerate() {
            let i = k + 1;
            cards.push(card(
                &format!("PNAME{i}"),
                &fits_string(name)?,
                "parameter name",
            ));
            cards.push(card(
                &format!("PVAL{i}"),
                &fits_real(*value)?,
                "parameter value",
            ));
        }
        cards.push(card(
            "ORIGIN",
            &fits_string(&format!("simemu {}", simemu_core::VERSION))?,
            "",
        ));
        let mut header = cards.concat();
        header.push_str(&format!("{:<80}", "END"));
        let padded = header.len().div_ceil(BLOCK) * BLOCK;
        header.extend(std::iter::repeat_n(' ', padded - header.len()));
        let io = |e| Error::io(path, e);
        w.write_all(header.as_bytes()).map_err(io)?;
        let mut bytes = Vec::with_capacity(self.data.len() * 8);
        match &self.data {
            Array::F32(v) => v
                .iter()
                .for_each(|x| bytes.extend_from_slice(&x.to_be_bytes())),
            Array::F64(v) => v
                .iter()
                .for_each(|x| bytes.extend_from_slice(&x.to_be_bytes())),
        }
        let padded = bytes.len().div_ceil(BLOCK) * BLOCK;
        bytes.resize(padded, 0);
        w.write_all(&bytes).map_err(io)
    }
}

/// An 80-character card with a value in the fixed format (right-justified to
/// column 30 for numbers and logicals, strings from column 11).
fn card(key: &str, value: &str, comment: &str) -> String {
    let value = if value.starts_with('\'') {
        format!("{value:<20}")
    } else {
        format!("{value:>20}")
    };
    let mut c = format!("{key:<8}= {value}");
    if !comment.is_empty() {
        c.push_str(" / ");
        c.push_str(comment);
    }
    c.truncate(CARD);
    format!("{c:<80}")
}

/// The shortest text that reads back as exactly `x`, with the decimal point and the
/// upper-case exponent letter the standard asks for.
fn fits_real(x: f64) -> Result<String> {
    if !x.is_finite() {
        return Err(Error::Data(format!("cannot write {x} in a FITS header")));
    }
    let s = format!("{x:E}");
    let (mantissa, exponent) = s.split_once('E').expect("{:E} has an exponent");
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    Ok(format!("{mantissa}E{exponent}"))
}

fn fits_string(s: &str) -> Result<String> {
    if !s.chars().all(|c| (' '..='~').contains(&c)) || s.len() > 66 {
        return Err(Error::Data(format!(
            "'{s}' cannot be a FITS header string (printable ASCII, at most 66 characters)"
        )));
    }
    Ok(format!("'{:<8}'", s.replace('\'', "''")))
}

pub struct FitsFormat;

impl Format for FitsFormat {
    fn name(&self) -> &str {
        "fits"
    }

    fn import(
        &self,
        inputs: &[PathBuf],
        options: &serde_json::Value,
        sink: &mut dyn ImportSink,
    ) -> Result<()> {
        let o = ImportOptions::parse("fits", options, &["hdu"])?;
        // Every header first: a wrong file is found before anything is written.
        let images = inputs
            .iter()
            .map(|p| locate_image(p, o.hdu))
            .collect::<Result<Vec<_>>>()?;
        let first = &images[0];
        if first.angle.is_none() && o.angle_deg.is_none() {
            return Err(Error::bad_file(
                &first.path,
                "no ANGLE keyword (the side angle in degrees, as lenstools writes it); give --angle-deg",
            ));
        }
        let layouts: Vec<crate::InputLayout> = images
            .iter()
            .map(|i| crate::InputLayout {
                path: &i.path,
                shape: &i.shape,
                dtype: i.dtype(),
                param_names: i.params.iter().map(|(n, _)| n.as_str()).collect(),
                angle: i.angle,
            })
            .collect();
        let spec = crate::begin_import(&o, &layouts, images.len(), sink)?;
        for img in &images {
            let data = match (read_image(img)?, spec.dtype) {
                (Array::F32(v), DType::F64) => Array::F64(v.into_iter().map(f64::from).collect()),
                (a, _) => a,
            };
            let params = img.params.iter().map(|(_, v)| *v).collect();
            crate::push_sample(sink, &spec, data, params, &img.path.display().to_string())?;
        }
        Ok(())
    }

    fn export(
        &self,
        dataset: &Dataset,
        field: Option<&str>,
        out: &Path,
        options: &serde_json::Value,
        overwrite: bool,
    ) -> Result<ExportSummary> {
        ExportOptions::parse("fits", options, false)?;
        let index = dataset.field_index(field)?;
        let spec = dataset.fields()[index].clone();
        if spec.shape.len() != 2 {
            return Err(Error::Data(format!(
                "FITS export writes 2-D maps; field '{}' has shape {:?}",
                spec.name, spec.shape
            )));
        }
        // Refused before any work (TempDir::persist would refuse only at the end).
        simemu_core::fsutil::check_output(
            out,
            overwrite,
            simemu_core::fsutil::OutputKind::Directory,
        )?;
        let dir = TempDir::new(out)?;
        // The marker that lets a later `--force` recognise this directory as
        // simemu's (the FITS files beside it are another tool's format).
        simemu_core::fsutil::write_json_atomic(
            &dir.path().join(simemu_core::fsutil::EXPORT_MARKER),
            &serde_json::json!({
                "format": "simemu-export",
                "export_format": "fits",
                "field": spec.name,
                "count": dataset.len(),
                "simemu_version": simemu_core::VERSION,
            }),
        )?;
        let n = dataset.len();
        let digits = n.saturating_sub(1).to_string().len().max(5);
        let names = dataset.param_names().to_vec();
        for start in (0..n).step_by(BLOCK_SAMPLES) {
            let count = BLOCK_SAMPLES.min(n - start);
            let samples = dataset.read_samples(start, count)?;
            for (k, sample) in samples.into_iter().enumerate() {
                let i = start + k;
                let image = FitsImage {
                    shape: spec.shape.clone(),
                    data: sample
                        .fields
                        .into_iter()
                        .nth(index)
                        .expect("field index")
                        .data,
                    angle_deg: spec.attr_f64(ANGLE_ATTR),
                    params: names.iter().cloned().zip(sample.params).collect(),
                };
                let path = dir.path().join(format!("{}-{i:0digits$}.fits", spec.name));
                let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
                let mut w = BufWriter::new(f);
                image.write(&mut w, &path)?;
                let f = w
                    .into_inner()
                    .map_err(|e| Error::io(&path, e.into_error()))?;
                f.sync_all().map_err(|e| Error::io(&path, e))?;
            }
        }
        dir.persist(overwrite)?;
        Ok(ExportSummary {
            count: n,
            files: n,
            fields: vec![spec.name.clone()],
            path: out.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_the_standard_writes_them() {
        assert_eq!(
            parse_value("                   T / c"),
            Value::Logical(true)
        );
        assert_eq!(parse_value("                 -32"), Value::Int(-32));
        assert_eq!(parse_value("              3.5E0 / deg"), Value::Real(3.5));
        assert_eq!(parse_value("  1.25D-3"), Value::Real(1.25e-3));
        assert_eq!(parse_value("'it''s   ' / q"), Value::Text("it's".into()));
        assert_eq!(parse_value("   "), Value::Other(String::new()));
    }

    #[test]
    fn reals_round_trip_exactly_through_the_header_text() {
        for x in [3.5, 0.1, 1e-5, -2.5e10, 0.30000000000000004, 5e-324, 1.0] {
            let text = fits_real(x).unwrap();
            assert!(text.contains('.') && text.contains('E'), "{text}");
            assert_eq!(parse_value(&text), Value::Real(x), "{text}");
        }
        assert!(fits_real(f64::NAN).is_err());
    }

    #[test]
    fn cards_are_80_characters_in_the_fixed_format() {
        let c = card("NAXIS1", "64", "columns");
        assert_eq!(c.len(), 80);
        assert_eq!(&c[..30], "NAXIS1  =                   64");
        let s = card("ORIGIN", &fits_string("x").unwrap(), "");
        assert_eq!(&s[..20], "ORIGIN  = 'x       '");
        assert!(fits_string("é").is_err());
    }
}
