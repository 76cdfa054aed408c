#!/usr/bin/env bash
# test_run: `xbarsim run` as a user meets it, on a tiny data set: results, resuming, determinism, errors
set -u
XB=${1:?usage: test_run.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"

# Everything but the last column (seconds), for comparisons between runs.
strip_seconds() { awk -F, 'BEGIN { OFS = "," } { NF--; print }' "$1"; }
same_numbers() { cmp -s <(strip_seconds "$1") <(strip_seconds "$2"); }

# A chip without programming errors and no perturbation reproduces the software network exactly.
cat >"$tmp/ideal.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="ideal" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <chip tile="8x8"/>
  <perturb id="c2c" model="c2c" ar="1" sigma="0"/>
  <montecarlo trials="3" seed="5"/>
  <sweep>
    <axis param="c2c.sigma" values="0 1.5"/>
  </sweep>
  <output>
    <plot x="c2c.sigma" title="first title"/>
  </output>
</testbench>
XML
expect 0 'ideal: 2 points \(2 computed, 6 trials\)' -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"
check "points.csv has a header and 2 x 3 rows" -- test "$(wc -l <"$tmp/r1/points.csv")" -eq 7
check "sigma 0: behavioral accuracy equals the ideal network's in every trial" -- \
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             $col["c2c.sigma"] == "0" { n++; if ($col["accuracy_behavioral"] != $col["accuracy_ideal"]) bad++ }
             END { exit !(n == 3 && !bad) }' "$tmp/r1/points.csv"
check "trials draw from different seeds" -- test "$(cut -d, -f4 "$tmp/r1/points.csv" | sort -u | wc -l)" -eq 4
check "summary.csv: a row per point and backend" -- test "$(wc -l <"$tmp/r1/summary.csv")" -eq 5
expect 0 '"testbench_sha256"' -- cat "$tmp/r1/run.json"
expect 0 '"training_seed": 3' -- cat "$tmp/r1/run.json"
expect 0 'plot-c2c_sigma-1.gp' -- ls "$tmp/r1/plots"
expect 0 'first title' -- cat "$tmp/r1/plots/plot-c2c_sigma-1.gp"
check "no temporary files left" -- test -z "$(find "$tmp/r1" -name '*.tmp.*')"

# Run again: every point is reused and the results are the same file.
cp "$tmp/r1/points.csv" "$tmp/points.before"
expect 0 '2 of 2 points reused' -- "$XB" run "$tmp/ideal.xml" -o "$tmp/r1"
check "a resumed run writes the same points.csv" -- cmp -s "$tmp/points.before" "$tmp/r1/points.csv"
# A lost point (an interrupted run) is computed again, with the same numbers.
rm "$(ls "$tmp"/r1/state/points/*.csv | head -1)"
expect 0 '2 points \(1 computed' -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"
check "the recomputed point has the same numbers" -- same_numbers "$tmp/points.before" "$tmp/r1/points.csv"
# An edited title changes no point; --fresh recomputes all, identically.
sed 's/first title/second title/' "$tmp/ideal.xml" >"$tmp/ideal2.xml"
expect 0 '2 points \(0 computed' -- "$XB" run -q "$tmp/ideal2.xml" -o "$tmp/r1"
expect 0 'second title' -- cat "$tmp/r1/plots/plot-c2c_sigma-1.gp"
expect 0 '2 points \(2 computed' -- "$XB" run -q --fresh "$tmp/ideal.xml" -o "$tmp/r1"
check "a fresh run gives the same numbers" -- same_numbers "$tmp/points.before" "$tmp/r1/points.csv"
# A changed sweep value recomputes only that point.
sed 's/values="0 1.5"/values="0 2"/' "$tmp/ideal.xml" >"$tmp/ideal3.xml"
expect 0 '2 points \(1 computed' -- "$XB" run -q "$tmp/ideal3.xml" -o "$tmp/r1"

# Finished points are reused only while the files they read are unchanged: an edited device file
# recomputes the points that use it.
src=$(cd "$(dirname "$0")/.." && pwd)
sed -e "s|<mosfet_model_file>nmos_l1.lib<|<mosfet_model_file>$src/models/nmos_l1.lib<|" \
    -e "s|<rram_model_file>rram.lib<|<rram_model_file>$src/models/rram.lib<|" "$src/models/hfo2_1t1r.xml" >"$tmp/dev.xml"
cat >"$tmp/device.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="device" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <device file="dev.xml"/>
  <chip tile="8x8" program="exact"/>
  <sweep>
    <axis param="montecarlo.seed" values="1 2"/>
  </sweep>
  <output>
  </output>
</testbench>
XML
expect 0 '2 points \(2 computed' -- "$XB" run -q "$tmp/device.xml" -o "$tmp/d1"
expect 0 '2 points \(0 computed' -- "$XB" run -q "$tmp/device.xml" -o "$tmp/d1"
sed -i 's|<sigma_d2d>0.03<|<sigma_d2d>0.3<|' "$tmp/dev.xml"
expect 0 '2 points \(2 computed' -- "$XB" run -q "$tmp/device.xml" -o "$tmp/d1"
# The example point is computed again when its example folder is gone, and when its example changes.
rm -r "$tmp/d1/example"
expect 0 '2 points \(1 computed' -- "$XB" run -q "$tmp/device.xml" -o "$tmp/d1"
check "example netlist written again" -- test -s "$tmp/d1/example/L1_T0_0.cir"
sed 's|</output>|  <example layer="2"/>\n  </output>|' "$tmp/device.xml" >"$tmp/device2.xml"
expect 0 '2 points \(1 computed' -- "$XB" run -q "$tmp/device2.xml" -o "$tmp/d1"
check "the example of layer 2" -- test -s "$tmp/d1/example/L2_T0_0.cir"
sed 's|</output>|  <example layer="3"/>\n  </output>|' "$tmp/device.xml" >"$tmp/device3.xml"
expect 2 'device3.xml:[0-9]+: element <example>: layer 3; point 1.s network has 2 layers' -- \
    "$XB" run -q "$tmp/device3.xml" -o "$tmp/d3"

# The circuit: IGVVA-programmed device levels, ngspice on every input, the example folder.
cat >"$tmp/circuit.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="circuit" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <chip tile="8x8" program="igvva"/>
  <levels id="q" spec="device"/>
  <spice jobs="2"/>
  <backends use="behavioral spice"/>
  <sweep>
    <axis param="spice.r-row" values="0 2"/>
  </sweep>
  <output>
    <plot x="spice.r-row" series="backend"/>
  </output>
</testbench>
XML
expect 0 'circuit: 2 points \(2 computed, 2 trials\)' -- "$XB" run -q "$tmp/circuit.xml" -o "$tmp/c1"
check "predictions.csv: a row per input and point" -- test "$(wc -l <"$tmp/c1/predictions.csv")" -eq 61
check "summary.csv: ideal, behavioral, spice per point" -- test "$(grep -c ',spice,' "$tmp/c1/summary.csv")" -eq 2
for f in L1_T0_0.cir cdf.csv cells.csv pulses.csv tile_errors.csv currents.csv ir_drop.csv; do
    check "example/$f written" -- test -s "$tmp/c1/example/$f"
done
expect 0 'i\(vsense0\)' -- ngspice -b "$tmp/c1/example/L1_T0_0.cir"
check "ngspice logs written" -- test -s "$tmp/c1/logs/ngspice-worker-0.log"
# Provenance names the libngspice the run's own workers reported (nothing else starts one to ask).
expect 0 '"ngspice": "[0-9]+"' -- cat "$tmp/c1/run.json"
expect 0 '"ngspice_solver": "[A-Za-z]' -- cat "$tmp/c1/run.json"

# Bad input: exit 2, the file and line named, nothing computed.
expect 2 'a testbench file is required' -- "$XB" run
expect 2 "$tmp/missing.xml" -- "$XB" run "$tmp/missing.xml"
expect 2 "unknown option '--bogus'" -- "$XB" run --bogus "$tmp/ideal.xml"
sed 's/values="0 1.5"/values="0 x"/' "$tmp/ideal.xml" >"$tmp/bad-value.xml"
expect 2 'bad-value.xml:9: parameter c2c.sigma' -- "$XB" run "$tmp/bad-value.xml" -o "$tmp/bad"
sed 's/<perturb id="c2c" model="c2c" ar="1" sigma="0"\/>/<perturb id="c2c" model="c2c" layers="3"\/>/' \
    "$tmp/ideal.xml" >"$tmp/bad-layer.xml"
expect 2 'bad-layer.xml:6: .*the network has 2 layers' -- "$XB" run "$tmp/bad-layer.xml" -o "$tmp/bad"
check "nothing written for a testbench refused before running" -- test ! -e "$tmp/bad/points.csv"
sed 's/name="data"/name="nodata"/' "$tmp/ideal.xml" >"$tmp/bad-data.xml"
expect 2 'bad-data.xml:3: .*nodata' -- "$XB" run "$tmp/bad-data.xml" -o "$tmp/bad"
sed 's/<network /<network weights="missing.npz" /' "$tmp/ideal.xml" >"$tmp/bad-weights.xml"
expect 2 'missing.npz' -- "$XB" run "$tmp/bad-weights.xml" -o "$tmp/bad"
printf '<testbench name="x"><sweep><axis param="c2c.sigma"' >"$tmp/broken.xml"
expect 2 'broken.xml:1: .*not well-formed' -- "$XB" run "$tmp/broken.xml"
expect 0 '^1	.*	0$' -- "$XB" run --list "$tmp/ideal.xml"

echo "test_run: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
