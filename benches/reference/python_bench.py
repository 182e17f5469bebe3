"""The `simemu bench stats` workload through the Python package.

128 float32 maps of 256² (3.5°), 40 log ℓ bins from 100 to 18,700 and 30
thresholds from −2σ to 5σ of the pooled pixels, one thread: maps per second
of each statistic, the median of --repeats timed calls after one warm-up.
Run it beside `simemu bench stats --threads 1 --repeats 21`, alternating.

    python benches/reference/python_bench.py --repeats 21 [--json out.json]
"""

import argparse
import json
import statistics
import time

import numpy as np

import simemu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--maps", type=int, default=128)
    parser.add_argument("--json")
    args = parser.parse_args()
    simemu.set_threads(1)
    maps = simemu.simulate("convergence", args.maps, options={"size": 256}, seed=0)
    sigma = float(np.std(maps.astype(np.float64)))
    thresholds = f"lin:{-2 * sigma}:{5 * sigma}:30"
    workloads = [
        ("power-spectrum", {"ell_edges": "log:100:18700:40", "angle_deg": 3.5}),
        ("minkowski", {"thresholds": thresholds}),
        ("peaks", {"thresholds": thresholds}),
        ("pixel-pdf", {"thresholds": thresholds}),
    ]
    rows = []
    for name, options in workloads:
        simemu.statistic(name, maps, **options)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            simemu.statistic(name, maps, **options)
            times.append(time.perf_counter() - t)
        median = statistics.median(times)
        rows.append({"workload": f"stat {name}", "threads": 1, "median_s": median, "per_second": args.maps / median})
        print(f"stat {name:<16} 1 thread  {args.maps / median:10.1f} maps/s  (median {median * 1e3:.2f} ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
