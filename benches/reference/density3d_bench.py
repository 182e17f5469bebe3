#!/usr/bin/env python
"""Pylians/numpy twin of `simemu bench simulate-3d` and `simemu bench stats-3d`.

    OMP_NUM_THREADS=1 python benches/reference/density3d_bench.py stats [--size 128] [--boxes 4]
    OMP_NUM_THREADS=1 python benches/reference/density3d_bench.py sim [--size 64] [--boxes 8]
    (both: [--repeats 5] [--json out.json])

`stats`: boxes per second of each 3D statistic on log-normal float32 boxes of
256 Mpc/h — the power spectrum with Pylians' `Pk_library.Pk` (threads=1, all
k bins, no mass-assignment window); the voxel PDF with `numpy.histogram`; peaks
above their 26 periodic neighbours; the Minkowski functionals by the estimator
of simemu's `minkowski-3d` (spectral gradient and Hessian, ten inverse
transforms) in numpy — the last three over 30 thresholds from −2σ to 5σ.
`sim`: boxes per second of a 2LPT box in numpy (the same transforms as
simemu's `2lpt`: six second derivatives of the potential, the second-order
source, three displacements) painted with Pylians' `MAS_library.MA` (CIC).
The field values do not change the cost. One "pass" is the workload on every
box in turn; median of --repeats passes after a warm-up pass, one thread.
"""
import argparse, json, statistics, time

import numpy as np

SIDE = 256.0  # Mpc/h


def wavevectors(n):
    kf = 2 * np.pi / SIDE
    full = np.fft.fftfreq(n, 1.0 / n) * kf
    half = np.fft.rfftfreq(n, 1.0 / n) * kf
    return np.meshgrid(full, full, half, indexing="ij")


def peaks(delta, edges):
    is_peak = np.ones(delta.shape, dtype=bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                if (dx, dy, dz) != (0, 0, 0):
                    is_peak &= delta > np.roll(delta, (dx, dy, dz), axis=(0, 1, 2))
    counts, _ = np.histogram(delta[is_peak], edges)
    return counts / np.diff(edges)


def minkowski(delta, edges, k):
    n = delta.shape[0]
    u_k = np.fft.rfftn(delta.astype(np.float64))
    nyquist = np.zeros(u_k.shape, dtype=bool)
    for axis in k:
        nyquist |= np.isclose(np.abs(axis), np.pi * n / SIDE)
    u_k[nyquist] = 0
    inv = lambda f: np.fft.irfftn(f, s=delta.shape, axes=(0, 1, 2))
    u = inv(u_k)
    g = [inv(1j * ki * u_k) for ki in k]
    hess = {(a, b): inv(-k[a] * k[b] * u_k) for a in range(3) for b in range(a, 3)}
    hm = lambda a, b: hess[(min(a, b), max(a, b))]
    g2 = g[0] ** 2 + g[1] ** 2 + g[2] ** 2
    norm = np.sqrt(g2)
    quad = sum(g[a] * hm(a, b) * g[b] for a in range(3) for b in range(3))
    trace = hm(0, 0) + hm(1, 1) + hm(2, 2)
    cof = lambda a, b: (hm((a + 1) % 3, (b + 1) % 3) * hm((a + 2) % 3, (b + 2) % 3)
                        - hm((a + 1) % 3, (b + 2) % 3) * hm((a + 2) % 3, (b + 1) % 3))
    adj = sum(g[a] * cof(a, b) * g[b] for a in range(3) for b in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        integrands = [norm / 6, (quad - g2 * trace) / (6 * np.pi * g2),
                      adj / (4 * np.pi * g2 * norm)]
    width = np.diff(edges)
    mids = 0.5 * (edges[1:] + edges[:-1])
    v0 = [(u >= m).mean() for m in mids]
    rest = [np.histogram(u, edges, weights=np.nan_to_num(f))[0] / (u.size * width)
            for f in integrands]
    return v0, rest


def lognormal_boxes(n, count, rng):
    g = rng.standard_normal((count, n, n, n)) * 0.5
    return (np.exp(g - 0.125) - 1).astype(np.float32)


def twolpt_box(n, rng, mas):
    kx, ky, kz = wavevectors(n)
    k2 = kx ** 2 + ky ** 2 + kz ** 2
    k2[0, 0, 0] = 1.0
    amplitude = np.sqrt(2e4 * (k2 / 0.01) ** -1.2 * n ** 3 / SIDE ** 3)
    delta_k = np.fft.rfftn(rng.standard_normal((n, n, n))) * amplitude
    delta_k[0, 0, 0] = 0
    k = (kx, ky, kz)
    inv = lambda f: np.fft.irfftn(f, s=(n, n, n), axes=(0, 1, 2))
    phi = {(a, b): inv(k[a] * k[b] / k2 * delta_k) for a in range(3) for b in range(a, 3)}
    source = (phi[0, 0] * phi[1, 1] + phi[0, 0] * phi[2, 2] + phi[1, 1] * phi[2, 2]
              - phi[0, 1] ** 2 - phi[0, 2] ** 2 - phi[1, 2] ** 2)
    total = delta_k - 3.0 / 7.0 * np.fft.rfftn(source)
    cell = SIDE / n
    grid = (np.indices((n, n, n)).reshape(3, -1).T * cell)
    psi = np.stack([inv(1j * ki / k2 * total).ravel() for ki in k], axis=1)
    pos = np.mod(grid + psi, SIDE).astype(np.float32)
    density = np.zeros((n, n, n), dtype=np.float32)
    mas.MA(pos, density, SIDE, "CIC", verbose=False)
    return density / density.mean() - 1


def timed(name, items, repeats, run):
    run()  # warm-up
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        runs.append(time.perf_counter() - t)
    med = statistics.median(runs)
    print(f"{name:<36} {items / med:10.2f} boxes/s (median of {repeats})")
    return {"workload": name, "threads": 1, "items": items, "median_s": med,
            "items_per_s": items / med, "runs_s": runs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["stats", "sim"])
    ap.add_argument("--size", type=int)
    ap.add_argument("--boxes", type=int)
    ap.add_argument("--model", default="2lpt", choices=["2lpt"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    rows = []
    if a.what == "stats":
        import Pk_library as PKL
        n, count = a.size or 128, a.boxes or 4
        boxes = lognormal_boxes(n, count, rng)
        sigma = boxes.std()
        edges = np.linspace(-2 * sigma, 5 * sigma, 31)
        k = wavevectors(n)
        cases = {
            "power-spectrum-3d": lambda d: PKL.Pk(d, SIDE, 0, "None", 1, False),
            "density-pdf": lambda d: np.histogram(d, edges, density=True),
            "peaks-3d": lambda d: peaks(d, edges),
            "minkowski-3d": lambda d: minkowski(d, edges, k),
        }
        for name, fn in cases.items():
            rows.append(timed(f"stat {name}", count, a.repeats,
                              lambda: [fn(d) for d in boxes]))
    else:
        import MAS_library as MASL
        n, count = a.size or 64, a.boxes or 8
        rows.append(timed(f"simulate density3d {a.model} {n}³", count, a.repeats,
                          lambda: [twolpt_box(n, rng, MASL) for _ in range(count)]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
