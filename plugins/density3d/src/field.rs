//! What every 3D statistic checks of the field it reads.

use simemu_core::{ArrayView, Error, Field, FieldView, Result, Sample, StatContext};

use crate::simulator::BOX_ATTR;

/// The side N of the cubic field a statistic is built for (at least `min`).
pub fn cube_side(name: &str, ctx: &StatContext, min: usize) -> Result<usize> {
    match ctx.field.shape.as_slice() {
        [a, b, c] if a == b && b == c && *a >= min => Ok(*a),
        s => Err(Error::Option(format!(
            "{name} needs cubic 3D fields (at least {min}³); field '{}' has shape {s:?}",
            ctx.field.name
        ))),
    }
}

/// The box side in Mpc/h: the option's, else the field's `box_mpc_h`.
pub fn box_side(name: &str, option: Option<f64>, ctx: &StatContext) -> Result<f64> {
    match option.or_else(|| ctx.field.attr_f64(BOX_ATTR)) {
        Some(b) if b.is_finite() && b > 0.0 => Ok(b),
        Some(b) => Err(Error::Option(format!(
            "{name}: box_mpc_h = {b} must be positive"
        ))),
        None => Err(Error::Option(format!(
            "{name}: the box side of field '{}' is unknown; give --stat-option box_mpc_h=L",
            ctx.field.name
        ))),
    }
}

/// The named field of a sample, or its only one.
pub fn field_of<'s>(sample: &'s Sample, name: &str) -> Result<&'s Field> {
    match sample.field(name) {
        Ok(f) => Ok(f),
        Err(_) if sample.fields.len() == 1 => Ok(&sample.fields[0]),
        Err(e) => Err(e),
    }
}

/// The values of an N³ field, refused if it has another shape or a
/// non-finite cell (named by its index).
pub fn checked_cube<'a>(field: &FieldView<'a>, n: usize) -> Result<ArrayView<'a>> {
    if field.shape != [n, n, n] {
        return Err(Error::Data(format!(
            "field has shape {:?}, expected [{n}, {n}, {n}]",
            field.shape
        )));
    }
    if let Some(i) = field.data.first_non_finite() {
        return Err(Error::Data(format!(
            "non-finite cell at [{}, {}, {}]",
            i / (n * n),
            (i / n) % n,
            i % n
        )));
    }
    Ok(field.data)
}
