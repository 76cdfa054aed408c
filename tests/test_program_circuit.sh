#!/usr/bin/env bash
# test_program_circuit: `program --method circuit` end to end, and reading its chip with gap cells
set -u
XB=${1:?usage: test_program_circuit.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"

expect 2 "--method 'bogus': expected statistical or circuit" -- "$XB" program --weights x.npz --method bogus
expect 2 'cannot go with --program exact' -- "$XB" program --weights x.npz --method circuit --program exact
expect 2 "--cells 'x': expected 1t1r, linear or gap" -- "$XB" eval --weights x.npz --backend spice --cells x

"$XB" train -q --dataset "$tmp/data" --hidden none --epochs 5 --seed 3 -o "$tmp/w.npz" >/dev/null
# No D2D spread: the chip's conductances are the verify reads, so gap cells read them back.
expect 0 'programmed 46 of 102 cells \(circuit, .*0 failed' -- "$XB" program -q --weights "$tmp/w.npz" \
    --dataset "$tmp/data" --levels device --method circuit --d2d 0 -o "$tmp/pc"
for f in chip.npz cells.csv cdf.csv pulses.csv program.json compare.csv circuit.json cdf-compare-plot.csv \
    cdf-compare-plot.gp ngspice-program.log; do
    check "program --method circuit writes $f" -- test -s "$tmp/pc/$f"
done
check 'every circuit-programmed cell is ok' -- test "$(tail -n +2 "$tmp/pc/cells.csv" | grep -vc ',ok$')" = 0
check 'program.json names the method' -- grep -q '"method": "circuit"' "$tmp/pc/program.json"
check 'circuit.json has the timing ratio' -- grep -q '"circuit_over_statistical": [0-9]' "$tmp/pc/circuit.json"
# compare.csv: 8 levels, the same cells for both methods, all landed.
check 'compare.csv has 8 levels' -- test "$(tail -n +2 "$tmp/pc/compare.csv" | wc -l)" = 8
check 'both methods land every cell' -- awk -F, 'NR > 1 && ($4 != $3 || $5 != $3) { bad = 1 } END { exit bad }' \
    "$tmp/pc/compare.csv"
# The figure holds both methods' series per level (16 series with their labels).
check 'figure has a statistical and a circuit series per level' -- \
    test "$(grep -c 'statistical, I_trg' "$tmp/pc/cdf-compare-plot.gp")" = 8 -a \
         "$(grep -c 'circuit, I_trg' "$tmp/pc/cdf-compare-plot.gp")" = 8

# The statistical method is untouched by the new option: same files with and without --method statistical.
"$XB" program -q --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device -o "$tmp/ps1" >/dev/null
"$XB" program -q --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device --method statistical \
    -o "$tmp/ps2" >/dev/null
check 'statistical is the default' -- cmp -s "$tmp/ps1/cells.csv" "$tmp/ps2/cells.csv"

# Read with the device's own model: the circuit read agrees with the behavioral one (the chip's
# conductances are the cells' reads at v_read; the inputs are below it, where the sinh I-V and the
# transistor bend the read, so the agreement is in predictions and within a few percent in currents).
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- "$XB" eval -q --weights "$tmp/w.npz" \
    --dataset "$tmp/data" --backend spice --chip "$tmp/pc/chip.npz" --cells gap --r-row 0 --r-col 0 --jobs 1 \
    -o "$tmp/ev"
expect 0 'L1_T0_0.cir' -- "$XB" netlist --weights "$tmp/w.npz" --dataset "$tmp/data" \
    --chip "$tmp/pc/chip.npz" --cells gap -o "$tmp/nl"
check 'the netlist deck uses the gap cells' -- grep -q 'xb_1t1r_gap gap=' "$tmp/nl/L1_T0_0.cir"

echo "program_circuit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
