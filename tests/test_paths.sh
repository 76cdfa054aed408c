#!/usr/bin/env bash
# test_paths: every path a user gives works from any working folder (relative --device, testbench and
# its paths), and model cards that send ngspice into an endless loop end in bounded time
set -u
XB=${1:?usage: test_paths.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)

# A project folder of the user's: a device file whose model files sit beside it (relative names), a
# tiny data set, weights and a testbench, all named relative to the project folder.
proj=$tmp/proj
mkdir -p "$proj/dev" "$proj/tb" "$tmp/elsewhere"
cp "$src/models/hfo2_1t1r.xml" "$src/models/device.xsd" "$src/models/nmos_l1.lib" "$src/models/rram.lib" "$proj/dev/"
mv "$tmp/data" "$proj/data"
expect 0 'test accuracy' -- env -C "$proj" "$XB" train -q --dataset data --hidden 4 --epochs 30 --batch 4 --seed 3 \
    -o w.npz
cat >"$proj/tb/tiny.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="tiny" version="1">
  <dataset name="../data" calib="20"/>
  <network weights="../w.npz"/>
  <device file="../dev/hfo2_1t1r.xml" mosfet-file="../dev/nmos_l1.lib"/>
  <chip tile="8x8"/>
  <spice jobs="1"/>
  <backends use="spice"/>
</testbench>
XML

# From the project folder, then from another folder with paths relative to that one.
for where in proj elsewhere; do
    if [ "$where" = proj ]; then cd "$proj" && p=.; else cd "$tmp/elsewhere" && p=../proj; fi
    expect 0 "L1_T0_0.cir \(8 x 8 tile, 1 input\)" -- "$XB" netlist --weights $p/w.npz --dataset $p/data \
        --device $p/dev/hfo2_1t1r.xml --tile 8x8 -o decks-$where
    expect 0 "^\.include \"$proj/dev/nmos_l1.lib\"$" -- cat decks-$where/L1_T0_0.cir
    expect 0 'i\(vsense0\)' -- ngspice -b decks-$where/L1_T0_0.cir
    check "$where: expected currents are numbers" -- \
        awk -F, 'NR == 2 { exit !($3 + 0 > 0 && $3 != "nan") }' decks-$where/L1_T0_0.cir.expected.csv
    expect 0 "spice +accuracy [0-9.]+% \\(6/6" -- "$XB" eval -q --weights $p/w.npz --dataset $p/data --device \
        $p/dev/hfo2_1t1r.xml --tile 8x8 --backend spice --limit 6 --jobs 1 -o eval-$where
    expect 0 'tiny: 1 point' -- "$XB" run -q $p/tb/tiny.xml -o run-$where
    check "$where: run wrote its results folder here" -- test -s run-$where/summary.csv
    check "$where: run's example deck includes the testbench's absolute model path" -- \
        grep -q "^\.include \"$proj/dev/nmos_l1.lib\"$" run-$where/example/L1_T0_0.cir
    # The default results folder is relative to the working folder, as documented.
    expect 0 'tiny: 1 point' -- "$XB" run -q $p/tb/tiny.xml
    check "$where: default results folder under the working folder" -- test -s results/tiny/summary.csv
done
cd "$tmp"

# A transistor card that sends ngspice into an endless loop (kp = 1e30): each solve gets a time limit,
# the input is reported failed and the command ends.
sed 's/kp=250e-6/kp=1e30/' "$src/models/nmos_l1.lib" >"$proj/dev/kp.lib"
sed 's|<mosfet_model_file>nmos_l1.lib<|<mosfet_model_file>kp.lib<|' "$proj/dev/hfo2_1t1r.xml" >"$proj/dev/kp.xml"
check "the kp card is in place" -- grep -q 'kp=1e30' "$proj/dev/kp.lib"
t0=$SECONDS
expect 0 '1 of 1 input failed in libngspice' -- timeout 120 "$XB" netlist --weights "$proj/w.npz" \
    --dataset "$proj/data" --device "$proj/dev/kp.xml" --tile 8x8 --solve-timeout 0.5 -o "$tmp/kp-decks"
check "netlist with the kp card: expected currents NaN" -- grep -q '^0,0,nan' "$tmp/kp-decks/L1_T0_0.cir.expected.csv"
expect 0 '0 solves retried, 8 failed' -- timeout 120 "$XB" eval --weights "$proj/w.npz" --dataset "$proj/data" \
    --device "$proj/dev/kp.xml" --tile 8x8 --backend spice --limit 2 --chunk 2 --jobs 2 --solve-timeout 0.5 \
    -o "$tmp/kp-eval"
check "eval with the kp card: every prediction -1" -- \
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } $col["pred_spice"] != -1 { bad++ }
             END { exit bad > 0 || NR != 3 }' "$tmp/kp-eval/predictions.csv"
check "the kp runs took bounded time ($((SECONDS - t0)) s)" -- test $((SECONDS - t0)) -lt 100
expect 2 "--solve-timeout 'x'" -- "$XB" eval --solve-timeout x
expect 0 'solve-timeout SECONDS' -- "$XB" help netlist

echo "test_paths: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
