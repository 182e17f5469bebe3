#!/usr/bin/env bash
# The GPU checks of docs/gpu.md, in one run on a machine with a CUDA GPU and
# PyTorch but no Rust toolchain. Build the binary here first:
#
#   scripts/build-cuda.sh --strip --tests  # -> target/cuda/simemu-stripped(.xz)
#                                          #    and simemu-nn-cuda-tests(.xz)
#
# then, on the GPU machine, from the repository root with either file beside it
# (the packed one is unpacked first):
#
#   OUT=results scripts/device-check.sh
#
# Everything it measures goes to $OUT (default ./device-check): the GPU and CPU,
# each check's log and JSON, and summary.md. A check that fails is recorded and
# the next one still runs; the exit status is the number of failed checks.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SIMEMU_BIN:-$root/target/cuda/simemu-stripped}
if [[ ! -x $bin && -f $bin.xz ]]; then
    xz -d -k -c "$bin.xz" > "$bin" && chmod +x "$bin"
fi
out=$(mkdir -p "${OUT:-$root/device-check}" && cd "${OUT:-$root/device-check}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rounds=${ROUNDS:-3}
summary="$out/summary.md"
failed=0

# The CUDA 13 libraries simemu links (cuBLAS, cuRAND, NVRTC, the runtime) from
# the NVIDIA wheels PyTorch brought; the driver's libcuda.so.1 is the system's.
libs=$(python3 - <<'EOF'
import os, site
dirs = set()
for base in site.getsitepackages() + [site.getusersitepackages()]:
    top = os.path.join(base, "nvidia")
    for here, _, files in os.walk(top):
        if any(f.startswith(("libcublas.so", "libcurand.so", "libnvrtc.so", "libcudart.so")) for f in files):
            dirs.add(here)
print(":".join(sorted(dirs)))
EOF
)
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

check() { # NAME COMMAND...: runs it, logs it, records pass or fail
    local name=$1
    shift
    local t0=$SECONDS
    if "$@" > "$out/$name.log" 2>&1; then
        echo "| $name | ok | $((SECONDS - t0)) s |" >> "$summary"
    else
        echo "| $name | FAILED (exit $?) | $((SECONDS - t0)) s |" >> "$summary"
        failed=$((failed + 1))
    fi
}

{
    echo "# Device check"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    lscpu | grep -E '^(Model name|CPU\(s\)|Flags)' | sed 's/^Flags:.*\(avx512f\).*/Flags: \1 …/'
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo '```'
    echo
    echo "| check | result | wall |"
    echo "|---|---|---|"
} > "$summary"

# 0. simemu-nn's building blocks on the GPU against the CPU kernels
#    (crates/simemu-nn/tests/cuda.rs, from `scripts/build-cuda.sh --tests`).
nn_tests=$root/target/cuda/simemu-nn-cuda-tests
if [[ ! -x $nn_tests && -f $nn_tests.xz ]]; then
    xz -d -k -c "$nn_tests.xz" > "$nn_tests" && chmod +x "$nn_tests"
fi
check nn-kernels-gpu-vs-cpu "$nn_tests" --test-threads 1

# 1. Training and generation on the GPU: 64², the fidelity preset, 200 steps.
check simulate-train "$bin" --seed 1 simulate convergence --count 2000 --out "$work/train"
check train-gpu "$bin" --device cuda --seed 2 train dcgan --data "$work/train" \
    --out "$work/run" --steps 200 --option checkpoint_every=100
check generate-trained-gpu "$bin" --device cuda --seed 3 generate \
    --checkpoint "$work/run" --count 64 --out "$work/generated"
# Deterministic on the device: the same seed twice gives the same bytes.
check generate-again-gpu "$bin" --device cuda --seed 3 generate \
    --checkpoint "$work/run" --count 64 --out "$work/generated-again"
check same-bytes-gpu cmp "$work/generated/kappa-00000.npy" "$work/generated-again/kappa-00000.npy"

# 2. The shipped convergence-64 generating on the GPU, judged against
#    CPU-simulated maps by the main job, beside the same job on the CPU.
check run-gpu "$bin" --device cuda run --out "$out/run-gpu"
check run-cpu "$bin" run --out "$out/run-cpu"

# 3. Benchmarks against the PyTorch twin on the same GPU, alternating rounds.
for round in $(seq 1 "$rounds"); do
    for width in 16 64; do
        check "bench-train-w$width-simemu-$round" "$bin" --device cuda bench train-step \
            --width "$width" --repeats 10 --json "$out/train-w$width-simemu-$round.json"
        check "bench-train-w$width-torch-$round" python3 "$root/benches/reference/torch_bench.py" \
            train --width "$width" --size 64 --repeats 10 --device cuda \
            --json "$out/train-w$width-torch-$round.json"
    done
    check "bench-generate-cosmogan-simemu-$round" "$bin" --device cuda bench generate \
        --arch cosmogan --repeats 10 --json "$out/generate-cosmogan-simemu-$round.json"
    check "bench-generate-cosmogan-torch-$round" python3 "$root/benches/reference/torch_bench.py" \
        gen --width 64 --size 256 --repeats 10 --device cuda \
        --json "$out/generate-cosmogan-torch-$round.json"
done
check bench-layers-w64-simemu "$bin" --device cuda bench layers --width 64 \
    --json "$out/layers-w64-simemu.json"
check bench-layers-w64-torch python3 "$root/benches/reference/torch_bench.py" \
    layers --width 64 --size 64 --device cuda --json "$out/layers-w64-torch.json"

# 4. The seed's 256² setup: time per step of configs/cosmogan-256.toml's generator.
check simulate-256 "$bin" --seed 4 simulate convergence --option size=256 --count 256 \
    --out "$work/train-256"
python3 - "$root/configs/cosmogan-256.toml" > "$work/cosmogan-256.json" <<'EOF'
import json, sys, tomllib  # Python 3.11 or later
print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))["generator"].get("options", {})))
EOF
check train-cosmogan-256-gpu "$bin" --device cuda --seed 5 train dcgan --data "$work/train-256" \
    --out "$work/run-256" --config "$work/cosmogan-256.json" --steps 30 \
    --option checkpoint_every=30 --option holdout=0
cp "$work/run-256/generator.json" "$out/cosmogan-256-run.json" 2>/dev/null

python3 - "$out" >> "$summary" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
def medians(pattern):
    by = {}
    for f in glob.glob(os.path.join(out, pattern)):
        for r in json.load(open(f))["results"]:
            by.setdefault(r["workload"], []).append(r["median_s"])
    return {k: statistics.median(v) for k, v in by.items()}
print("\n| workload | simemu s | PyTorch s | ratio |\n|---|---|---|---|")
for kind in ["train-w16", "train-w64", "generate-cosmogan", "layers-w64"]:
    s, t = medians(f"{kind}-simemu*.json"), medians(f"{kind}-torch*.json")
    for w in sorted(s.keys() & t.keys()):
        print(f"| {w} | {s[w]:.5f} | {t[w]:.5f} | {s[w] / t[w]:.2f} |")
run = os.path.join(out, "cosmogan-256-run.json")
if os.path.exists(run):
    train = json.load(open(run))["train"]
    # The training's own seconds (data loading and checkpoints included): an
    # upper bound on a step's time.
    per = train["seconds"] / train["steps"]
    print(f"\ncosmogan-256 on the GPU: {per:.3f} s a step over {train['steps']} steps; "
          f"50,000 steps ≈ {per * 50000 / 3600:.1f} h")
EOF
echo "$failed check(s) failed; summary: $summary"
exit "$failed"
