#!/usr/bin/env bash
# test_mpi: the MPI executor under Open MPI's mpirun on this machine (ranks oversubscribed): the same bytes
# as one process, a worker lost on a serving rank, a rank killed mid-run (the job ends, nothing is
# half-written, `run` resumes to the uninterrupted results), and a build's refusal to run without MPI.
XB=${1:?usage: test_mpi.sh path/to/xbarsim}
MPIRUN=${2:-mpirun}
. "$(dirname "$0")/lib.sh"

# Root in containers and CI; more ranks than cores; no kernel cross-memory attach in containers.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_btl=self,vader
# In the sanitizer build, LeakSanitizer's reports under MPI are Open MPI's own (its components' buffers,
# freed by no one at MPI_Finalize, in modules already unloaded, so no suppression can name them); memory
# errors and undefined behaviour are still caught, and every leak check outside mpirun stays on.
mpi() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$MPIRUN" -np "$@"; }

"$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 30 --batch 4 --lr 0.1 --seed 3 -o "$tmp/w.npz" >/dev/null
# 30 test images in chunks of 4 on 8x8 tiles: 3 row tiles x 1 column tile x 8 chunks in layer 1.
ev=(eval -q -w "$tmp/w.npz" --dataset "$tmp/data" -B spice --tile 8x8 --chunk 4)

# A build without MPI refuses to run as several ranks (each would run the whole job) and runs as one.
if "$XB" --version | grep -q 'MPI  *none'; then
    expect 2 'this build has no MPI, so each would run the whole job' -- mpi 2 "$XB" "${ev[@]}" -o "$tmp/no"
    check "nothing written" -- test ! -e "$tmp/no"
    expect 0 'spice +accuracy' -- mpi 1 "$XB" "${ev[@]}" -o "$tmp/one"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi
expect 0 'spice +accuracy' -- "$XB" "${ev[@]}" --jobs 2 -o "$tmp/one"
expect 0 'circuit solves on 3 MPI ranks x 1 workers' -- mpi 3 "$XB" "${ev[@]}" --jobs 1 -o "$tmp/three"
for f in predictions.csv summary.csv tile_errors.csv ir_drop.csv confusion.csv; do
    check "eval on 3 ranks: $f is the single process's, byte for byte" -- cmp -s "$tmp/one/$f" "$tmp/three/$f"
done
check "run.json records 3 ranks" -- grep -q '"mpi_ranks": 3' "$tmp/three/run.json"
check "rank 1 and 2 logs beside rank 0's" -- test -s "$tmp/three/logs/ngspice-rank-2-worker-0.log"
check "only rank 0 writes results (no stray files)" -- \
    test "$(ls "$tmp/three" | tr '\n' ' ')" = "$(ls "$tmp/one" | tr '\n' ' ')"

# A worker lost on a serving rank: unit 1 goes to slot 1, i.e. rank 1. Replaced there, same results.
expect 0 'spice +accuracy' -- env XBARSIM_FAULT_UNIT=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$MPIRUN" -np 2 "$XB" "${ev[@]}" --jobs 1 -o "$tmp/lost"
check "a lost worker on rank 1 was counted" -- grep -q '"workers_lost": [1-9]' "$tmp/lost/run.json"
check "and its unit solved again: same predictions" -- cmp -s "$tmp/one/predictions.csv" "$tmp/lost/predictions.csv"

# --energy on 2 ranks: rank 0 measures each tile in a fresh local worker of its own (a one-off solve, never
# sent to a rank) on the same row voltages (layer 2's come from layer 1's currents, the same bytes on any
# number of ranks), so energy.csv is the single process's byte for byte, not merely close.
expect 0 '^energy per inference: ' -- "$XB" "${ev[@]}" --jobs 2 --energy --energy-inputs 3 -o "$tmp/e1"
expect 0 '^energy per inference: ' -- mpi 2 "$XB" "${ev[@]}" --jobs 1 --energy --energy-inputs 3 -o "$tmp/e2"
check "energy on 2 ranks: energy.csv has both layers' tiles" -- \
    test "$(cut -d, -f1 "$tmp/e2/energy.csv" | tail -n +2 | sort -u | tr '\n' ' ')" = "1 2 "
for f in energy.csv energy-plot.csv predictions.csv; do
    check "energy on 2 ranks: $f is the single process's, byte for byte" -- cmp -s "$tmp/e1/$f" "$tmp/e2/$f"
done
check "energy on 2 ranks: run.json's energy per inference is the single process's" -- test \
    "$(grep '"e_per_inference_J"' "$tmp/e1/run.json")" = "$(grep '"e_per_inference_J"' "$tmp/e2/run.json")"

# A testbench on 3 ranks: points.csv and summary.csv equal the single-process run's.
cat >"$tmp/tb.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="mpi" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <chip tile="8x8" program="igvva"/>
  <levels id="q" spec="device"/>
  <spice jobs="1" chunk="2"/>
  <backends use="behavioral spice"/>
  <sweep>
    <axis param="spice.r-row" values="0 1 2 3 4 5"/>
  </sweep>
</testbench>
XML
expect 0 'mpi: 6 points \(6 computed' -- "$XB" run -q "$tmp/tb.xml" -o "$tmp/r1"
expect 0 'mpi: 6 points \(6 computed' -- mpi 3 "$XB" run -q "$tmp/tb.xml" -o "$tmp/r3"
for f in summary.csv predictions.csv points.csv; do
    check "run on 3 ranks: $f is the single process's" -- same_numbers "$tmp/r1/$f" "$tmp/r3/$f"
done

# A rank killed mid-run: the launcher ends the job, rank 0 leaves no half-written file, and the run
# resumes (on any number of ranks) to the uninterrupted results.
rank_pid() { # rank: the PID of that rank's xbarsim in this run (not one of its workers, forked from it)
    local p parent
    for p in $(pgrep -f -- "run -q $tmp/tb.xml -o $tmp/k"); do
        parent=$(ps -o ppid= -p "$p" | tr -d ' ')
        [ -n "$parent" ] && [ "$(ps -o comm= -p "$parent")" != xbarsim ] &&
            tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return 0; }
    done
    return 1
}
mpi 3 "$XB" run -q "$tmp/tb.xml" -o "$tmp/k" >"$tmp/k.out" 2>&1 &
job=$!
killed=0
for _ in $(seq 1 600); do
    # Once a point is done, kill rank 2 while the next ones solve.
    if [ -n "$(find "$tmp/k/state/points" -type f ! -name "*.tmp*" 2>/dev/null)" ] && pid=$(rank_pid 2); then kill -9 "$pid"; killed=1; break; fi
    sleep 0.02
done
wait "$job"
rc=$?
check "rank 2 was killed during the run" -- test "$killed" -eq 1
check "the job ended with a failure (exit $rc)" -- test "$rc" -ne 0
check "the launcher named the dead rank" -- grep -q 'rank 2' "$tmp/k.out"
# The launcher may SIGKILL rank 0 before its SIGTERM handler has removed a temporary (NAME.tmp.PID):
# final names appear only by rename, and state files are validated when read, so a resume that reuses
# the finished points and ends with the uninterrupted results proves none was half-written.
expect 0 'mpi: 6 points \([1-5] computed' -- mpi 2 "$XB" run -q "$tmp/tb.xml" -o "$tmp/k"
for f in summary.csv predictions.csv points.csv; do
    check "resumed after a dead rank: $f as uninterrupted" -- same_numbers "$tmp/r1/$f" "$tmp/k/$f"
done
check "the resume removed the dead job's temporaries" -- test -z "$(find "$tmp/k" -name '*.tmp.*')"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
