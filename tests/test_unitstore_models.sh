#!/usr/bin/env bash
# test_unitstore_models: a stopped `eval --backend spice` resumes from its stored units only while the model
# files its decks include keep their content (the MOSFET card and a file it pulls in, rram.lib, the gap model);
# a testbench point's stored result is not reused for another cell kind or an edited gap model
set -u
XB=${1:?usage: test_unitstore_models.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"

# A copy of the shipped models (never the repository's own files), the MOSFET card behind a wrapper that
# includes it, as a PDK card pulls in its parts.
models=$(cd "$(dirname "$0")/../models" && pwd)
mkdir -p "$tmp/models/card"
cp "$models/hfo2_1t1r.xml" "$models/device.xsd" "$models/rram.lib" "$models/rram_gap.lib" "$tmp/models/"
cp "$models/nmos_l1.lib" "$tmp/models/card/"
printf '* the access transistor card, pulled in from this folder\n.include "nmos_l1.lib"\n' \
    >"$tmp/models/card/nmos.lib"
sed -i 's|<mosfet_model_file>nmos_l1.lib<|<mosfet_model_file>card/nmos.lib<|' "$tmp/models/hfo2_1t1r.xml"
check "the device copy uses the wrapped card" -- grep -q '<mosfet_model_file>card/nmos.lib<' "$tmp/models/hfo2_1t1r.xml"

"$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 5 --seed 3 -o "$tmp/w.npz" >/dev/null
ev() { "$XB" eval --weights "$tmp/w.npz" --dataset "$tmp/data" --backend spice --cells gap \
    --device "$tmp/models/hfo2_1t1r.xml" --tile 4x4 --chunk 10 --jobs 1 -o "$@"; }
json_int() { grep -o "\"$2\": *[0-9]*" "$1" | head -1 | sed 's/.*: *//'; }
expect 0 'spice +accuracy' -- ev "$tmp/ref"
units=$(json_int "$tmp/ref/run.json" units)
check "reference: some units ($units)" -- test "${units:-0}" -gt 10

# A run stopped after its circuit solves: tile_errors.csv cannot be written (a folder holds its name), so
# eval fails with every unit in OUT/.units.
stopped() {
    rm -rf "$1"
    mkdir -p "$1/tile_errors.csv"
    expect 1 'tile_errors.csv' -- ev "$1"
    rmdir "$1/tile_errors.csv"
    check "stopped run: all $units units stored" -- test "$(find "$1/.units" -name '*.unit' | wc -l)" = "$units"
}
same_results() {
    local f
    for f in predictions.csv summary.csv tile_errors.csv; do cmp -s "$tmp/ref/$f" "$1/$f" || return 1; done
}

# Unchanged model files: every stored unit is reused.
stopped "$tmp/r"
expect 0 "spice: resumed: $units units loaded from $tmp/r/.units, 0 solved" -- ev "$tmp/r"
check "unchanged models: the results of an uninterrupted run" -- same_results "$tmp/r"

# One model file's content changed (a comment line: the deck text, which only names the files, is the
# same): no stored unit is reused, every one is solved again.
for f in rram_gap.lib rram.lib card/nmos.lib card/nmos_l1.lib; do
    stopped "$tmp/r"
    cp "$tmp/models/$f" "$tmp/saved.lib"
    echo "* edited" >>"$tmp/models/$f"
    expect 0 'spice +accuracy' -- ev "$tmp/r"
    check "$f edited: no unit loaded" -- test "$(json_int "$tmp/r/run.json" units_loaded)" = 0
    check "$f edited: all $units units solved" -- test "$(json_int "$tmp/r/run.json" units)" = "$units"
    check "$f edited: the unit store is removed" -- test ! -e "$tmp/r/.units"
    check "$f edited (a comment): the same results" -- same_results "$tmp/r"
    mv "$tmp/saved.lib" "$tmp/models/$f"
done

# A testbench point's finished state is keyed by its cell kind too: a point edited from 1t1r to gap cells is
# computed again (it reused the 1t1r point's result), then reused while it stays gap and its gap model is
# unchanged (the copy of the models above, through the testbench's device file).
cat >"$tmp/cells.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="cells" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="5" batch="4" lr="0.1" seed="3"/>
  <device file="models/hfo2_1t1r.xml"/>
  <chip tile="8x8"/>
  <spice jobs="1" cells="1t1r"/>
  <backends use="behavioral spice"/>
</testbench>
XML
expect 0 'cells: 1 points \(1 computed' -- "$XB" run -q "$tmp/cells.xml" -o "$tmp/tb"
sed -i 's/cells="1t1r"/cells="gap"/' "$tmp/cells.xml"
expect 0 'cells: 1 points \(1 computed' -- "$XB" run -q "$tmp/cells.xml" -o "$tmp/tb"
expect 0 'cells: 1 points \(0 computed' -- "$XB" run -q "$tmp/cells.xml" -o "$tmp/tb"
# ... and by the content of the gap model its cells read.
echo "* edited" >>"$tmp/models/rram_gap.lib"
expect 0 'cells: 1 points \(1 computed' -- "$XB" run -q "$tmp/cells.xml" -o "$tmp/tb"

echo "unitstore_models: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
