//! Bin edges given explicitly or by shorthand: `a,b,c`, `lin:A:B:N`, `log:A:B:N`,
//! `quantile:QLO:QHI:N` (N linear bins between two quantiles of reference values).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The most bins a statistic may have: each is a KS test and a column of
/// every report; far more than any summary statistic resolves.
pub const MAX_BINS: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BinSpec {
    Edges(Vec<f64>),
    Shorthand(String),
}

impl BinSpec {
    /// Bin edges from a statistic's option value: a JSON array of numbers or a
    /// string spelling, `default` when unset; `name` (the statistic) in errors.
    pub fn from_option(
        name: &str,
        value: &Option<serde_json::Value>,
        default: &str,
    ) -> Result<BinSpec> {
        match value {
            None | Some(serde_json::Value::Null) => BinSpec::parse(default),
            Some(serde_json::Value::String(s)) => BinSpec::parse(s),
            Some(serde_json::Value::Array(a)) => {
                let e: Option<Vec<f64>> = a.iter().map(|v| v.as_f64()).collect();
                let e = e.ok_or_else(|| Error::Option(format!("{name}: edges must be numbers")))?;
                check_edges(&e)?;
                Ok(BinSpec::Edges(e))
            }
            Some(serde_json::Value::Number(x)) => BinSpec::parse(&x.to_string()),
            Some(other) => Err(Error::Option(format!(
                "{name}: cannot read bin edges from {other}"
            ))),
        }
    }

    /// Parses the command-line spelling.
    pub fn parse(s: &str) -> Result<BinSpec> {
        let s = s.trim();
        if s.starts_with("lin:") || s.starts_with("log:") || s.starts_with("quantile:") {
            let spec = BinSpec::Shorthand(s.to_string());
            spec.shorthand()?; // validate early
            return Ok(spec);
        }
        let edges = s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .map_err(|_| Error::Option(format!("bin edge '{x}' in '{s}' is not a number")))
            })
            .collect::<Result<Vec<f64>>>()?;
        check_edges(&edges)?;
        Ok(BinSpec::Edges(edges))
    }

    fn shorthand(&self) -> Result<Option<(String, f64, f64, usize)>> {
        let BinSpec::Shorthand(s) = self else {
            return Ok(None);
        };
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 4 {
            return Err(Error::Option(format!("'{s}' must be KIND:A:B:N")));
        }
        let num = |x: &str| {
            x.parse::<f64>()
                .map_err(|_| Error::Option(format!("'{x}' in '{s}' is not a number")))
        };
        let a = num(parts[1])?;
        let b = num(parts[2])?;
        let n: usize = parts[3].parse().map_err(|_| {
            Error::Option(format!(
                "bin count '{}' in '{s}' is not a whole number",
                parts[3]
            ))
        })?;
        if n < 1 {
            return Err(Error::Option(format!("'{s}': at least 1 bin is needed")));
        }
        if n > MAX_BINS {
            return Err(Error::Option(format!(
                "'{s}': {n} bins; at most {MAX_BINS} are allowed"
            )));
        }
        if !a.is_finite() || !b.is_finite() || a >= b {
            return Err(Error::Option(format!(
                "'{s}': the lower end must be below the upper end"
            )));
        }
        match parts[0] {
            "log" if a <= 0.0 => {
                return Err(Error::Option(format!("'{s}': log bins need positive ends")))
            }
            "quantile" if a < 0.0 || b > 1.0 => {
                return Err(Error::Option(format!(
                    "'{s}': quantiles must lie in [0, 1]"
                )))
            }
            "lin" | "log" | "quantile" => {}
            k => return Err(Error::Option(format!("unknown bin kind '{k}' in '{s}'"))),
        }
        Ok(Some((parts[0].to_string(), a, b, n)))
    }

    /// Whether resolving needs quantiles of reference values.
    pub fn needs_quantiles(&self) -> bool {
        matches!(self, BinSpec::Shorthand(s) if s.starts_with("quantile:"))
    }

    /// The edges; `quantiles` maps probabilities to quantiles of the reference values.
    pub fn resolve(&self, quantiles: &dyn Fn(&[f64]) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
        let edges = match self {
            BinSpec::Edges(e) => e.clone(),
            BinSpec::Shorthand(_) => {
                let (kind, a, b, n) = self.shorthand()?.expect("shorthand");
                match kind.as_str() {
                    "lin" => linspace(a, b, n + 1),
                    "log" => {
                        let (la, lb) = (a.ln(), b.ln());
                        linspace(la, lb, n + 1).into_iter().map(f64::exp).collect()
                    }
                    _ => {
                        let q = quantiles(&[a, b])?;
                        linspace(q[0], q[1], n + 1)
                    }
                }
            }
        };
        check_edges(&edges)?;
        Ok(edges)
    }
}

/// `n` evenly spaced values from `a` to `b` inclusive, as numpy.linspace computes them.
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    let step = (b - a) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| a + i as f64 * step).collect();
    v[n - 1] = b;
    v
}

/// Edges must be finite, at least two, strictly increasing.
pub fn check_edges(edges: &[f64]) -> Result<()> {
    if edges.len() < 2 {
        return Err(Error::Option(format!(
            "at least 2 bin edges are needed, got {}",
            edges.len()
        )));
    }
    if edges.len() > MAX_BINS + 1 {
        return Err(Error::Option(format!(
            "{} bins; at most {MAX_BINS} are allowed",
            edges.len() - 1
        )));
    }
    if edges.iter().any(|x| !x.is_finite()) {
        return Err(Error::Option("bin edges must be finite".into()));
    }
    if let Some(w) = edges.windows(2).position(|w| w[0] >= w[1]) {
        return Err(Error::Option(format!(
            "bin edges must increase strictly: edge {} ({}) is not below edge {} ({})",
            w,
            edges[w],
            w + 1,
            edges[w + 1]
        )));
    }
    Ok(())
}

/// Midpoints of consecutive edges (the abscissa binned statistics report).
pub fn midpoints(edges: &[f64]) -> Vec<f64> {
    edges.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
}

/// Quantile with linear interpolation between order statistics (numpy's default).
pub fn quantile_sorted<T: Copy + Into<f64>>(sorted: &[T], q: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0].into();
    }
    let pos = q * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    let (a, b): (f64, f64) = (sorted[lo].into(), sorted[hi].into());
    a + (b - a) * frac
}

/// Finds the bin of values quickly. For equally spaced edges (what `lin:` and the
/// default quantile-free bins give) a multiplication guesses the bin to within one,
/// and two branch-free comparisons with the actual edges make it exact; other edges
/// take a binary search.
pub struct BinFinder {
    /// −∞, e_0, …, e_nb, +∞: every finite value lies in one slot between two of them.
    extended: Vec<f64>,
    lo: f64,
    inv_width: f64,
    uniform: bool,
}

impl BinFinder {
    pub fn new(edges: &[f64]) -> Self {
        let nb = edges.len() - 1;
        let (lo, hi) = (edges[0], edges[nb]);
        let width = (hi - lo) / nb as f64;
        // Off-grid by less than a millionth of a bin: the guess is off by at most one.
        let uniform = edges
            .iter()
            .enumerate()
            .all(|(k, &e)| (e - (lo + k as f64 * width)).abs() <= 1e-6 * width);
        let mut extended = Vec::with_capacity(nb + 3);
        extended.push(f64::NEG_INFINITY);
        extended.extend_from_slice(edges);
        extended.push(f64::INFINITY);
        BinFinder {
            extended,
            lo,
            inv_width: nb as f64 / (hi - lo),
            uniform,
        }
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.extended.len() - 3
    }

    /// The slot of `x`: 0 below `e_0`, `k + 1` for `e_k <= x < e_{k+1}`, and
    /// `bins() + 1` at or above the last edge. Branch-free for equally spaced edges,
    /// so that statistics can accumulate every pixel without testing where it fell.
    #[inline(always)]
    pub fn slot(&self, x: f64) -> usize {
        let e = &self.extended;
        let top = e.len() - 2;
        if !self.uniform {
            return e.partition_point(|&v| v <= x).saturating_sub(1);
        }
        // The float-to-integer cast saturates: far below e_0 gives slot 0.
        let guess = (((x - self.lo) * self.inv_width + 1.0) as usize).min(top);
        let s = guess - usize::from(x < e[guess]);
        s + usize::from(x >= e[s + 1])
    }

    /// Index `k` with `e_k <= x < e_{k+1}`, if any.
    #[inline]
    pub fn find(&self, x: f64) -> Option<usize> {
        let s = self.slot(x);
        (s >= 1 && s <= self.bins()).then(|| s - 1)
    }
}

/// The key of a statistic's [`Statistic::options`](crate::Statistic::options)
/// under which it may name, for each component and bin, the histogram on which
/// the harness scores that bin's per-sample values by separation power:
/// `[component][bin]` of [`ScoreHistogram`] (or `null` for a bin not scored).
pub const SCORE_HISTOGRAMS_KEY: &str = "score_histograms";

/// A histogram on which one bin's per-sample values are scored, given as the
/// rule for its edges so that the edges can follow the reference set as
/// CaloChallenge's energy histograms do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScoreHistogram {
    /// `edges` edges evenly spaced from `lo` to `hi` (numpy.linspace).
    Linear { lo: f64, hi: f64, edges: usize },
    /// `edges` edges evenly spaced in log10 from `lo` to the largest reference
    /// value (numpy.logspace(log10(lo), log10(max), edges)).
    LogToReferenceMax { lo: f64, edges: usize },
}

impl ScoreHistogram {
    /// The edges for a reference set's values; an error where they would not
    /// increase (a log histogram whose reference never exceeds `lo`).
    pub fn edges(&self, reference: &[f64]) -> Result<Vec<f64>> {
        let edges = match *self {
            ScoreHistogram::Linear { lo, hi, edges } => linspace(lo, hi, edges),
            ScoreHistogram::LogToReferenceMax { lo, edges } => {
                let max = reference.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if !(lo > 0.0 && max > lo) {
                    return Err(Error::Data(format!(
                        "a log histogram from {lo} to the largest reference value ({max}) has no width"
                    )));
                }
                linspace(lo.log10(), max.log10(), edges)
                    .into_iter()
                    .map(|e| 10f64.powf(e))
                    .collect()
            }
        };
        check_edges(&edges)?;
        Ok(edges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands() {
        let none = |_: &[f64]| -> Result<Vec<f64>> { unreachable!() };
        assert_eq!(
            BinSpec::parse("lin:0:1:4").unwrap().resolve(&none).unwrap(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        let l = BinSpec::parse("log:10:1000:2")
            .unwrap()
            .resolve(&none)
            .unwrap();
        assert!((l[1] - 100.0).abs() < 1e-9);
        let q = BinSpec::parse("quantile:0.1:0.9:2").unwrap();
        assert!(q.needs_quantiles());
        assert_eq!(
            q.resolve(&|p: &[f64]| Ok(vec![p[0] * 10.0, p[1] * 10.0]))
                .unwrap(),
            vec![1.0, 5.0, 9.0]
        );
        assert!(BinSpec::parse("1,1,2").is_err());
        assert!(BinSpec::parse("1").is_err());
        assert!(BinSpec::parse("lin:1:0:3").is_err());
        assert_eq!(quantile_sorted(&[0.0, 1.0, 2.0, 3.0], 0.5), 1.5);
    }

    /// The bin of every value, edges included, equals a plain search's, for
    /// equally spaced edges (fast path) and uneven ones (binary search).
    #[test]
    fn bin_finder_agrees_with_a_search_on_edges_and_between() {
        let uniform: Vec<f64> = (0..=30).map(|k| -0.02 + k as f64 * (0.07 / 30.0)).collect();
        let uneven: Vec<f64> = (0..=12).map(|k| (k as f64 * 0.3).exp() - 1.0).collect();
        for edges in [&uniform, &uneven] {
            let bins = BinFinder::new(edges);
            let (lo, hi) = (edges[0], edges[edges.len() - 1]);
            let mut xs: Vec<f64> = edges.clone();
            xs.extend(edges.iter().map(|&e| e - 1e-15));
            xs.extend(edges.iter().map(|&e| e + 1e-15));
            xs.extend(
                (0..10_000).map(|i| {
                    lo - 0.1 * (hi - lo) + 1.2 * (hi - lo) * (i as f64 * 0.618_034).fract()
                }),
            );
            for x in xs {
                let want =
                    (x >= lo && x < hi).then(|| edges.iter().rposition(|&e| e <= x).unwrap());
                assert_eq!(bins.find(x), want, "x = {x:e}");
            }
        }
    }

    #[test]
    fn score_histograms_give_numpys_edges_and_refuse_empty_ranges() {
        let lin = ScoreHistogram::Linear {
            lo: 0.5,
            hi: 1.5,
            edges: 5,
        };
        assert_eq!(lin.edges(&[]).unwrap(), [0.5, 0.75, 1.0, 1.25, 1.5]);
        let log = ScoreHistogram::LogToReferenceMax { lo: 10.0, edges: 3 };
        let e = log.edges(&[3.0, 1000.0, 50.0]).unwrap();
        for (got, want) in e.iter().zip([10.0, 100.0, 1000.0]) {
            assert!((got - want).abs() <= 1e-12 * want, "{e:?}");
        }
        let err = log.edges(&[2.0, 9.0]).unwrap_err().to_string();
        assert!(err.contains("no width"), "{err}");
        let json: ScoreHistogram =
            serde_json::from_str(r#"{"kind": "log_to_reference_max", "lo": 1.0, "edges": 40}"#)
                .unwrap();
        assert_eq!(
            json,
            ScoreHistogram::LogToReferenceMax { lo: 1.0, edges: 40 }
        );
    }
}
