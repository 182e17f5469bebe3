//! FPD and KPD against jetnet 0.2.5 (fixtures from tests/fixtures/make_jetnet.py):
//! jetnet's own sub-sample indices are replayed, so every step — the
//! normalisation, the batch sizes, the Fréchet distances, the constrained line
//! fit, the MMD², the median and percentile range — must agree.

use std::collections::VecDeque;

use simemu_validate::distance::{self, FpdOptions, IndexDraw};

fn fixture() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jetnet-distances.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// jetnet's draws, in the order it made them; checks the sizes asked for.
struct Replay(VecDeque<Vec<usize>>);

impl IndexDraw for Replay {
    fn draw(&mut self, n: usize, size: usize) -> Vec<usize> {
        let next = self.0.pop_front().expect("as many draws as jetnet made");
        assert_eq!(next.len(), size, "jetnet drew {} indices", next.len());
        assert!(next.iter().all(|&i| i < n));
        next
    }
}

fn replay(v: &serde_json::Value) -> Replay {
    Replay(serde_json::from_value(v.clone()).unwrap())
}

/// Relative agreement to 1e-6 (measured: to rounding, 1e-15 … 1e-12).
fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-6 * want.abs(),
        "{what}: {got:e} vs jetnet {want:e}"
    );
}

#[test]
fn fpd_and_kpd_equal_jetnet() {
    let f = fixture();
    let (real, gen) = (rows(&f["real"]), rows(&f["gen"]));
    let (x, y) = distance::normalise(&real, &gen);
    close(
        distance::frechet_distance(&x, &y),
        f["frechet_full"].as_f64().unwrap(),
        "Fréchet distance of the whole sets",
    );
    close(
        distance::mmd_poly_unbiased(&x, &y),
        f["mmd_full"].as_f64().unwrap(),
        "MMD² of the whole sets",
    );
    let o = &f["fpd"];
    let options = FpdOptions {
        min_samples: o["min_samples"].as_u64().unwrap() as usize,
        max_samples: o["max_samples"].as_u64().unwrap() as usize,
        batches: o["num_batches"].as_u64().unwrap() as usize,
        points: o["num_points"].as_u64().unwrap() as usize,
    };
    let mut draws = replay(&o["draws"]);
    let fpd = distance::fpd(&real, &gen, &options, &mut draws);
    assert!(draws.0.is_empty(), "every jetnet draw used");
    // The exact least-squares line through jetnet's batch means…
    close(fpd.value, o["line_intercept"].as_f64().unwrap(), "FPD");
    close(fpd.error, o["line_error"].as_f64().unwrap(), "FPD error");
    // …which jetnet's iterative fit reaches to its tolerance, 1e-8 of the
    // parameter vector (here 1.5e-5 of the small intercept).
    let loose = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 1e-4 * want.abs(),
            "{what}: {got:e} vs jetnet {want:e}"
        );
    };
    loose(fpd.value, o["value"].as_f64().unwrap(), "FPD");
    loose(fpd.error, o["error"].as_f64().unwrap(), "FPD error");
    let o = &f["kpd"];
    let mut draws = replay(&o["draws"]);
    let kpd = distance::kpd(
        &real,
        &gen,
        o["num_batches"].as_u64().unwrap() as usize,
        o["batch_size"].as_u64().unwrap() as usize,
        &mut draws,
    );
    assert!(draws.0.is_empty(), "every jetnet draw used");
    close(kpd.value, o["value"].as_f64().unwrap(), "KPD");
    close(kpd.error, o["error"].as_f64().unwrap(), "KPD error");
}

/// Two sets drawn from one distribution sit at a floor that is not zero —
/// the distance between two finite sets, which sub-sampling cannot remove —
/// and a shift of 0.3 standard deviations in one feature of four is far above
/// it, by many errors.
#[test]
fn distances_see_a_small_shift() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    let mut set = |shift: f64| -> Vec<Vec<f64>> {
        (0..4000)
            .map(|_| {
                (0..4)
                    .map(|f| {
                        let v: f64 = StandardNormal.sample(&mut rng);
                        v + if f == 0 { shift } else { 0.0 }
                    })
                    .collect()
            })
            .collect()
    };
    let (a, b, shifted) = (set(0.0), set(0.0), set(0.3));
    let options = FpdOptions {
        min_samples: 1000,
        max_samples: 4000,
        batches: 10,
        points: 5,
    };
    let draw = || distance::SeededDraw::new(11);
    let floor = distance::fpd(&a, &b, &options, &mut draw());
    let moved = distance::fpd(&a, &shifted, &options, &mut draw());
    assert!(
        moved.value > 5.0 * floor.value && moved.value - floor.value > 10.0 * moved.error,
        "{floor:?} {moved:?}"
    );
    let floor = distance::kpd(&a, &b, 10, 2000, &mut draw());
    let moved = distance::kpd(&a, &shifted, 10, 2000, &mut draw());
    assert!(floor.value.abs() <= 3.0 * floor.error, "{floor:?}");
    assert!(moved.value > 5.0 * moved.error, "{floor:?} {moved:?}");
}
