#!/usr/bin/env bash
# test_programming_study: testbenches with <programming>: both write-verify methods on the device's levels,
# the per-level statistics against the per-cell files, per-method seeding, resuming, damaged state, errors
set -u
XB=${1:?usage: test_programming_study.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)

tb() { # NAME BODY: a testbench file $tmp/NAME.xml
    printf '<?xml version="1.0"?>\n<testbench name="%s" version="1">\n%s\n</testbench>\n' "$1" "$2" >"$tmp/$1.xml"
}

# Per level of cells.csv (cell i has level i mod 8), the cells, landed cells, mean pulses and mean and
# sample standard deviation of the reads of METHOD, as "level cells ok mean_pulses mean_i std_i" lines.
cells_levels() { # CELLS METHOD
    awk -F, -v m="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { l = $c["level"]; n[l]++; ok[l] += $c["status_" m] == "ok"; p[l] += $c["pulses_" m]
          x = $c["i_read_A_" m]; s[l] += x; v[l, n[l]] = x }
        END { for (l = 0; l < 8; l++) { mu = s[l] / n[l]; q = 0
                  for (k = 1; k <= n[l]; k++) q += (v[l, k] - mu) ^ 2
                  printf "%d %d %d %.12g %.12g %.12g\n", l, n[l], ok[l], p[l] / n[l], mu, sqrt(q / (n[l] - 1)) } }' "$1"
}
# The same from programming.csv's rows of METHOD, trial 0.
csv_levels() { # PROGRAMMING_CSV METHOD
    awk -F, -v m="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $c["method"] == m && $c["trial"] == 0 {
            printf "%d %d %d %.12g %.12g %.12g\n", $c["level"], $c["cells"], $c["ok"], $c["mean_pulses"],
                   $c["mean_i_read_A"], $c["std_i_read_A"] }' "$1"
}

# Statistical only, a sweep of the SET spread, two trials: the rows agree with the cells they summarize.
tb stat '<programming cells="16" methods="statistical"/>
<montecarlo trials="2" seed="3"/>
<sweep><axis param="device.sigma-c2c" values="0.02 0.2"/></sweep>'
expect 0 'stat: 2 points \(2 computed, 4 trials\)' -- "$XB" run -q "$tmp/stat.xml" -o "$tmp/s1"
check "programming.csv: a row per point, trial and level (2 x 2 x 8)" -- test "$(($(wc -l <"$tmp/s1/programming.csv") - 1))" -eq 32
check "point 1: per-level cells, landed, mean pulses, mean and spread of reads as in cells.csv (12 digits)" -- \
    cmp -s <(csv_levels <(awk -F, 'NR == 1 || $1 == 1' "$tmp/s1/programming.csv") statistical) \
           <(cells_levels "$tmp/s1/programming/point-1/cells.csv" statistical)
check "a ten times wider SET spread overshoots more: more attempts per cell (both trials)" -- \
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
             { s[$c["point"]] += $c["mean_attempts"] } END { exit !(s[2] > s[1] && s[1] >= 16) }' "$tmp/s1/programming.csv"
check "the trials have their own seeds" -- \
    test "$(awk -F, 'NR > 1 { print $5 }' "$tmp/s1/programming.csv" | sort -u | wc -l)" -eq 2
check "figures: the CDF and the pulse histogram of each point" -- \
    test -s "$tmp/s1/plots/cdf-point-2.gp" -a -s "$tmp/s1/plots/pulses-statistical-point-1.gp"
check "run.json says it is a programming study and names the gap model" -- \
    grep -q '"study": "programming"' "$tmp/s1/run.json"

# Resuming: finished points are reused, with the same numbers.
cp "$tmp/s1/programming.csv" "$tmp/first.csv"
expect 0 'stat: 2 points \(0 computed, 4 trials\)' -- "$XB" run -q "$tmp/stat.xml" -o "$tmp/s1"
check "a resumed run writes the same programming.csv" -- cmp -s "$tmp/first.csv" "$tmp/s1/programming.csv"
# A state file edited by hand is refused with its line, and the fix.
state=$(ls "$tmp"/s1/state/points/*.programming.csv | head -1)
sed -i '4s/,statistical,/,statistically,/' "$state"
expect 2 'programming.csv:4: field .* damaged.*--fresh' -- "$XB" run -q "$tmp/stat.xml" -o "$tmp/s1"
sed -i '4s/,statistically,1,/,statistical,7,/' "$state"
expect 2 'programming.csv:4: row of trial 0, statistical, level 7 where trial 0, statistical, level 1 belongs' -- \
    "$XB" run -q "$tmp/stat.xml" -o "$tmp/s1"
sed -i '4s/,statistical,7,/,statistical,1,/' "$state"
head -c -1 "$state" >"$tmp/cut" && cp "$tmp/cut" "$state"
expect 2 'does not end in a line break' -- "$XB" run -q "$tmp/stat.xml" -o "$tmp/s1"
expect 0 'stat: 2 points \(2 computed' -- "$XB" run -q --fresh "$tmp/stat.xml" -o "$tmp/s1"
check "--fresh recomputes the same numbers" -- same_numbers "$tmp/first.csv" "$tmp/s1/programming.csv"

# Both methods: each draws from the trial's seed, so the statistical cells do not depend on whether the
# circuit ran too; the circuit rows summarize the circuit's cells.
tb both '<programming cells="2"/>'
tb one '<programming cells="2" methods="statistical"/>'
expect 0 'both: 1 points \(1 computed, 1 trials\)' -- "$XB" run -q "$tmp/both.xml" -o "$tmp/b"
expect 0 'one: 1 points' -- "$XB" run -q "$tmp/one.xml" -o "$tmp/o"
check "statistical cells are the same with and without the circuit method" -- \
    cmp -s <(cut -d, -f1-8 "$tmp/b/programming/point-1/cells.csv") <(cut -d, -f1-8 "$tmp/o/programming/point-1/cells.csv")
check "circuit rows: per-level statistics as in cells.csv" -- \
    cmp -s <(csv_levels "$tmp/b/programming.csv" circuit) <(cells_levels "$tmp/b/programming/point-1/cells.csv" circuit)
check "circuit: every cell lands within the window" -- \
    test "$(awk -F, 'NR > 1 && $5 == "circuit" { s += $9 } END { print s }' "$tmp/b/programming.csv")" -eq 16
check "the figure of both methods' CDFs" -- grep -q circuit "$tmp/b/plots/cdf-point-1.gp"
check "ngspice's output is kept, per worker" -- test -s "$tmp/b/logs/programming-1.log"
# The cells are shared among workers, each cell with its own stream: one worker gives the same cells.
expect 0 'both: 1 points \(1 computed' -- "$XB" run -q --jobs 1 "$tmp/both.xml" -o "$tmp/b1"
check "circuit cells with one worker equal those with two" -- \
    cmp -s "$tmp/b/programming/point-1/cells.csv" "$tmp/b1/programming/point-1/cells.csv"
# A gap model ngspice refuses: the worker's error, with its log, exit 2, no result.
mkdir -p "$tmp/dev"
cp "$src/models/nmos_l1.lib" "$src/models/rram.lib" "$tmp/dev/"
sed 's/^\.subckt rram_gap_dyn.*/.subckt rram_gap_dyn te be gi dea\nB1 te be I=undefined_function_of(V(te))/' \
    "$src/models/rram_gap.lib" >"$tmp/dev/rram_gap.lib"
cp "$src/models/hfo2_1t1r.xml" "$tmp/dev/device.xml"
cp "$src/models/device.xsd" "$tmp/dev/" 2>/dev/null
tb bad '<device file="dev/device.xml"/><programming cells="2" methods="circuit"/>'
expect 2 'point 1: circuit programming \(worker 1; ngspice.s output: .*programming-1.log\)' -- \
    "$XB" run -q --jobs 1 "$tmp/bad.xml" -o "$tmp/bad"
check "no programming.csv after the failure" -- test ! -e "$tmp/bad/programming.csv"

# Errors name the file, the line and what is allowed, exit 2, before anything runs.
tb e1 '<dataset name="mnist"/><programming/>'
expect 2 'e1.xml:3: element <dataset> in a programming study.*allowed beside it: device, montecarlo' -- "$XB" run "$tmp/e1.xml" -o "$tmp/e"
tb e2 '<programming cells="1"/>'
expect 2 "e2.xml:3: parameter programming.cells = '1': allowed: a whole number from 2" -- "$XB" run "$tmp/e2.xml" -o "$tmp/e"
tb e3 '<programming methods="circuit magic"/>'
expect 2 "programming.methods = 'circuit magic': allowed: statistical and/or circuit" -- "$XB" run "$tmp/e3.xml" -o "$tmp/e"
tb e4 '<programming methods="circuit circuit"/>'
expect 2 "allowed: statistical and/or circuit, each once" -- "$XB" run "$tmp/e4.xml" -o "$tmp/e"
tb e5 '<programming/><sweep><axis param="network.hidden" values="10 20"/></sweep>'
expect 2 "e5.xml:3: parameter 'network.hidden' in a programming study.*allowed: device, programming and montecarlo" -- \
    "$XB" run "$tmp/e5.xml" -o "$tmp/e"
tb e6 '<sweep><axis param="programming.cells" values="10 20"/></sweep>'
expect 2 "parameter 'programming.cells' without a <programming> element" -- "$XB" run "$tmp/e6.xml" -o "$tmp/e"
tb e7 '<programming/><output><plot x="device.d2d"/></output>'
expect 2 "e7.xml:3: element <plot> in a programming study.*allowed: no <output>" -- "$XB" run "$tmp/e7.xml" -o "$tmp/e"
tb e8 '<device file="nowhere.xml"/><programming/>'
expect 2 'nowhere.xml' -- "$XB" run "$tmp/e8.xml" -o "$tmp/e"
check "nothing was written for the refused testbenches" -- test ! -e "$tmp/e/programming.csv"

echo "test_programming_study: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
