"""Writes the planted defects of docs/validation.md from an exported candidate
set (`simemu export cand --format npy --out cand.npy`): scaled.npy (every map
× 1.01), pattern.npy (one fixed pattern, standard normal noise of seed 0 times
0.1 σ of all pixels, added to every map) and peaked.npy (every map circularly
shifted so that pixel (32, 32) holds one of its local maxima, chosen at random
with seed 1). Needs numpy and scipy.
"""
import numpy as np
from scipy.ndimage import maximum_filter

maps = np.load("cand.npy").astype(np.float64)
sigma = maps.std()
np.save("scaled.npy", (maps * 1.01).astype(np.float32))
pattern = np.random.default_rng(0).standard_normal(maps.shape[1:]) * 0.1 * sigma
np.save("pattern.npy", (maps + pattern).astype(np.float32))
rng = np.random.default_rng(1)
centre = maps.shape[1] // 2
shifted = []
for m in maps:
    maxima = np.argwhere(m == maximum_filter(m, size=3, mode="wrap"))
    i, j = maxima[rng.integers(len(maxima))]
    shifted.append(np.roll(m, (centre - i, centre - j), axis=(0, 1)))
np.save("peaked.npy", np.array(shifted, dtype=np.float32))
