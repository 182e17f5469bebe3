//! Samples: sets of named n-dimensional fields, optionally with the parameters σ
//! that produced them.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Element type of a field as stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// The type that holds values of all of `types` exactly: float32 only when
    /// every one is (float64 holds both).
    pub fn common(types: impl IntoIterator<Item = DType>) -> DType {
        if types.into_iter().all(|t| t == DType::F32) {
            DType::F32
        } else {
            DType::F64
        }
    }
}

/// Owned, C-ordered values of one field.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        match self {
            Array::F32(_) => DType::F32,
            Array::F64(_) => DType::F64,
        }
    }

    /// The values widened to f64 (statistics are computed in double precision).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Array::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Array::F64(v) => v.clone(),
        }
    }

    /// A copy of `len` values from `start` (one sample of a block read at once).
    pub fn slice(&self, start: usize, len: usize) -> Array {
        let range = start..start + len;
        match self {
            Array::F32(v) => Array::F32(v[range].to_vec()),
            Array::F64(v) => Array::F64(v[range].to_vec()),
        }
    }

    /// The values by reference.
    pub fn view(&self) -> ArrayView<'_> {
        match self {
            Array::F32(v) => ArrayView::F32(v),
            Array::F64(v) => ArrayView::F64(v),
        }
    }

    /// Index of the first value that is NaN or infinite.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.view().first_non_finite()
    }
}

/// Borrowed, C-ordered values of one field: what a statistic reads in place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArrayView<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl ArrayView<'_> {
    pub fn len(&self) -> usize {
        match self {
            ArrayView::F32(v) => v.len(),
            ArrayView::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An owned copy.
    pub fn to_array(&self) -> Array {
        match self {
            ArrayView::F32(v) => Array::F32(v.to_vec()),
            ArrayView::F64(v) => Array::F64(v.to_vec()),
        }
    }

    /// Index of the first value that is NaN or infinite.
    pub fn first_non_finite(&self) -> Option<usize> {
        // Non-finite means all exponent bits set. A full pass that vectorises
        // (integer compares, no early exit) answers the common question, "is there
        // any?"; the position is searched only when there is one.
        fn first_where<T: Copy>(v: &[T], special: impl Fn(T) -> bool) -> Option<usize> {
            let any = v.iter().fold(0u8, |bad, &x| bad | u8::from(special(x)));
            (any != 0)
                .then(|| v.iter().position(|&x| special(x)))
                .flatten()
        }
        const EXPONENT_32: u32 = 0x7f80_0000;
        const EXPONENT_64: u64 = 0x7ff0_0000_0000_0000;
        match self {
            ArrayView::F32(v) => first_where(v, |x| x.to_bits() & EXPONENT_32 == EXPONENT_32),
            ArrayView::F64(v) => first_where(v, |x| x.to_bits() & EXPONENT_64 == EXPONENT_64),
        }
    }
}

/// Name, shape, element type and free attributes of one field. `attrs` belong to the
/// plugins (a map's side angle, its units): the core carries them and never reads them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    #[serde(default)]
    pub attrs: serde_json::Map<String, serde_json::Value>,
}

impl FieldSpec {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, dtype: DType) -> Self {
        FieldSpec {
            name: name.into(),
            shape,
            dtype,
            attrs: Default::default(),
        }
    }

    pub fn with_attr(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.attrs.insert(key.to_string(), value.into());
        self
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A numeric attribute, if present.
    pub fn attr_f64(&self, key: &str) -> Option<f64> {
        self.attrs.get(key).and_then(|v| v.as_f64())
    }
}

/// One field of one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Array,
}

impl Field {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Array) -> Result<Self> {
        let name = name.into();
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(Error::Data(format!(
                "field '{name}': shape {shape:?} needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Field { name, shape, data })
    }
}

impl Field {
    /// The field by reference.
    pub fn view(&self) -> FieldView<'_> {
        FieldView {
            name: &self.name,
            shape: &self.shape,
            data: self.data.view(),
        }
    }
}

/// One field's name, shape and values by reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldView<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: ArrayView<'a>,
}

impl FieldView<'_> {
    /// A sample of this one field (a copy), without parameters.
    pub fn to_sample(&self) -> Result<Sample> {
        let field = Field::new(self.name, self.shape.to_vec(), self.data.to_array())?;
        Ok(Sample::single(field, Vec::new()))
    }
}

/// A sample: named fields plus the parameters σ that produced it (empty when
/// unconditional).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Sample {
    pub fields: Vec<Field>,
    pub params: Vec<f64>,
}

impl Sample {
    pub fn single(field: Field, params: Vec<f64>) -> Self {
        Sample {
            fields: vec![field],
            params,
        }
    }

    pub fn field(&self, name: &str) -> Result<&Field> {
        self.fields.iter().find(|f| f.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
            Error::Data(format!("sample has no field '{name}' (fields: {names:?})"))
        })
    }

    /// Checks the sample against the declared fields: same names in order, shapes,
    /// element types, and only finite values.
    pub fn check(&self, specs: &[FieldSpec], n_params: usize) -> Result<()> {
        if self.fields.len() != specs.len() {
            return Err(Error::Data(format!(
                "sample has {} fields, expected {}",
                self.fields.len(),
                specs.len()
            )));
        }
        for (f, s) in self.fields.iter().zip(specs) {
            if f.name != s.name || f.shape != s.shape || f.data.dtype() != s.dtype {
                return Err(Error::Data(format!(
                    "field '{}' {:?} {:?} does not match the declared '{}' {:?} {:?}",
                    f.name,
                    f.shape,
                    f.data.dtype(),
                    s.name,
                    s.shape,
                    s.dtype
                )));
            }
            if let Some(i) = f.data.first_non_finite() {
                return Err(Error::Data(format!(
                    "field '{}' has a non-finite value at flat index {i}",
                    f.name
                )));
            }
        }
        if self.params.len() != n_params {
            return Err(Error::Data(format!(
                "sample carries {} parameters, expected {n_params}",
                self.params.len()
            )));
        }
        Ok(())
    }
}
