#!/bin/bash
# test_energy_cli: `eval --backend spice --energy` on the tiny data set: files, numbers that add up, refusals
XB=$1
. "$(dirname "$0")/lib.sh"

"$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 40 --batch 4 --seed 3 -o "$tmp/w.npz" >/dev/null
"$XB" program -q --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 -o "$tmp/chip" >/dev/null

# Without --energy nothing changes: no energy file, no energy in run.json.
"$XB" eval -q --weights "$tmp/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 1 \
    --limit 4 -o "$tmp/plain" >/dev/null
check "no energy.csv without --energy" -- test ! -e "$tmp/plain/energy.csv"
check "no energy in run.json without --energy" -- bash -c "! grep -q '\"energy\"' '$tmp/plain/run.json'"

expect 0 '^energy per inference: [0-9.e-]+ J \(circuit [0-9.e-]+ J: cells [0-9.e-]+ J, wires [0-9.e-]+ J; ADC [0-9.e-]+ J, DAC [0-9.e-]+ J\) over [0-9]+ tiles, read time 1e-07 s; settling [0-9.e-]+ s' \
    -- "$XB" eval -q --weights "$tmp/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" \
    --jobs 1 --limit 4 --energy --energy-inputs 3 -o "$tmp/en"
expect 0 '^layer,row_tile,col_tile,rows,cols,inputs,t_read_s,e_sources_J,e_cells_J,e_wires_J,e_adc_J,e_dac_J,e_total_J,c_wire_F,settle_fraction,t_settle_s,t_transient_s$' \
    -- head -1 "$tmp/en/energy.csv"
# Every tile: 3 inputs measured; cells + wires = sources within 1e-6 (Newton's tolerance of the 1T1R
# cells); total = sources + ADC + DAC; ADC = cols x 1.5625 pJ, DAC = rows x 3.05 fJ; settled in (0, transient).
check "energy.csv: per tile, the parts add up and the defaults apply" -- awk -F, 'NR > 1 {
    n++
    if ($6 != 3) bad = bad " inputs=" $6
    if ($8 <= 0 || $9 <= 0 || $10 <= 0) bad = bad " nonpositive"
    d = $9 + $10 - $8; if (d < 0) d = -d; if (d > 1e-6 * $8) bad = bad " balance"
    d = $8 + $11 + $12 - $13; if (d < 0) d = -d; if (d > 1e-12 * $13) bad = bad " total"
    d = $11 - $5 * 1.5625e-12; if (d < 0) d = -d; if (d > 1e-24) bad = bad " adc"
    d = $12 - $4 * 4e-3 / 1024 / 1.28e9; if (d < 0) d = -d; if (d > 1e-27) bad = bad " dac"
    if (!($16 > 0 && $16 < $17)) bad = bad " settle"
} END { if (n < 2 || bad != "") { print "energy.csv: " n " tiles;" bad; exit 1 } }' "$tmp/en/energy.csv"
check "run.json has the energy per layer and per inference" -- grep -q '"e_per_inference_J"' "$tmp/en/run.json"
check "energy-plot data and script" -- test -s "$tmp/en/energy-plot.csv" -a -s "$tmp/en/energy-plot.gp"
# The per-inference total is the sum of the tiles' totals.
total=$(awk -F, 'NR > 1 { s += $13 } END { printf "%.6e", s }' "$tmp/en/energy.csv")
json=$(grep -o '"e_per_inference_J": *[0-9.e+-]*' "$tmp/en/run.json" | sed 's/.*: *//')
check "run.json per inference = sum of energy.csv ($json, $total)" -- awk -v a="$json" -v b="$total" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * b) }'
# A longer read time scales the circuit's energy, not the converters'.
"$XB" eval -q --weights "$tmp/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 1 \
    --limit 4 --energy-inputs 3 --read-time 2e-7 --adc-energy 0 --dac-energy 0 -o "$tmp/en2" >/dev/null
check "twice the read time, twice the circuit energy; converters at 0 J" -- awk -F, \
    'NR == FNR && FNR > 1 { a[FNR] = $8 } NR != FNR && FNR > 1 { d = $8 - 2 * a[FNR]; if (d < 0) d = -d;
     if (d > 1e-9 * $8 || $11 != 0 || $12 != 0) bad = 1 } END { exit bad }' "$tmp/en/energy.csv" "$tmp/en2/energy.csv"

# run.json's spice.cells names the cell kind that was solved, gap cells (the device's <rram> compact model)
# included; the energy is measured for each kind (the same chip, 1T1R above).
for cells in linear 1t1r gap; do
    "$XB" eval -q --weights "$tmp/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" \
        --jobs 1 --limit 4 --energy --energy-inputs 2 --cells "$cells" -o "$tmp/cells-$cells" >/dev/null
    check "--cells $cells: run.json records \"cells\": \"$cells\"" -- \
        grep -q "^ *\"cells\": \"$cells\",\$" "$tmp/cells-$cells/run.json"
    check "--cells $cells: energy.csv has every tile" -- test "$(tail -n +2 "$tmp/cells-$cells/energy.csv" | wc -l)" = \
        "$(tail -n +2 "$tmp/en/energy.csv" | wc -l)"
done

# Refusals: exit 2 naming the option and what is allowed.
for bad in "--read-time 0" "--read-time abc" "--adc-energy -1" "--c-wire 1" "--settle-fraction 0.9" "--energy-inputs 0"; do
    expect 2 "${bad%% *}" -- "$XB" eval --weights "$tmp/w.npz" --dataset "$tmp/data" --backend spice \
        --chip "$tmp/chip/chip.npz" $bad -o "$tmp/bad"
done
echo "energy_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
