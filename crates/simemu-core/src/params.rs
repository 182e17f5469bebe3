//! Parameter spaces, option maps and their command-line spellings.

use serde::Serialize;

use crate::{Error, Result};

/// One physical parameter of a simulator (or condition of a generator).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamSpec {
    pub name: String,
    pub units: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub description: String,
}

impl ParamSpec {
    pub fn new(
        name: &str,
        units: &str,
        min: f64,
        max: f64,
        default: f64,
        description: &str,
    ) -> Self {
        ParamSpec {
            name: name.into(),
            units: units.into(),
            min,
            max,
            default,
            description: description.into(),
        }
    }
}

/// One configuration option of a plugin, with its default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptionSpec {
    pub name: String,
    pub default: serde_json::Value,
    pub description: String,
    /// The heading the option is listed under, for plugins with many (empty:
    /// none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
}

impl OptionSpec {
    pub fn new(name: &str, default: impl Into<serde_json::Value>, description: &str) -> Self {
        OptionSpec {
            name: name.into(),
            default: default.into(),
            description: description.into(),
            group: String::new(),
        }
    }

    /// The same option, listed under `group`.
    pub fn in_group(mut self, group: &str) -> Self {
        self.group = group.into();
        self
    }
}

/// Resolves named parameter values against a parameter space: defaults fill what is
/// not given; unknown names and values outside the bounds are refused.
pub fn resolve_params(space: &[ParamSpec], given: &[(String, f64)]) -> Result<Vec<f64>> {
    let mut values: Vec<f64> = space.iter().map(|p| p.default).collect();
    for (k, (name, _)) in given.iter().enumerate() {
        if given[..k].iter().any(|(n, _)| n == name) {
            return Err(Error::Parameter(format!(
                "parameter '{name}' is given twice"
            )));
        }
    }
    for (name, v) in given {
        let Some(i) = space.iter().position(|p| &p.name == name) else {
            let names: Vec<&str> = space.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::Parameter(format!(
                "unknown parameter '{name}'{} (parameters: {})",
                did_you_mean(name, &names),
                names.join(", ")
            )));
        };
        values[i] = *v;
    }
    check_params(space, &values)?;
    Ok(values)
}

/// Checks a full parameter vector against the bounds.
pub fn check_params(space: &[ParamSpec], values: &[f64]) -> Result<()> {
    if values.len() != space.len() {
        return Err(Error::Parameter(format!(
            "{} parameter values given, the space has {}",
            values.len(),
            space.len()
        )));
    }
    for (p, &v) in space.iter().zip(values) {
        if !v.is_finite() || v < p.min || v > p.max {
            return Err(Error::Parameter(format!(
                "{} = {v} is outside its bounds [{}, {}]",
                p.name, p.min, p.max
            )));
        }
    }
    Ok(())
}

/// Splits `key=value`.
pub fn split_assignment(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::Option(format!("'{s}' is not of the form key=value")))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(Error::Option(format!("'{s}' has an empty key")));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

/// Parses `name=value` parameter assignments with numeric values.
pub fn parse_param_assignments(items: &[String]) -> Result<Vec<(String, f64)>> {
    items
        .iter()
        .map(|s| {
            let (k, v) = split_assignment(s)?;
            let x: f64 = v
                .parse()
                .map_err(|_| Error::Parameter(format!("{k} = '{v}' is not a number")))?;
            if !x.is_finite() {
                return Err(Error::Parameter(format!("{k} = {v} is not finite")));
            }
            Ok((k, x))
        })
        .collect()
}

/// Parses `key=value` option assignments into a JSON object: numbers, booleans and
/// JSON arrays are typed, anything else is a string.
pub fn parse_option_assignments(items: &[String]) -> Result<serde_json::Value> {
    let mut m = serde_json::Map::new();
    for s in items {
        let (k, v) = split_assignment(s)?;
        if m.contains_key(&k) {
            return Err(Error::Option(format!("option '{k}' is given twice")));
        }
        let value = serde_json::from_str::<serde_json::Value>(&v)
            .ok()
            .filter(|x| !x.is_object())
            .unwrap_or(serde_json::Value::String(v));
        m.insert(k, value);
    }
    Ok(serde_json::Value::Object(m))
}

/// Deserialises a plugin's configuration from its option map, naming the first
/// unknown or mistyped option (use `#[serde(deny_unknown_fields)]` on `T`).
pub fn options_from_json<T: serde::de::DeserializeOwned>(
    plugin: &str,
    value: &serde_json::Value,
) -> Result<T> {
    let v = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value.clone()
    };
    serde_json::from_value(v).map_err(|e| Error::Option(format!("{plugin}: {e}")))
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `" (did you mean 'x'?)"` when a candidate is close enough, else empty.
pub fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_typed() {
        let v = parse_option_assignments(&[
            "size=64".into(),
            "field=gaussian".into(),
            "x=[1,2]".into(),
        ])
        .unwrap();
        assert_eq!(v["size"], 64);
        assert_eq!(v["field"], "gaussian");
        assert_eq!(v["x"][1], 2);
    }

    #[test]
    fn params_resolve_with_bounds_and_hints() {
        let space = vec![ParamSpec::new("omega", "", 0.1, 0.6, 0.3, "")];
        assert_eq!(resolve_params(&space, &[]).unwrap(), vec![0.3]);
        assert!(resolve_params(&space, &[("omega".into(), 0.9)])
            .unwrap_err()
            .to_string()
            .contains("outside"));
        let e = resolve_params(&space, &[("omegaa".into(), 0.2)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 'omega'"), "{e}");
    }
}
