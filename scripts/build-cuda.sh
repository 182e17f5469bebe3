#!/usr/bin/env bash
# Builds simemu with candle's CUDA backend (`--features cuda`) on a machine without
# a CUDA toolkit or a GPU driver, from PyPI's NVIDIA wheels (docs/gpu.md).
#
#   scripts/build-cuda.sh            # -> target/cuda/release/simemu
#   scripts/build-cuda.sh --strip    # also target/cuda/simemu-stripped and its .xz
#                                    # (89 MB and 26 MB: what a GPU machine is sent)
#   scripts/build-cuda.sh --tests    # also simemu-nn's GPU-against-CPU tests,
#                                    # packed as target/cuda/simemu-nn-cuda-tests.xz
#
# Environment:
#   SIMEMU_CUDA_TOOLKIT  where the wheels are installed (default target/cuda-toolkit)
#   CUDA_COMPUTE_CAP     the GPU generation candle's kernels are compiled for
#                        (default 90: H100/H200)
#
# Why each step:
# - cudarc 0.19.10 (candle 0.11's) knows CUDA up to 13.4 and reads the version from
#   `nvcc --version`; the GPUs this project is lent run a CUDA 13.0 driver, which
#   refuses PTX from a newer toolkit. Every compiler wheel is therefore pinned to
#   13.0: a mixed install emits PTX that ptxas 13.0 refuses.
# - candle links the CUDA libraries at build time (cudarc's `dynamic-linking`), but
#   the wheels ship only versioned names (libcublas.so.13), and no wheel ships the
#   driver (libcuda.so). The script adds the unversioned names and a link-time stub
#   of libcuda.so.1 that defines every driver symbol cudarc binds; at run time the
#   real driver and the libraries of the machine's CUDA (for example PyTorch's
#   nvidia wheels) are found through LD_LIBRARY_PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
toolkit=${SIMEMU_CUDA_TOOLKIT:-$root/target/cuda-toolkit}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
strip=false
tests=false
for arg in "$@"; do
    case $arg in
        --strip) strip=true ;;
        --tests) tests=true ;;
        *) echo "build-cuda.sh: unknown argument '$arg' (--strip, --tests)" >&2; exit 2 ;;
    esac
done

wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)
stamp="$toolkit/wheels.txt"
if [[ ! -f $stamp || $(cat "$stamp") != "${wheels[*]}" ]]; then
    echo "== installing ${#wheels[@]} NVIDIA wheels into $toolkit"
    rm -rf "$toolkit"
    mkdir -p "$toolkit"
    python3 -m pip install --quiet --no-deps --target "$toolkit/site" "${wheels[@]}"
    echo "${wheels[*]}" > "$stamp"
fi
cuda="$toolkit/site/nvidia/cu13"
[[ -x $cuda/bin/nvcc ]] || { echo "build-cuda.sh: no nvcc in $cuda/bin" >&2; exit 1; }

# Unversioned link names for the libraries candle links.
for lib in cublas cublasLt curand nvrtc cudart; do
    versioned=$(find "$cuda/lib" -maxdepth 1 -name "lib$lib.so.*" | sort | head -n 1)
    [[ -n $versioned ]] || { echo "build-cuda.sh: no lib$lib.so.* in $cuda/lib" >&2; exit 1; }
    ln -sf "$(basename "$versioned")" "$cuda/lib/lib$lib.so"
done

# The driver stub: every cu* function cudarc's driver bindings declare, as an empty
# symbol in a library with the driver's soname. It is only linked against, never run.
cargo_metadata=$(cd "$root" && cargo metadata --format-version 1 --features simemu-cli/cuda 2>/dev/null)
cudarc=$(python3 -c '
import json, sys, os
m = json.loads(sys.stdin.read())
p = [p for p in m["packages"] if p["name"] == "cudarc"]
print(os.path.dirname(p[0]["manifest_path"]) if p else "")' <<< "$cargo_metadata")
[[ -n $cudarc ]] || { echo "build-cuda.sh: cudarc is not in the dependency graph" >&2; exit 1; }
mkdir -p "$cuda/lib/stubs"
grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc/src/driver/sys/mod.rs" \
    | sed 's/pub unsafe fn //' | sort -u \
    | sed 's/.*/void &(void) {}/' > "$toolkit/libcuda-stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so" "$toolkit/libcuda-stub.c"

echo "== cargo build --release -p simemu-cli --features cuda (CUDA $(
    "$cuda/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), compute capability $CUDA_COMPUTE_CAP)"
export CUDA_ROOT="$cuda" CUDA_PATH="$cuda" PATH="$cuda/bin:$PATH"
cd "$root"
cargo build --release -p simemu-cli --features cuda --target-dir target/cuda
if $strip; then
    # candle's kernels are embedded as PTX text, most of the binary: xz packs it
    # to under a third, within what a device run may be sent.
    strip -o target/cuda/simemu-stripped target/cuda/release/simemu
    xz -T0 -6 -f -k target/cuda/simemu-stripped
    echo "stripped binary: target/cuda/simemu-stripped ($(du -h target/cuda/simemu-stripped | cut -f1)), packed $(du -h target/cuda/simemu-stripped.xz | cut -f1)"
fi
if $tests; then
    # The test binary cargo builds for crates/simemu-nn/tests/cuda.rs.
    binary=$(cargo test --release -p simemu-nn --features cuda --test cuda --no-run \
        --target-dir target/cuda --message-format json \
        | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])')
    [[ -n $binary ]] || { echo "build-cuda.sh: the cuda test binary was not built" >&2; exit 1; }
    strip -o target/cuda/simemu-nn-cuda-tests "$binary"
    xz -T0 -6 -f -k target/cuda/simemu-nn-cuda-tests
    echo "GPU tests: target/cuda/simemu-nn-cuda-tests ($(du -h target/cuda/simemu-nn-cuda-tests.xz | cut -f1) packed)"
fi
echo "built: target/cuda/release/simemu"
