#!/usr/bin/env bash
# test_golden: the README's examples on the committed reference weights reproduce their golden outputs
# (tests/golden/readme) exactly. XB_GOLDEN_UPDATE=1 rewrites them; a commit that does says why.
set -u
XB=${1:?usage: test_golden.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
ref=$src/results/reference
out=$tmp/out
g=$tmp/golden

# run NAME ARGS...: one example, its result files kept under $g/NAME.
run() {
    local name=$1
    shift
    expect 0 '' -- "$XB" "$@"
}
keep() { # NAME FILE...
    local name=$1 f
    shift
    for f in "$@"; do golden_put "$out/$name/$f" "$g/$name/$f"; done
}

run eval-ideal eval -q --weights "$ref/mnist-mlp100-f32.npz" --backend ideal -o "$out/eval-ideal"
keep eval-ideal summary.csv per_class.csv confusion.csv predictions.csv

run program-mlp program -q --weights "$ref/mnist-mlp100-f32.npz" --levels device -o "$out/program-mlp"
keep program-mlp cells.csv tiles.csv cdf.csv pulses.csv

run eval-chip eval -q --weights "$ref/mnist-mlp100-f32.npz" --backend behavioral \
    --chip "$out/program-mlp/chip.npz" --adc-bits 8 -o "$out/eval-chip"
keep eval-chip summary.csv per_class.csv confusion.csv predictions.csv

run eval-mc eval -q --weights "$ref/mnist-slp-f32.npz" --backend behavioral --levels set3 \
    --perturb c2c:ar=1,sigma=0.1 --trials 100 -o "$out/eval-mc"
keep eval-mc summary.csv per_class.csv confusion.csv predictions.csv trials.csv mc_summary.csv

# The spice example on its first 100 images (the README's runs 1000).
run program-slp program -q --weights "$ref/mnist-slp-f32.npz" --levels device -o "$out/program-slp"
keep program-slp cells.csv tiles.csv
run eval-spice eval -q --weights "$ref/mnist-slp-f32.npz" --backend spice --chip "$out/program-slp/chip.npz" \
    --limit 100 --jobs 2 -o "$out/eval-spice"
keep eval-spice summary.csv per_class.csv confusion.csv predictions.csv tile_errors.csv ir_drop.csv

run netlist netlist --weights "$ref/mnist-slp-f32.npz" --tile-index 6,0 -o "$out/netlist"
keep netlist L1_T6_0.cir L1_T6_0.cir.expected.csv

# The spice-derived numbers are those of the linked libngspice and its default solver (they move at ~1e-12
# between Sparse 1.3 and KLU): a build against another library fails here first, naming both.
mkdir -p "$g" && "$XB" --version | awk '$1 == "ngspice" { print "spice numbers of libngspice " $2 " (its default solver; another library: XB_GOLDEN_UPDATE=1, commit saying why)" }' >"$g/ngspice.txt"
golden_compare "$src/tests/golden/readme" "$g" "README examples"
echo "test_golden: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
