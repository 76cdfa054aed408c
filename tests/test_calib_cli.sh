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
echo "calib_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
