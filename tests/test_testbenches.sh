#!/usr/bin/env bash
# test_testbenches: every shipped testbench runs in --quick mode on the real data sets and writes its results
set -u
XB=${1:?usage: test_testbenches.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)

# The values of a named column of a CSV file (quoted fields hold commas: hidden sizes, level lists).
csv_column() {
    awk -F, -v name="$1" '{ gsub(/"[^"]*"/, "Q") } NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
                          { print $c }' "$2"
}

for tb in "$src"/testbenches/*.xml; do
    name=$(basename "$tb" .xml)
    out="$tmp/$name"
    expect 0 "^$name: [0-9]+ points" -- "$XB" run --quick -q "$tb" -o "$out"
    points=$("$XB" run --list "$tb" | head -1 | sed -E 's/.*: ([0-9]+) points?/\1/')
    if grep -q '<programming' "$tb"; then
        # A programming study: per point, trial, method and level a row; every cell of the first trial
        # in cells.csv; both methods' CDFs in one figure.
        check "$name: programming.csv has rows for every point" -- \
            test "$(awk -F, 'NR > 1 { print $1 }' "$out/programming.csv" | sort -u | wc -l)" -eq "$points"
        check "$name: the cells of point 1" -- test -s "$out/programming/point-1/cells.csv"
        check "$name: the CDF figure of point 1" -- test -s "$out/plots/cdf-point-1.gp"
        golden_put "$out/programming.csv" "$tmp/golden/$name/programming.csv"
        continue
    fi
    # Backends can differ between grids (a behavioral grid and a circuit grid): a point's are those
    # with accuracies in points.csv.
    rows=$(awk -F, '{ gsub(/"[^"]*"/, "Q") } NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
                    { n = 1 + ($c["accuracy_behavioral"] != "") + ($c["accuracy_spice"] != "")
                      if (n > m[$c["point"]]) m[$c["point"]] = n }
                    END { for (p in m) { s += m[p]; k++ } print s "/" k }' "$out/points.csv")
    check "$name: summary.csv has a row per point and backend ($rows rows/points)" -- \
        test "$(($(wc -l <"$out/summary.csv") - 1))/$points" = "$rows"
    check "$name: no accuracy is missing" -- test -z "$(csv_column accuracy_mean "$out/summary.csv" | grep -vE '^[0-9.e+-]+$')"
    # Every analysis the testbench declares has its table, every plot its script.
    for table in $(grep -oE '<(midpoint|spearman|kruskal) name="[^"]+"' "$tb" | sed -E 's/.*name="([^"]+)"/\1/'); do
        check "$name: $table.csv has results" -- test "$(wc -l <"$out/$table.csv")" -ge 2
    done
    for plot in $(grep -oE '<plot name="[^"]+"' "$tb" | sed -E 's/.*name="([^"]+)"/\1/'); do
        check "$name: a gnuplot script for $plot" -- compgen -G "$out/plots/$plot*.gp" >/dev/null
    done
    check "$name: an example netlist" -- compgen -G "$out/example/L*_T*.cir" >/dev/null
    # The numeric results (every top-level CSV: points, summary, predictions, analysis tables), for the
    # golden comparison below.
    for f in "$out"/*.csv; do golden_put "$f" "$tmp/golden/$name/$(basename "$f")"; done
done
# The spice-derived numbers are those of the linked libngspice and its default solver (they move at ~1e-12
# between Sparse 1.3 and KLU): a build against another library fails here first, naming both.
mkdir -p "$tmp/golden" && "$XB" --version | awk '$1 == "ngspice" { print "spice numbers of libngspice " $2 " (its default solver; another library: XB_GOLDEN_UPDATE=1, commit saying why)" }' >"$tmp/golden/ngspice.txt"
# Behaviour stays as it was: the quick runs reproduce tests/golden/testbenches exactly.
golden_compare "$src/tests/golden/testbenches" "$tmp/golden" "testbenches"
# The spice study compares the backends input by input and draws its circuit pictures.
check "circuit-vs-behavioral: predictions per input" -- test -s "$tmp/circuit-vs-behavioral/predictions.csv"
check "circuit-vs-behavioral: IR-drop map" -- test -s "$tmp/circuit-vs-behavioral/example/plots/ir-drop.gp"
check "circuit-vs-behavioral: CDF of programmed read currents" -- \
    test -s "$tmp/circuit-vs-behavioral/example/plots/cdf-read-currents.gp"

echo "test_testbenches: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
