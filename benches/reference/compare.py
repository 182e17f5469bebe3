#!/usr/bin/env python
"""Side-by-side table of two benchmark JSON files (`simemu bench ... --json A`,
`torch_bench.py ... --json B`): the median seconds of every workload both ran,
and their ratio A / B.

    python benches/reference/compare.py simemu.json torch.json
"""
import json, sys


def medians(path):
    return {r["workload"]: r["median_s"] for r in json.load(open(path))["results"]}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = medians(sys.argv[1]), medians(sys.argv[2])
    common = [w for w in a if w in b]
    if not common:
        sys.exit("the two files share no workload name")
    print(f"| workload | {sys.argv[1]} s | {sys.argv[2]} s | ratio |")
    print("|---|---|---|---|")
    for w in common:
        print(f"| {w} | {a[w]:.4f} | {b[w]:.4f} | {a[w] / b[w]:.2f} |")


if __name__ == "__main__":
    main()
