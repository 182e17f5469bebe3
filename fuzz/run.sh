#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 600 s each) on a working
# copy of its seed corpus; a crash leaves its input under fuzz/artifacts/TARGET/
# and makes the script fail once every target has run. Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
#   bash fuzz/run.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(npy fits npz manifest)
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    cp corpus/"$t"/* "$work/$t/"
    echo "== $t: ${seconds} s"
    # No sanitizer: the readers are safe Rust; debug assertions (overflow
    # checks) stay on, so arithmetic on hostile sizes panics instead of wrapping.
    cargo +nightly fuzz run --sanitizer none "$t" "$work/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 ||
        failed=1
done
exit "$failed"
