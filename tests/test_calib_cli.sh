#!/bin/bash
# test_calib_cli: `program --calib-reads`: the report files, reads drawn from the measurements, refusals
XB=$1
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
reads=$src/models/calib/sample_reads.csv

"$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 40 --batch 4 --seed 3 -o "$tmp/w.npz" >/dev/null
# Without --calib-reads: no calibration files.
"$XB" program -q --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 -o "$tmp/plain" >/dev/null
check "no calibration files without --calib-reads" -- test ! -e "$tmp/plain/calib_fit.csv" -a ! -e "$tmp/plain/calib.json"

for model in empirical normal lognormal; do
    expect 0 "programmed [0-9]+ of" -- "$XB" program -q --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device \
        --tile 8x8 --calib-reads "$reads" --calib-model $model -o "$tmp/c-$model"
    expect 0 '^level,i_trg_A,n_measured,mean_A,sd_A,mu_ln,sigma_ln,ks_d_normal,ks_p_normal,ks_d_lognormal,ks_p_lognormal,model,n_programmed,ks_d_programmed,ks_p_programmed$' \
        -- head -1 "$tmp/c-$model/calib_fit.csv"
    check "$model: 8 levels of 128 measured cells, KS D in [0, 1], p in [0, 1]" -- awk -F, -v m=$model 'NR > 1 {
        n++; if ($3 != 128 || $12 != m || $8 < 0 || $8 > 1 || $9 < 0 || $9 > 1 || $10 < 0 || $10 > 1) bad = 1 }
        END { exit !(n == 8 && !bad) }' "$tmp/c-$model/calib_fit.csv"
    check "$model: calib_cdf.csv, calib.json and the figure's data" -- test -s "$tmp/c-$model/calib_cdf.csv" -a \
        -s "$tmp/c-$model/calib.json" -a -s "$tmp/c-$model/calib-plot.csv"
done
# Empirical: every programmed cell on a device level reads one of the measured currents of its level.
check "empirical: each programmed read is a measured one of its level" -- awk -F, '
    NR == FNR { if (FNR > 1) have[$1 "," $2 + 0] = 1; next }
    FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { t = $col["i_trg_A"]; lv = int(t / 10e-6 + 0.5) - 1; r = sprintf("%.6e", $col["i_read_A"]) + 0
      n++; if (!((lv "," r) in have)) bad++ }
    END { if (bad || n == 0) print bad " of " n " reads not measured"; exit bad || n == 0 }' "$reads" "$tmp/c-empirical/cells.csv"
# The fitted parameters against the file's own maximum-likelihood values (level 0, normal).
check "normal fit of level 0 = the file's mean and sd (divisor n)" -- awk -F, '
    NR == FNR { if (FNR > 1 && $1 == 0) { n++; s += $2; s2 += $2 * $2 } next }
    FNR == 2 { m = s / n; sd = sqrt(s2 / n - m * m); d1 = $4 - m; d2 = $5 - sd
               exit !((d1 < 0 ? -d1 : d1) < 1e-12 * m && (d2 < 0 ? -d2 : d2) < 1e-6 * sd) }' \
    "$reads" "$tmp/c-normal/calib_fit.csv"

# Refusals: exit 2 naming the file, the line and what is allowed.
printf 'level,i_read_A\n0,1e-5\n0,abc\n' >"$tmp/bad.csv"
expect 2 "bad.csv line 3: i_read_A 'abc'; allowed: a finite read current above 0 A" -- "$XB" program \
    --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 --calib-reads "$tmp/bad.csv" -o "$tmp/b1"
printf 'level,i_read_A\n9,1e-5\n9,1e-5\n' >"$tmp/bad2.csv"
expect 2 "bad2.csv line 2: level '9'; allowed: an integer 0 to 7" -- "$XB" program \
    --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 --calib-reads "$tmp/bad2.csv" -o "$tmp/b2"
expect 2 "--calib-model 'gamma': expected empirical, normal or lognormal" -- "$XB" program --weights "$tmp/w.npz" \
    --dataset "$tmp/data" --calib-reads "$reads" --calib-model gamma -o "$tmp/b3"
expect 2 "needs --program igvva" -- "$XB" program --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device \
    --tile 8x8 --program exact --calib-reads "$reads" -o "$tmp/b4"
expect 2 "no-such.csv" -- "$XB" program --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device \
    --tile 8x8 --calib-reads "$tmp/no-such.csv" -o "$tmp/b5"
# --method circuit: --calib-reads fits the compact model's spread (a small grid, 2 cells on 2 levels).
printf 'level,i_read_A\n0,9.1e-6\n0,9.9e-6\n0,1.05e-5\n7,7.8e-5\n7,8.1e-5\n7,8.3e-5\n' >"$tmp/two.csv"
expect 0 "programmed [0-9]+ of .*circuit" -- "$XB" program -q --weights "$tmp/w.npz" --dataset "$tmp/data" \
    --levels device --tile 8x8 --method circuit --calib-reads "$tmp/two.csv" --calib-fit-grid 0,0.04 \
    --calib-fit-cells 2 -o "$tmp/fit"
expect 0 '^sigma_ea_eV,sigma_read,level,i_trg_A,n_measured,n_modelled,n_failed,mean_measured_A,sd_measured_A,mean_modelled_A,sd_modelled_A,ks_d,ks_p,mean_ks_d,best$' \
    -- head -1 "$tmp/fit/calib_spread.csv"
check "calib_spread.csv: 2 candidates x 2 levels, 3 measured and 2 modelled cells, D and p in [0, 1], one best" -- \
    awk -F, 'NR > 1 { n++; if (($3 != 0 && $3 != 7) || $5 != 3 || $6 != 2 || $12 < 0 || $12 > 1 || $13 < 0 ||
                      $13 > 1) bad = 1; if ($15 == 1) { best++; s = $1 } }
             END { exit !(n == 4 && !bad && best == 2 && (s == 0 || s == 0.04)) }' "$tmp/fit/calib_spread.csv"
check "the mean D column is the mean of the candidate's two levels" -- awk -F, 'NR > 1 { d[$1] += $12; m[$1] = $14 }
    END { for (k in d) { e = d[k] / 2 - m[k]; if (e > 1e-12 || e < -1e-12) exit 1 } }' "$tmp/fit/calib_spread.csv"
for f in calib-spread-plot.csv calib-spread-plot.gp calib_fit.csv calib_cdf.csv calib-plot.csv calib.json circuit.json; do
    check "spread fit writes $f" -- test -s "$tmp/fit/$f"
done
best=$(awk -F, 'NR > 1 && $15 == 1 { print $1 + 0; exit }' "$tmp/fit/calib_spread.csv")
# The first "sigma_ea_eV" after KEY in a JSON file, as a number.
json_ea() { grep -A40 "\"$2\"" "$1" | awk -F': ' '/"sigma_ea_eV"/ { sub(/,$/, "", $2); print $2 + 0; exit }'; }
check "calib.json and circuit.json record the fitted sigma_ea_eV ($best)" -- test -n "$best" -a \
    "$(json_ea "$tmp/fit/calib.json" spread_fit)" = "$best" -a "$(json_ea "$tmp/fit/circuit.json" spread_fit)" = "$best"
check "the chip was programmed with it (circuit.json's rram group)" -- test "$(json_ea "$tmp/fit/circuit.json" rram)" = "$best"
check "calib_fit.csv compares the 2 measured levels with the fit's 2 cells each" -- awk -F, 'NR > 1 { n++
    if ($3 != 3 || $13 != 2) bad = 1 } END { exit !(n == 2 && !bad) }' "$tmp/fit/calib_fit.csv"
# Bad spread-fit options: exit 2 naming the option and what is allowed.
for bad in "--calib-fit-grid 0.02,0.01|--calib-fit-grid '0.02,0.01': value 2 \(0.01\) does not exceed the one before" \
           "--calib-fit-grid 0,0|strictly ascending values, each once" \
           "--calib-fit-grid -0.01|value 1 \(-0.01\) is out of range; allowed: 0 to 1" \
           "--calib-fit-grid 0,x|value 2 is not a finite number" \
           "--calib-fit-read-grid 0,inf|--calib-fit-read-grid '0,inf': value 2 is not a finite number" \
           "--calib-fit-cells 1|--calib-fit-cells '1': expected a whole number from 2 to 4096"; do
    expect 2 "${bad#*|}" -- "$XB" program --weights "$tmp/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 \
        --method circuit --calib-reads "$tmp/two.csv" ${bad%%|*} -o "$tmp/bf"
done
expect 2 "set the spread fit of --method circuit --calib-reads FILE" -- "$XB" program --weights "$tmp/w.npz" \
    --dataset "$tmp/data" --calib-reads "$reads" --calib-fit-grid 0,0.01 -o "$tmp/bf"
check "no results folder after a refused option" -- test ! -e "$tmp/bf"
echo "calib_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
