#!/usr/bin/env python
"""lenstools twin of `simemu bench stats`: maps per second of each statistic.

    OMP_NUM_THREADS=1 python benches/reference/lenstools_bench.py [--maps 128] [--repeats 5] [--json out.json]

The same workload: 256² maps of 3.5°, the power spectrum over 40 log ℓ bins from
100 to 18,700, Minkowski functionals, peak counts and the pixel PDF over 30
linear thresholds from −2σ to 5σ. simemu draws log-normal maps, this script
Gaussian ones: the cost of these statistics does not depend on the values. One
"pass" is the statistic on every map in turn, each with a fresh ConvergenceMap
(lenstools caches gradients on the object); median of --repeats passes after a
warm-up pass, one process, one thread.
"""
import argparse, json, statistics, sys, time

import numpy as np

# lenstools 1.2 still uses the aliases numpy removed in 1.24.
for alias, builtin in (("complex", complex), ("float", float), ("int", int)):
    if not hasattr(np, alias):
        setattr(np, alias, builtin)

sys.modules.setdefault("mpi4py", None)  # lenstools tries mpi4py on import
import astropy.units as u
from lenstools import ConvergenceMap

N, ANGLE_DEG = 256, 3.5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    maps = np.random.default_rng(1).standard_normal((a.maps, N, N))
    sigma = maps.std()
    ell_edges = np.logspace(np.log10(100.0), np.log10(18700.0), 41)
    thresholds = np.linspace(-2.0 * sigma, 5.0 * sigma, 31)
    cm = lambda m: ConvergenceMap(m, angle=ANGLE_DEG * u.deg)
    cases = {
        "power-spectrum": lambda m: cm(m).powerSpectrum(ell_edges),
        "minkowski": lambda m: cm(m).minkowskiFunctionals(thresholds),
        "peaks": lambda m: cm(m).peakCount(thresholds),
        "pixel-pdf": lambda m: cm(m).pdf(thresholds),
    }
    rows = []
    for name, fn in cases.items():
        for m in maps:  # warm-up
            fn(m)
        runs = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            for m in maps:
                fn(m)
            runs.append(time.perf_counter() - t)
        med = statistics.median(runs)
        rows.append({"workload": f"stat {name}", "threads": 1, "items": a.maps,
                     "median_s": med, "items_per_s": a.maps / med, "runs_s": runs})
        print(f"stat {name:<20} {a.maps / med:10.1f} maps/s (median of {a.repeats})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
