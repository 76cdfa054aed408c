#!/usr/bin/env bash
# test_run: `xbarsim run` as a user meets it, on a tiny data set: results, resuming, determinism, errors
set -u
XB=${1:?usage: test_run.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"

# Everything but the last column (seconds), for comparisons between runs.

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

# Resuming inside a point: a circuit-level point stopped partway keeps its finished work units
# (state/units/POINT/), and the resumed run solves only the others, with byte-identical results.
cat >"$tmp/units.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="units" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <chip tile="8x8" program="igvva"/>
  <levels id="q" spec="device"/>
  <spice jobs="2" chunk="1" r-row="2"/>
  <backends use="behavioral spice"/>
  <montecarlo trials="6" seed="5"/>
  <output>
  </output>
</testbench>
XML
# A trial: layer 1 has 3 row tiles x 1 column tile x 30 one-input chunks, layer 2 one tile x 30.
expect 0 'units: 1 points \(1 computed, 6 trials\)' -- "$XB" run -q "$tmp/units.xml" -o "$tmp/u0"
json_int() { sed -n "s/.*\"$2\": \\([0-9]*\\).*/\\1/p" "$1"; }
total=$(json_int "$tmp/u0/run.json" circuit_units_solved)
check "uninterrupted: 6 trials x 120 units solved (got $total)" -- test "$total" = 720
check "uninterrupted: no unit loaded" -- test "$(json_int "$tmp/u0/run.json" circuit_units_loaded)" = 0
check "uninterrupted: the unit store is removed with the finished point" -- test ! -e "$tmp/u0/state/units"
same_units_results() {
    same_numbers "$tmp/u0/points.csv" "$1/points.csv" && cmp -s "$tmp/u0/summary.csv" "$1/summary.csv" &&
        cmp -s "$tmp/u0/predictions.csv" "$1/predictions.csv"
}
stored_units() { find "$1/state/units" -name '*.unit' 2>/dev/null | wc -l; }
# Start the run and stop it (signal $2) once at least 40 units are stored.
stop_partway() { # out-folder signal
    "$XB" run "$tmp/units.xml" -o "$1" >"$1.log" 2>&1 &
    local pid=$! i
    for ((i = 0; i < 6000; i++)); do # up to 2 minutes on a loaded machine
        [ "$(stored_units "$1")" -ge 40 ] && break
        sleep 0.02
    done
    kill -s "$2" "$pid"
    wait "$pid"
}
for sig in KILL TERM; do
    out=$tmp/u$sig
    stop_partway "$out" $sig
    n=$(stored_units "$out")
    check "SIG$sig partway: some units stored ($n), not all" -- test "$n" -ge 40 -a "$n" -lt 720
    check "SIG$sig partway: the point was not finished" -- test ! -e "$out/points.csv"
    [ $sig = TERM ] && check "SIGTERM partway: no temporary left in the unit store" -- \
        test -z "$(find "$out/state/units" -name '*.tmp.*')"
    expect 0 "resumed inside a point: $n circuit units loaded from .*, $((720 - n)) solved" -- \
        "$XB" run "$tmp/units.xml" -o "$out"
    check "SIG$sig: run.json: $n units loaded" -- test "$(json_int "$out/run.json" circuit_units_loaded)" = "$n"
    check "SIG$sig: run.json: only the other $((720 - n)) solved" -- \
        test "$(json_int "$out/run.json" circuit_units_solved)" = $((720 - n))
    check "SIG$sig: the resumed results equal an uninterrupted run's, byte for byte" -- same_units_results "$out"
    check "SIG$sig: the unit store is gone after the point finished" -- test ! -e "$out/state/units"
    check "SIG$sig: no temporary left" -- test -z "$(find "$out" -name '*.tmp.*')"
done
# A damaged unit file is never trusted: ignored with a notice and solved again, results unchanged.
out=$tmp/ubad
stop_partway "$out" KILL
n=$(stored_units "$out")
victim=$(find "$out/state/units" -name '*.unit' | sort | head -1)
printf '\x7f' | dd of="$victim" bs=1 seek=300 conv=notrunc status=none
last=$(find "$out/state/units" -name '*.unit' | sort | tail -1)
truncate -s -9 "$last"
expect 0 'checksum does not match its contents; ignored, its unit .* is solved again' -- \
    "$XB" run "$tmp/units.xml" -o "$out"
check "damaged units: 2 rejected" -- test "$(json_int "$out/run.json" circuit_units_rejected)" = 2
check "damaged units: $((n - 2)) loaded" -- test "$(json_int "$out/run.json" circuit_units_loaded)" = $((n - 2))
check "damaged units: the rest solved" -- test "$(json_int "$out/run.json" circuit_units_solved)" = $((722 - n))
check "damaged units: results equal an uninterrupted run's" -- same_units_results "$out"
# --fresh discards a stopped point's units with the rest of the state.
out=$tmp/ufresh
stop_partway "$out" KILL
expect 0 'units: 1 points \(1 computed' -- "$XB" run -q --fresh "$tmp/units.xml" -o "$out"
check "--fresh: nothing loaded" -- test "$(json_int "$out/run.json" circuit_units_loaded)" = 0
check "--fresh: all 720 solved" -- test "$(json_int "$out/run.json" circuit_units_solved)" = 720

# eval --backend spice keeps its finished units in OUT/.units: the same command run again after a stop
# solves only the rest, with the same result files.
expect 0 'test accuracy' -- "$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 5 -o "$tmp/ew.npz"
eval_cmd=("$XB" eval --weights "$tmp/ew.npz" --dataset "$tmp/data" --backend spice --tile 4x4 --jobs 2 --chunk 1
          --r-row 2)
expect 0 'spice +accuracy' -- "${eval_cmd[@]}" -q -o "$tmp/e0"
etotal=$(json_int "$tmp/e0/run.json" units)
check "eval: the units store is removed when the results are written" -- test ! -e "$tmp/e0/.units"
"${eval_cmd[@]}" -o "$tmp/e1" >"$tmp/e1.log" 2>&1 &
pid=$!
for ((i = 0; i < 6000; i++)); do [ "$(find "$tmp/e1/.units" -name '*.unit' 2>/dev/null | wc -l)" -ge 40 ] && break; sleep 0.02; done
kill -9 "$pid"; wait "$pid" 2>/dev/null
n=$(find "$tmp/e1/.units" -name '*.unit' | wc -l)
check "eval killed partway: some units stored ($n of $etotal)" -- test "$n" -ge 40 -a "$n" -lt "$etotal"
expect 0 "spice: resumed: $n units loaded from $tmp/e1/.units, $((etotal - n)) solved" -- "${eval_cmd[@]}" -o "$tmp/e1"
check "eval resumed: run.json counts $n loaded" -- test "$(json_int "$tmp/e1/run.json" units_loaded)" = "$n"
for f in predictions.csv summary.csv tile_errors.csv confusion.csv per_class.csv ir_drop.csv; do
    check "eval resumed: $f equals an uninterrupted run's" -- cmp -s "$tmp/e0/$f" "$tmp/e1/$f"
done
check "eval resumed: the units store is gone" -- test ! -e "$tmp/e1/.units"

# Training recipes as a sweep: every recipe trains (and caches) its own network; a plain recipe keeps the
# key of a testbench that names no training setting, so its cached network is the same file.
cat >"$tmp/recipes.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="recipes" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="20" batch="4" lr="0.05" seed="3" train-noise="none"/>
  <chip tile="8x8"/>
  <perturb id="noise" model="lognormal" sigma="0.3"/>
  <montecarlo trials="2" seed="5"/>
  <sweep>
    <axis name="recipe">
      <value label="plain"><set param="network.train-noise" value="none"/></value>
      <value label="noised"><set param="network.train-noise" value="lognormal:sigma=0.5"/>
                            <set param="network.noise-ramp" value="5"/></value>
      <value label="adam-qat"><set param="network.optimizer" value="adam"/><set param="network.lr" value="0.01"/>
                              <set param="network.train-levels" value="nnary:1:0.5:1"/>
                              <set param="network.dropout" value="0.1"/></value>
      <value label="device"><set param="network.train-levels" value="device"/>
                            <set param="network.train-noise" value="c2c-level:ar=1,sigma=0.1"/></value>
    </axis>
  </sweep>
</testbench>
XML
expect 0 'recipes: 4 points \(4 computed, 8 trials\)' -- "$XB" run -q "$tmp/recipes.xml" -o "$tmp/rec"
check "four recipes, four trained networks" -- test "$(ls "$tmp/rec/state/networks" | wc -l)" -eq 4
check "hardware-aware training: every recipe reaches an ideal accuracy above chance (1/3)" -- \
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             { n++; if (!($col["accuracy_ideal"] > 0.5)) bad++ } END { exit !(n == 8 && !bad) }' "$tmp/rec/points.csv"
expect 0 '4 of 4 points reused' -- "$XB" run "$tmp/recipes.xml" -o "$tmp/rec"
sed -e '/<sweep>/,/<\/sweep>/d' -e 's/ train-noise="none"//' "$tmp/recipes.xml" >"$tmp/plain-recipe.xml"
expect 0 'recipes: 1 points' -- "$XB" run -q "$tmp/plain-recipe.xml" -o "$tmp/rec-plain"
check "a plain recipe has the network key of a testbench without training settings" -- \
    test -e "$tmp/rec/state/networks/$(ls "$tmp/rec-plain/state/networks")"
# The recipe is part of the key: another noise level trains another network.
sed 's/lognormal:sigma=0.5/lognormal:sigma=0.6/' "$tmp/recipes.xml" >"$tmp/recipes2.xml"
expect 0 'recipes: 4 points \(1 computed' -- "$XB" run -q "$tmp/recipes2.xml" -o "$tmp/rec"
check "the changed recipe added one network" -- test "$(ls "$tmp/rec/state/networks" | wc -l)" -eq 5
sed 's/value="adam"/value="rmsprop"/' "$tmp/recipes.xml" >"$tmp/bad-recipe.xml"
expect 2 'bad-recipe.xml:13: parameter network.optimizer = .rmsprop.: allowed: sgd, adam' -- \
    "$XB" run "$tmp/bad-recipe.xml" -o "$tmp/bad"
sed 's/lognormal:sigma=0.5/d2d:sigma=0.5/' "$tmp/recipes.xml" >"$tmp/bad-recipe2.xml"
expect 2 'bad-recipe2.xml:11: parameter network.train-noise = .d2d:sigma=0.5.: .*programmed conductances' -- \
    "$XB" run "$tmp/bad-recipe2.xml" -o "$tmp/bad"
check "nothing written for a refused recipe" -- test ! -e "$tmp/bad/points.csv"

# McNemar between two networks on the same inputs: the counts are those of predictions.csv, per backend.
cat >"$tmp/mcnemar.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="mcn" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" batch="4" seed="3"/>
  <chip tile="8x8"/>
  <spice jobs="2" chunk="10"/>
  <backends use="behavioral spice"/>
  <sweep>
    <axis name="net">
      <value label="trained"><set param="network.epochs" value="30"/><set param="network.lr" value="0.1"/></value>
      <value label="weak"><set param="network.epochs" value="1"/><set param="network.lr" value="0.02"/></value>
    </axis>
  </sweep>
  <output>
    <mcnemar name="nets" x="net"/>
  </output>
</testbench>
XML
expect 0 'mcnemar nets, spice: net=trained .* against net=weak .* on 30 inputs' -- "$XB" run "$tmp/mcnemar.xml" -o "$tmp/mc"
check "mcnemar: a row per backend" -- test "$(wc -l <"$tmp/mc/nets.csv")" -eq 4
for b in ideal behavioral spice; do
    col=$(head -1 "$tmp/mc/predictions.csv" | tr , '\n' | grep -nx "pred_$b" | cut -d: -f1)
    want=$(awk -F, -v c="$col" 'NR > 1 { r[$1, $3] = ($c == $4) } END {
             for (i = 0; i < 30; i++) { a += r[1, i] && !r[2, i]; b += r[2, i] && !r[1, i] } print a "," b }' \
           "$tmp/mc/predictions.csv")
    got=$(awk -F, -v b="$b" '$1 == b { print $10 "," $11 }' "$tmp/mc/nets.csv")
    check "mcnemar $b: discordant pairs $got equal predictions.csv's $want" -- test "$got" = "$want"
done
check "mcnemar: the weak network disagrees somewhere (the test can see a difference)" -- \
    test "$(awk -F, '$1 == "ideal" { print $10 + $11 }' "$tmp/mc/nets.csv")" -gt 0
sed 's/use="behavioral spice"/use="behavioral"/' "$tmp/mcnemar.xml" >"$tmp/bad-mcnemar.xml"
expect 2 'bad-mcnemar.xml:15: element <mcnemar>: point 1 does not run the spice backend' -- \
    "$XB" run "$tmp/bad-mcnemar.xml" -o "$tmp/bad"

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
