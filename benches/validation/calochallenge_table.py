"""CaloChallenge's metrics on a finished run of configs/calorimeter.toml, per
validation energy, for a candidate (default shower-gan) and the simulator
baseline: the KS pass fraction of each hlf-* feature statistic (weakest
component) and the largest separation power over its histograms, FPD and KPD
on the high-level features, and the calibrated classifier's AUC on the
low-level and the high-level inputs, each beside the reference-vs-reference
floor. The table of docs/calorimeter.md, "CaloChallenge 2022".

    python3 benches/validation/calochallenge_table.py runs/calorimeter [CANDIDATE] [SIMEMU]

SIMEMU is the binary (default target/release/simemu); the reports go to
RUN/calochallenge/.
"""
import json
import pathlib
import subprocess
import sys

run = pathlib.Path(sys.argv[1])
candidate = sys.argv[2] if len(sys.argv) > 2 else "shower-gan"
simemu = sys.argv[3] if len(sys.argv) > 3 else "target/release/simemu"
config = json.loads((run / "run.json").read_text())["config"]
points = config["validation"]["points"]
features = ["hlf-response", "hlf-layer-energy", "hlf-centroid", "hlf-width", "hlf-radial", "hlf-sparsity"]
groups = {
    "hist": features + ["fpd", "kpd"],
    "cls-low": ["hlf-classifier-low", "c2st-stats"],
    "cls-high": ["hlf-classifier-high", "c2st-stats"],
}


def validate(k, who, group):
    out = run / "calochallenge" / f"{group}-{k}-{who}"
    subprocess.run(
        [simemu, "-q", "validate", "--reference", str(run / "data" / f"validation-{k}"),
         "--candidate", str(run / f"generated-{k}" / who), "--field", "layer_1",
         "--stats", ",".join(groups[group]), "--out", str(out), "--force"],
        check=True, stdout=subprocess.DEVNULL,
    )
    return json.loads((out / "report.json").read_text())


def vector(report, test):
    return next(t for t in report["vector_tests"] if t["test"] == test)


print("| E (GeV) | set | " + " | ".join(f[4:] for f in features)
      + " | max sep. power | FPD (floor) | KPD (floor) | AUC low (floor) | AUC high (floor) |")
print("|---|---|" + "---|" * (len(features) + 5))
for k, point in enumerate(points):
    for who in [candidate, "simulator"]:
        hist = validate(k, who, "hist")
        cells = []
        worst_sep = 0.0
        for st in hist["statistics"]:
            weakest = min(sum(p > 0.05 for p in c["ks_p"]) / len(c["ks_p"]) for c in st["components"])
            cells.append(f"{100 * weakest:.0f}%")
            for c in st["components"]:
                worst_sep = max([worst_sep] + [s for s in c.get("separation_power", []) if s is not None])
        fpd, kpd = vector(hist, "fpd"), vector(hist, "kpd")
        low = vector(validate(k, who, "cls-low"), "c2st-stats")
        high = vector(validate(k, who, "cls-high"), "c2st-stats")
        print(f"| {point['energy']} | {who} | " + " | ".join(cells)
              + f" | {worst_sep:.3f} | {1e3 * fpd['value']:.2f} ({1e3 * fpd['floor']:.2f})"
              + f" | {1e3 * kpd['value']:.3f} ({1e3 * kpd['floor']:.3f})"
              + f" | {low['value']:.3f} ({low['floor']:.3f}) | {high['value']:.3f} ({high['floor']:.3f}) |")
print("\nFPD and KPD ×10³, as the challenge reports them; floors: the reference's even vs odd showers.")
