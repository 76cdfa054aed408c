#!/usr/bin/env bash
# bench_mpi: circuit-level inputs per second on 1, 2 and 4 MPI ranks (Open MPI's mpirun, one ngspice worker
# per rank), beside one process with the same number of local workers, and the parallel efficiency
# E(N) = rate(N) / (N x rate(1)). The SLP (784 -> 10) on MNIST test images, 64x64 1T1R tiles, 1 ohm wires;
# every run's predictions are checked against the single process's. On a machine with fewer cores than
# ranks the ranks are oversubscribed and the efficiency shows it; give more ranks on a bigger machine.
# usage: bench_mpi.sh path/to/xbarsim [images] [ranks...]      (default: 400 images, ranks 1 2 4)
set -euo pipefail
XB=$1 n=${2:-400}
shift $(($# < 2 ? $# : 2))
ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(1 2 4)
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/xb_bench_mpi_XXXXXX)
trap 'rm -rf "$out"' EXIT
command -v mpirun >/dev/null || { echo "bench_mpi: no mpirun (apt-get install openmpi-bin)"; exit 1; }
"$XB" --version | grep -q 'MPI  *none' && { echo "bench_mpi: $XB was built without MPI"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# 40 inputs per unit: 13 row tiles x n/40 units per layer, enough to keep 4 ranks busy.
args=(eval -q --weights "$src/results/reference/mnist-slp-f32.npz" --backend spice --limit "$n" --chunk 40)

spice_seconds() { sed -n '/"spice": {/,/}/s/.*"seconds": \([0-9.e+-]*\).*/\1/p' "$1/run.json" | head -1; }
run() { # label jobs [launcher...]: one eval with JOBS workers per process; prints its circuit seconds
    local label=$1 jobs=$2
    shift 2
    "$@" "$XB" "${args[@]}" --jobs "$jobs" -o "$out/$label" >"$out/$label.log" 2>&1 ||
        { cat "$out/$label.log" >&2; exit 1; }
    if [ "$label" != ref ] && ! cmp -s "$out/$label/predictions.csv" "$out/ref/predictions.csv"; then
        echo "bench_mpi: $label: predictions differ from one process's" >&2
        exit 1
    fi
    spice_seconds "$out/$label"
}

run ref 1 >/dev/null
printf 'bench_mpi: the SLP on %d MNIST test images at circuit level; %d cores; %s\n' "$n" "$(nproc)" \
    "$("$XB" --version | sed -n 's/^  MPI *//p')"
printf '%-34s %9s %10s %11s\n' way seconds inputs/s efficiency
base=
row() { # way seconds workers
    local rate
    rate=$(echo "$n / $2" | bc -l)
    [ -n "$base" ] || base=$rate
    printf '%-34s %9.2f %10.2f %10.0f%%\n' "$1" "$2" "$rate" "$(echo "100 * $rate / ($3 * $base)" | bc -l)"
}
for r in "${ranks[@]}"; do
    row "mpirun -np $r, 1 worker per rank" "$(run "mpi$r" 1 mpirun -np "$r" --bind-to none)" "$r"
done
for r in "${ranks[@]}"; do
    row "one process, $r local workers" "$(run "local$r" "$r")" "$r"
done
echo "bench_mpi: every run's predictions equal the single process's; efficiency against the first row"
