#!/usr/bin/env bash
# bench_spice_e2e: the SLP (784 -> 10) at circuit level on MNIST test images, 64x64 1T1R tiles with wire
# parasitics, beside the behavioral backend on the same images and chip. Target: 1,000 images with 2 jobs
# in under 5 minutes on the 2-core machine.
# usage: bench_spice_e2e.sh path/to/xbarsim [images] [jobs]
set -euo pipefail
XB=$1 n=${2:-1000} jobs=${3:-2}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/xb_bench_e2e_XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
"$XB" eval -q --weights "$src/results/reference/mnist-slp-f32.npz" --backend spice --limit "$n" --jobs "$jobs" \
    -o "$out/run" >"$out/log" 2>&1 || { cat "$out/log"; exit 1; }
end=$(date +%s.%N)
start_b=$(date +%s.%N)
"$XB" eval -q --weights "$src/results/reference/mnist-slp-f32.npz" --backend behavioral --limit "$n" -o "$out/beh" >/dev/null
end_b=$(date +%s.%N)
wall=$(echo "$end - $start" | bc -l)
wall_b=$(echo "$end_b - $start_b" | bc -l)
echo "bench_spice_e2e: SLP 784-10 on $n MNIST test images, 64x64 1T1R tiles, 1 ohm wire segments, --jobs $jobs"
grep -E '^(ideal|behavioral|spice) +accuracy' "$out/log" | sed 's/^/  /'
grep -E '^(behavioral vs spice|dACC)' "$out/log" | sed 's/^/  /'
printf '  wall time (whole eval, all three backends)  %8.1f s  (target < 300 s: %s)\n' "$wall" \
    "$(echo "$wall < 300" | bc -l | sed 's/1/met/;s/0/missed/')"
printf '  circuit inputs per second                   %8.2f\n' "$(echo "$n / $wall" | bc -l)"
printf '  behavioral-only eval on the same images     %8.2f s  (ratio circuit/behavioral %.0fx)\n' "$wall_b" \
    "$(echo "$wall / $wall_b" | bc -l)"
grep -E '"(peak_worker_rss_kB|solver|row_sources|column_current_rel_err_mean|column_current_rel_err_max)"' "$out/run/run.json" | sed 's/^ */  /'
