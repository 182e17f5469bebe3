//! `compute_view` reads a caller's map where it lies: after a first call (which
//! sets up per-thread work space), computing every map statistic of a 256² map
//! allocates far less than the map itself, and gives the values `compute` gives
//! for a sample holding a copy of it. One test in this binary: the allocation
//! counter is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use simemu_core::{
    Array, ArrayView, DType, Field, FieldSpec, FieldView, Registry, Sample, StatContext,
};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting the bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn maps_are_read_in_place() {
    let n = 256;
    let map: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 0.03)
        .collect();
    let mut r = Registry::new();
    simemu_map_stats::register(&mut r).unwrap();
    let spec = FieldSpec::new("kappa", vec![n, n], DType::F32).with_attr("angle_deg", 3.5);
    let q = |p: &[f64]| Ok(p.iter().map(|&p| -0.015 + 0.03 * p).collect());
    let v = || Ok(1e-4);
    let ctx = StatContext {
        field: spec,
        quantiles: &q,
        pooled_variance: &v,
    };
    let sample = Sample::single(
        Field::new("kappa", vec![n, n], Array::F32(map.clone())).unwrap(),
        vec![],
    );
    let shape = [n, n];
    let view = FieldView {
        name: "kappa",
        shape: &shape,
        data: ArrayView::F32(&map),
    };
    for name in [
        "pixel-pdf",
        "power-spectrum",
        "bispectrum",
        "minkowski",
        "peaks",
    ] {
        let stat = (r.statistic(name).unwrap().build)(&serde_json::Value::Null, &ctx).unwrap();
        let first = stat.compute_view(view).unwrap();
        let before = ALLOCATED.load(Ordering::Relaxed);
        let again = stat.compute_view(view).unwrap();
        let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
        assert!(
            allocated < map.len() * 4 / 8,
            "{name}: {allocated} bytes allocated for a {}-byte map",
            map.len() * 4
        );
        assert_eq!(first, again);
        assert_eq!(stat.compute(&sample).unwrap(), again, "{name}");
    }
}
