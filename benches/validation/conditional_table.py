"""The conditional emulator's table of docs/fidelity.md from a finished run of
configs/conditional.toml: per held-out point, the per-bin KS pass fraction of
every statistic (each Minkowski functional alone), whether P(ℓ)'s mean agrees
within max(5%, 3 SE) in every bin, and the response checks of response.json.

    python3 benches/validation/conditional_table.py runs/conditional [CANDIDATE]
"""
import json
import pathlib
import sys

run = pathlib.Path(sys.argv[1])
candidate = sys.argv[2] if len(sys.argv) > 2 else "dcgan"
config = json.loads((run / "run.json").read_text())["config"]
points = config["validation"]["points"]
print("| Ω_m | σ_8 | pixel PDF | P(ℓ) | V0 | V1 | V2 | peaks | P(ℓ) means within max(5%, 3 SE) | all pass |")
print("|---|---|---|---|---|---|---|---|---|---|")
passing = 0
for k, point in enumerate(points):
    board = json.loads((run / f"report-{k}" / "leaderboard.json").read_text())
    row = next(r for r in board["rows"] if r["candidate"] == candidate)
    report = json.loads((run / f"report-{k}" / row["report"].replace("report.md", "report.json")).read_text())
    fractions = {}
    means_ok = None
    for st in report["statistics"]:
        for c in st["components"]:
            name = c["name"] if st["statistic"] == "minkowski" else st["statistic"]
            ps = c["ks_p"]
            fractions[name] = sum(p > 0.05 for p in ps) / len(ps)
            if st["statistic"] == "power-spectrum":
                bad = 0
                for d, se in zip(c["rel_diff"], c["rel_diff_se"]):
                    if d is None or se is None or abs(d) > max(0.05, 3 * se):
                        bad += 1
                means_ok = (len(ps) - bad, len(ps))
    order = ["pixel-pdf", "power-spectrum", "V0", "V1", "V2", "peaks"]
    ok = all(fractions[s] >= 0.8 for s in order) and means_ok[0] == means_ok[1]
    passing += ok
    cells = " | ".join(f"{100 * fractions[s]:.0f}%" for s in order)
    print(f"| {point['omega_m']} | {point['sigma_8']} | {cells} | {means_ok[0]}/{means_ok[1]} | {'yes' if ok else 'no'} |")
print(f"\n{passing} of {len(points)} points pass every criterion.\n")
responses = json.loads((run / "response.json").read_text())
print("| pair | changed | P(ℓ) bins agreeing | variance | V0 bins agreeing (fixed thresholds) |")
print("|---|---|---|---|---|")
for r in responses:
    if r["candidate"] != candidate:
        continue
    def find(stat, comp=None):
        for c in r["components"]:
            if c["statistic"] == stat and (comp is None or c["component"] == comp):
                return c
    ps, var, v0 = find("power-spectrum"), find("variance"), find("minkowski", "V0")
    cell = lambda c: f"{len(c['x']) - c['disagreeing']}/{len(c['x'])}" if c else "—"
    var_cell = f"{100 * var['error'][0]:+.1f}% ({'agrees' if var['disagreeing'] == 0 else 'disagrees'})" if var else "—"
    pair = f"({r['from']['omega_m']}, {r['from']['sigma_8']}) → ({r['to']['omega_m']}, {r['to']['sigma_8']})"
    print(f"| {pair} | {r['changed']} | {cell(ps)} | {var_cell} | {cell(v0)} |")
