//! Which parameter points a simulation runs, and how many samples at each.

use rand::Rng;
use serde::{Deserialize, Serialize};
use simemu_core::params::{check_params, did_you_mean, resolve_params};
use simemu_core::ParamSpec;

use crate::error::{request, Result};

/// The parameter points of a simulation: fixed values (the others take their
/// defaults), then a grid over some parameters or a Latin hypercube, each point
/// repeated `count` times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Design {
    pub fixed: Vec<(String, f64)>,
    /// Axes whose product is the grid.
    pub grid: Vec<GridAxis>,
    pub latin_hypercube: Option<LatinHypercube>,
    /// Samples per parameter point.
    pub count: usize,
}

/// `n` evenly spaced values of `name` from `lo` to `hi`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridAxis {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

/// `points` points spread over the `ranges`, one in each of `points` equal
/// strata of every axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatinHypercube {
    pub points: usize,
    pub ranges: Vec<RangeAxis>,
}

/// `name` between `lo` and `hi`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeAxis {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
}

impl Design {
    /// `count` samples at the fixed values alone.
    pub fn at(fixed: Vec<(String, f64)>, count: usize) -> Self {
        Design {
            fixed,
            grid: Vec::new(),
            latin_hypercube: None,
            count,
        }
    }

    /// The parameter vector of every point (each to be repeated `count` times),
    /// and the description a dataset's manifest records (`design`). The Latin
    /// hypercube draws from `run_seed`.
    pub fn points(
        &self,
        space: &[ParamSpec],
        run_seed: u64,
    ) -> Result<(Vec<Vec<f64>>, serde_json::Value)> {
        if self.count == 0 {
            return Err(request("the count per point must be at least 1"));
        }
        self.check_axes()?;
        let base = resolve_params(space, &self.fixed)?;
        let mut points = vec![base.clone()];
        let mut description = serde_json::json!({ "fixed": base });
        if !self.grid.is_empty() && self.latin_hypercube.is_some() {
            return Err(request("a grid and a Latin hypercube cannot be combined"));
        }
        if !self.grid.is_empty() {
            for axis in &self.grid {
                if axis.n == 0 {
                    return Err(request(format!("grid axis {}: N must be at least 1", axis)));
                }
                let i = param_index(space, &axis.name)?;
                let values = simemu_core::bins::linspace(axis.lo, axis.hi, axis.n);
                points = points
                    .iter()
                    .flat_map(|p| {
                        values.iter().map(move |&v| {
                            let mut q = p.clone();
                            q[i] = v;
                            q
                        })
                    })
                    .collect();
            }
            let written: Vec<String> = self.grid.iter().map(ToString::to_string).collect();
            description["grid"] = serde_json::json!(written);
        }
        if let Some(lhs) = &self.latin_hypercube {
            let n = lhs.points;
            if n == 0 || lhs.ranges.is_empty() {
                return Err(request(
                    "a Latin hypercube needs at least 1 point and at least one range",
                ));
            }
            let mut rng =
                simemu_core::seed::rng(simemu_core::seed::derive_seed(run_seed, "latin-hypercube"));
            points = vec![base.clone(); n];
            for range in &lhs.ranges {
                let i = param_index(space, &range.name)?;
                let mut strata: Vec<usize> = (0..n).collect();
                for k in (1..n).rev() {
                    strata.swap(k, rng.random_range(0..=k));
                }
                for (p, s) in points.iter_mut().zip(strata) {
                    let u: f64 = rng.random();
                    p[i] = range.lo + (range.hi - range.lo) * (s as f64 + u) / n as f64;
                }
            }
            let written: Vec<String> = lhs.ranges.iter().map(ToString::to_string).collect();
            description["latin_hypercube"] = serde_json::json!({"points": n, "ranges": written});
        }
        for p in &points {
            check_params(space, p)?;
        }
        description["count_per_point"] = self.count.into();
        Ok((points, description))
    }

    /// Refuses an axis named twice, a fixed value for a parameter that an axis
    /// varies (it would be ignored), and more points or samples than can be
    /// held: each before anything is computed.
    fn check_axes(&self) -> Result<()> {
        let axes: Vec<&str> = self
            .grid
            .iter()
            .map(|a| a.name.as_str())
            .chain(
                self.latin_hypercube
                    .iter()
                    .flat_map(|l| l.ranges.iter().map(|r| r.name.as_str())),
            )
            .collect();
        for (k, name) in axes.iter().enumerate() {
            if axes[..k].contains(name) {
                return Err(request(format!("the axis '{name}' is given twice")));
            }
            if self.fixed.iter().any(|(n, _)| n == name) {
                return Err(request(format!(
                    "'{name}' is both fixed and varied by an axis: give it one way"
                )));
            }
        }
        let points = match &self.latin_hypercube {
            Some(l) => Some(l.points),
            None => self
                .grid
                .iter()
                .try_fold(1usize, |n, axis| n.checked_mul(axis.n)),
        };
        match points {
            Some(n) if n <= MAX_POINTS => {}
            _ => {
                return Err(simemu_core::Error::Refused(format!(
                    "the design has {} parameter points; simemu holds at most {MAX_POINTS} in one run (split it into shards of the axes)",
                    points.map(|n| n.to_string()).unwrap_or_else(|| "more than 2^64".into())
                ))
                .into())
            }
        }
        Ok(())
    }
}

/// The most parameter points one design may have: their vectors are held in
/// memory (about 100 bytes each).
pub const MAX_POINTS: usize = 1_000_000;

/// As written on the command line: `NAME=LO:HI:N`.
impl std::fmt::Display for GridAxis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}:{}:{}", self.name, self.lo, self.hi, self.n)
    }
}

/// As written on the command line: `NAME=LO:HI`.
impl std::fmt::Display for RangeAxis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}:{}", self.name, self.lo, self.hi)
    }
}

fn param_index(space: &[ParamSpec], name: &str) -> Result<usize> {
    space.iter().position(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = space.iter().map(|p| p.name.as_str()).collect();
        request(format!(
            "unknown parameter '{name}'{} (parameters: {})",
            did_you_mean(name, &names),
            names.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Vec<ParamSpec> {
        vec![
            ParamSpec::new("a", "", 0.0, 1.0, 0.5, ""),
            ParamSpec::new("b", "", 0.0, 1.0, 0.5, ""),
        ]
    }

    /// A grid is the product of its axes, and
    /// the description writes the axes as the command line does; a Latin
    /// hypercube puts one point in each stratum of every axis.
    #[test]
    fn grids_are_products_and_hypercubes_fill_every_stratum() {
        let mut d = Design::at(vec![("b".into(), 0.25)], 2);
        d.grid = vec![GridAxis {
            name: "a".into(),
            lo: 0.0,
            hi: 1.0,
            n: 3,
        }];
        let (points, description) = d.points(&space(), 0).unwrap();
        assert_eq!(points.len(), 3);
        assert_eq!(points[1], vec![0.5, 0.25]);
        assert_eq!(description["grid"][0], "a=0:1:3");
        d.grid.clear();
        d.latin_hypercube = Some(LatinHypercube {
            points: 8,
            ranges: vec![RangeAxis {
                name: "a".into(),
                lo: 0.0,
                hi: 1.0,
            }],
        });
        let (points, _) = d.points(&space(), 3).unwrap();
        let mut strata: Vec<usize> = points.iter().map(|p| (p[0] * 8.0) as usize).collect();
        strata.sort();
        strata.dedup();
        assert_eq!(strata, (0..8).collect::<Vec<_>>());
        d.latin_hypercube.as_mut().unwrap().ranges[0].name = "c".into();
        let e = d.points(&space(), 3).unwrap_err().to_string();
        assert!(e.contains("unknown parameter 'c'"), "{e}");
    }
}
