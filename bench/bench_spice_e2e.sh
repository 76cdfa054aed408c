#!/usr/bin/env bash
# bench_spice_e2e: the SLP (784 -> 10) at circuit level on MNIST test images, 64x64 1T1R tiles with wire
# parasitics, beside the behavioral backend on the same images and chip, on the linked libngspice (KLU from
# 43 on) and on Debian 12's libngspice 39 (Sparse 1.3 only) in the same run, as a ratio. Target: 1,000
# images with 2 jobs in under 5 minutes on the 2-core machine.
# usage: bench_spice_e2e.sh path/to/xbarsim [images] [jobs]
# The 39 library is run by the same binary through LD_LIBRARY_PATH (the interface is the same). It is looked
# for in $XB_NGSPICE39_DIR (a folder holding libngspice.so.0), else unpacked once into
# ${XDG_CACHE_HOME:-~/.cache}/xbarsim/libngspice0-39 with `apt-get download libngspice0=39.3+ds-1` and
# `dpkg -x` (2 MB); without it the bench reports the linked library alone and says why.
set -euo pipefail
XB=$1 n=${2:-1000} jobs=${3:-2}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/xb_bench_e2e_XXXXXX)
trap 'rm -rf "$out"' EXIT

lib39() { # prints the folder holding libngspice.so.0 of version 39, or nothing
    local d=${XB_NGSPICE39_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xbarsim/libngspice0-39}
    if [ ! -e "$d/libngspice.so.0" ] && [ -z "${XB_NGSPICE39_DIR:-}" ] && command -v apt-get >/dev/null; then
        mkdir -p "$d" "$out/deb"
        (cd "$out/deb" && apt-get download libngspice0=39.3+ds-1 >/dev/null 2>&1 &&
            dpkg -x libngspice0_39.3+ds-1_*.deb x && cp x/usr/lib/*/libngspice.so.0* "$d/") || true
    fi
    [ -e "$d/libngspice.so.0" ] && echo "$d"
}

run_spice() { # label [LD_LIBRARY_PATH]: one eval, its wall time in $out/$label.wall
    local label=$1 ldp=${2:-} start end
    start=$(date +%s.%N)
    env ${ldp:+LD_LIBRARY_PATH="$ldp"} "$XB" eval -q --weights "$src/results/reference/mnist-slp-f32.npz" \
        --backend spice --limit "$n" --jobs "$jobs" -o "$out/$label" >"$out/$label.log" 2>&1 ||
        { cat "$out/$label.log"; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l >"$out/$label.wall"
}

run_spice linked
d39=$(lib39 || true)
[ -n "$d39" ] && run_spice lib39 "$d39"
start_b=$(date +%s.%N)
"$XB" eval -q --weights "$src/results/reference/mnist-slp-f32.npz" --backend behavioral --limit "$n" -o "$out/beh" >/dev/null
end_b=$(date +%s.%N)
wall_b=$(echo "$end_b - $start_b" | bc -l)
echo "bench_spice_e2e: SLP 784-10 on $n MNIST test images, 64x64 1T1R tiles, 1 ohm wire segments, --jobs $jobs"
for label in linked lib39; do
    [ -e "$out/$label.wall" ] || continue
    wall=$(cat "$out/$label.wall")
    lib=$(grep -o '"ngspice_version": [0-9]*' "$out/$label/run.json" | grep -o '[0-9]*$')
    solver=$(grep -o '"solver": "[^"]*"' "$out/$label/run.json" | head -1 | cut -d'"' -f4)
    echo "libngspice $lib, $solver (as its workers reported):"
    grep -E '^(ideal|behavioral|spice) +accuracy' "$out/$label.log" | sed 's/^/  /'
    grep -E '^(behavioral vs spice|dACC)' "$out/$label.log" | sed 's/^/  /'
    printf '  wall time (whole eval, all three backends)  %8.1f s  (target < 300 s: %s)\n' "$wall" \
        "$(echo "$wall < 300" | bc -l | sed 's/1/met/;s/0/missed/')"
    printf '  circuit inputs per second                   %8.2f\n' "$(echo "$n / $wall" | bc -l)"
    printf '  behavioral-only eval on the same images     %8.2f s  (ratio circuit/behavioral %.0fx)\n' "$wall_b" \
        "$(echo "$wall / $wall_b" | bc -l)"
    grep -E '"(peak_worker_rss_kB|row_sources|column_current_rel_err_mean|column_current_rel_err_max)"' \
        "$out/$label/run.json" | sed 's/^ */  /'
done
if [ -e "$out/lib39.wall" ]; then
    col=$(head -1 "$out/linked/predictions.csv" | tr , '\n' | grep -n '^pred_spice$' | cut -d: -f1)
    same=$(paste -d, <(cut -d, -f"$col" "$out/linked/predictions.csv") <(cut -d, -f"$col" "$out/lib39/predictions.csv") |
        awk -F, 'NR > 1 { n++; s += $1 == $2 } END { printf "%d of %d", s, n }')
    printf '  linked / libngspice 39 wall time: %.3f (%.1fx faster); spice predictions identical: %s\n' \
        "$(echo "$(cat "$out/linked.wall") / $(cat "$out/lib39.wall")" | bc -l)" \
        "$(echo "$(cat "$out/lib39.wall") / $(cat "$out/linked.wall")" | bc -l)" "$same"
else
    echo "  libngspice 39 not found (XB_NGSPICE39_DIR, or apt-get download libngspice0=39.3+ds-1): no Sparse 1.3 run"
fi
