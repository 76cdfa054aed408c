#!/usr/bin/env bash
# test_outputs: output locations refused before any work, pictures written whole or not at all, no
# litter after a kill (temporaries, worker folders, workers), clean stops on SIGINT/SIGTERM that resume
# to the same results, damaged state files refused
set -u
XB=${1:?usage: test_outputs.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
set -m # background jobs get SIGINT like any process (without job control bash starts them ignoring it)

# Everything but the last column (seconds), for comparisons between runs.
no_temps() { test -z "$(find "$1" -name '*.tmp.*' 2>/dev/null)"; }
worker_dirs() { ls -d /tmp/xbarsim-worker-"$1"-* 2>/dev/null; }
# A PID no process has (for temporaries of a run that is gone).
dead_pid() { local p=4000000; while kill -0 "$p" 2>/dev/null; do p=$((p - 1)); done; echo "$p"; }

expect 0 'test accuracy' -- "$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 2 -o "$tmp/w.npz"
W=$tmp/w.npz

# --- 1. Output locations: exit 2 before any computation, naming the path and what to do ---------
: >"$tmp/afile"
for cmd in eval program netlist; do
    expect 2 "--out '': an empty output path" -- "$XB" $cmd --weights "$W" --dataset "$tmp/data" -o ""
    expect 2 "--out $tmp/afile: this is an existing file, not a folder" -- \
        "$XB" $cmd --weights "$W" --dataset "$tmp/data" -o "$tmp/afile"
    expect 2 "--out $tmp/afile/sub: $tmp/afile is a file, so no folder can be made under it" -- \
        "$XB" $cmd --weights "$W" --dataset "$tmp/data" -o "$tmp/afile/sub"
    # Read-only for root too (permission bits do not stop root): /proc takes no new files.
    expect 2 "--out /proc/xbarsim-test/out: nothing can be written in /proc" -- \
        "$XB" $cmd --weights "$W" --dataset "$tmp/data" -o /proc/xbarsim-test/out
done
check "eval -o '' wrote nothing into /" -- test ! -e /summary.csv
expect 2 "--out '': the weights file must end in .npz|an empty output path" -- "$XB" train --dataset "$tmp/data" -o ""
expect 2 "--out $tmp/afile/w.npz: its folder $tmp/afile: this is an existing file" -- \
    "$XB" train --dataset "$tmp/data" -o "$tmp/afile/w.npz"
mkdir -p "$tmp/dir.npz"
expect 2 "--out $tmp/dir.npz: this is a folder" -- "$XB" train --dataset "$tmp/data" -o "$tmp/dir.npz"
expect 2 "nothing can be written in /proc" -- "$XB" train --dataset "$tmp/data" -o /proc/xbarsim-test/w.npz
if [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$tmp/ro" && chmod 555 "$tmp/ro"
    expect 2 "nothing can be written in $tmp/ro" -- "$XB" eval --weights "$W" --dataset "$tmp/data" -o "$tmp/ro/out"
    chmod 755 "$tmp/ro"
else
    echo "test_outputs: running as root: a chmod 555 folder is writable to root; /proc stands in for it above"
fi

cat >"$tmp/ideal.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="ideal" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <chip tile="8x8"/>
  <perturb id="c2c" model="c2c" ar="1" sigma="0.5"/>
  <montecarlo trials="2" seed="5"/>
  <sweep>
    <axis param="c2c.sigma" values="0 1.5"/>
  </sweep>
  <output>
  </output>
</testbench>
XML
expect 2 "--out '': an empty output path" -- "$XB" run -q "$tmp/ideal.xml" -o ""
expect 2 "--out $tmp/afile: this is an existing file" -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/afile"
expect 2 "$tmp/afile is a file, so no folder" -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/afile/r"
expect 2 "nothing can be written in /sys|nothing can be written in /proc" -- \
    "$XB" run -q "$tmp/ideal.xml" -o /proc/xbarsim-test/r

# --- 5. Intervals of accuracies stay within [0, 1] (two trials: a wide t-interval) ---------------
expect 0 'ideal: 2 points' -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"
check "summary.csv: every accuracy interval within [0, 1], every dACC interval within [-1, 1]" -- \
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             { n++
               for (k in col) if (k ~ /^accuracy_(ci95|wilson)_(lo|hi)$/ && $col[k] != "" && ($col[k] < 0 || $col[k] > 1)) bad++
               for (k in col) if (k ~ /^delta_accuracy_ci95_(lo|hi)$/ && $col[k] != "" && ($col[k] < -1 || $col[k] > 1)) bad++
               if ($col["trials"] == 2 && $col["backend"] == "behavioral") wide++ }
             END { exit !(n > 0 && wide > 0 && !bad) }' "$tmp/r1/summary.csv"
expect 0 'mean' -- "$XB" eval --weights "$W" --dataset "$tmp/data" --backend behavioral --levels set1 \
    --perturb c2c:ar=1,sigma=1 --trials 2 -o "$tmp/e1"
check "mc_summary.csv: the accuracy interval within [0, 1], the dACC one within [-1, 1]" -- \
    awk -F, '$1 == "accuracy" { ok1 = $5 >= 0 && $6 <= 1 } $1 == "delta_accuracy" { ok2 = $5 >= -1 && $6 <= 1 }
             END { exit !(ok1 && ok2) }' "$tmp/e1/mc_summary.csv"

# --- 4. Damaged state files: exit 2 naming the file, the line, the field and the fix -------------
cp -r "$tmp/r1" "$tmp/r1.good"
state=$(ls "$tmp"/r1/state/points/*.csv | head -1)
cp "$state" "$tmp/state.good"
damage() { # sed-expression what-to-expect
    cp "$tmp/state.good" "$state"
    sed -i "$1" "$state"
    expect 2 "$state:$2.*delete it \(or run with --fresh\)" -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"
}
damage '3s/^0,\([0-9]*\),[0-9]*,/0,\1,1e300,/' '3: field 3 \(images\) is 1e\+300'
damage '3s/^0,\([0-9]*\),\([0-9]*\),\([0-9]*\),\([0-9]*\),\([0-9]*\),[^,]*,/0,\1,\2,\3,\4,\5,nan,/' \
    "3: field 7 \(correct_ideal\) is 'nan', not a finite number"
damage '4s/.*/garbage/' '4: field 1 \(trial\) is .garbage.'
damage '$s/,[^,]*$/,12x/' '4: field 15 \(seconds\) is .12x.'
cp "$tmp/state.good" "$state" && truncate -s -3 "$state"
expect 2 "$state:4: .*cut short.*delete it" -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"
cp "$tmp/state.good" "$state" && sed -i '4d' "$state"
expect 2 "$state:3: 1 trial, the point has 2" -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"
cp "$tmp/state.good" "$state"
expect 0 'ideal: 2 points \(0 computed' -- "$XB" run -q "$tmp/ideal.xml" -o "$tmp/r1"

# --- 3a. Stale temporaries: removed on resume when their process is gone, kept while it lives -----
dead=$(dead_pid)
: >"$state.tmp.$dead"
: >"$tmp/r1/points.csv.tmp.$dead"
sleep 300 & live=$!
: >"$state.tmp.$live"
expect 0 'removed 2 temporaries left by a stopped run' -- "$XB" run "$tmp/ideal.xml" -o "$tmp/r1"
check "the temporaries of a dead process are gone" -- test ! -e "$state.tmp.$dead" -a ! -e "$tmp/r1/points.csv.tmp.$dead"
check "the temporary of a live process is kept" -- test -e "$state.tmp.$live"
kill "$live"; wait "$live" 2>/dev/null
rm -f "$state.tmp.$live"

# --- 2. Pictures: drawn to temporaries, renamed only when gnuplot succeeded and they are whole -----
mkdir -p "$tmp/fake-half" "$tmp/fake-half0" "$tmp/fake-ok"
fake() { # folder exit-status whole(1|0)
    cat >"$1/gnuplot" <<SH
#!/usr/bin/env bash
# A stand-in for gnuplot: answers the capability probe, writes the pictures the -e line names.
svg=; png=
for a in "\$@"; do
    case \$a in *xbarsim_svg*) svg=\$(sed -n "s/.*xbarsim_svg = '\([^']*\)'.*/\1/p" <<<"\$a")
                               png=\$(sed -n "s/.*xbarsim_png = '\([^']*\)'.*/\1/p" <<<"\$a") ;; esac
done
[ -z "\$svg" ] && exit 0
if [ $3 = 1 ]; then
    printf '<svg xmlns="http://www.w3.org/2000/svg"></svg>\n' >"\$svg"
    printf '\x89PNG\r\n\x1a\n\0\0\0\0IEND\xaeB\x60\x82' >"\$png"
else
    printf '<svg xmlns="http://www.w3.org/2000/svg"><g>' >"\$svg"
    printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"\$png"
fi
exit $2
SH
    chmod +x "$1/gnuplot"
}
fake "$tmp/fake-half" 1 0
fake "$tmp/fake-half0" 0 0
fake "$tmp/fake-ok" 0 1
for f in half half0; do
    expect 0 'gnuplot could not draw' -- env PATH="$tmp/fake-$f:$PATH" "$XB" program -q --weights "$W" \
        --dataset "$tmp/data" --levels set3 -o "$tmp/p-$f"
    check "fake-$f: the data and scripts are written" -- test -s "$tmp/p-$f/pulses-plot.csv" -a -s "$tmp/p-$f/pulses-plot.gp"
    check "fake-$f: no picture is left" -- test -z "$(ls "$tmp/p-$f" | grep -E '\.(svg|png)')"
    check "fake-$f: no temporary is left" -- no_temps "$tmp/p-$f"
done
expect 0 'programmed' -- env PATH="$tmp/fake-ok:$PATH" "$XB" program -q --weights "$W" --dataset "$tmp/data" \
    --levels set3 -o "$tmp/p-ok"
check "fake-ok: both pictures renamed into place" -- test -s "$tmp/p-ok/pulses-plot.svg" -a -s "$tmp/p-ok/pulses-plot.png"
check "fake-ok: no temporary is left" -- no_temps "$tmp/p-ok"

# --- 3b. Kills and stops during spice runs: no litter, and resuming gives the same results --------
cat >"$tmp/circ.xml" <<'XML'
<?xml version="1.0"?>
<testbench name="circ" version="1">
  <dataset name="data" calib="20"/>
  <network hidden="4" epochs="30" batch="4" lr="0.1" seed="3"/>
  <chip tile="8x8" program="igvva"/>
  <levels id="q" spec="device"/>
  <spice jobs="2" chunk="1"/>
  <backends use="behavioral spice"/>
  <montecarlo trials="2" seed="5"/>
  <sweep>
    <axis param="spice.r-row" values="0 1 2 3 4 5"/>
  </sweep>
  <output>
  </output>
</testbench>
XML
expect 0 'circ: 6 points \(6 computed' -- "$XB" run -q "$tmp/circ.xml" -o "$tmp/ref"
same_results() {
    same_numbers "$tmp/ref/points.csv" "$1/points.csv" && cmp -s "$tmp/ref/summary.csv" "$1/summary.csv" &&
        cmp -s "$tmp/ref/predictions.csv" "$1/predictions.csv"
}
# Start a run in the background and wait until it has finished a point and has workers running.
start_run() { # out-folder
    "$XB" run "$tmp/circ.xml" -o "$1" >"$1.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 2400; i++)); do # up to 2 minutes on a loaded machine
        if ls "$1"/state/points/ 2>/dev/null | grep -qE '^[0-9a-f]+\.csv$' && [ -n "$(worker_dirs "$pid")" ]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}
# No worker folder of pid and no worker of it still running (they end with their parent).
no_litter() { # pid out-folder
    local i
    for ((i = 0; i < 600; i++)); do # workers notice their parent's end within 30 s even on a loaded machine
        [ -z "$(worker_dirs "$1")" ] && ! pgrep -f -- "-o $2\$" >/dev/null && break
        sleep 0.05
    done
    [ -z "$(worker_dirs "$1")" ] && ! pgrep -f -- "-o $2\$" >/dev/null
}

# kill -9 of the main process: the workers end and remove their folders; the resume removes the
# temporaries the run left and finishes with the same numbers.
mkdir -p "$tmp/k9"
check "kill -9: the run got going" -- start_run "$tmp/k9"
kill -9 "$pid"; wait "$pid" 2>/dev/null
# No worker outlives it. A folder can: the parent makes a worker's folder before the fork, so a SIGKILL
# between the two leaves a folder no worker will remove; the next executor removes such folders of dead
# parents (src/sched/local.c), checked after the resume below.
no_worker_left() { # out-folder
    local i
    for ((i = 0; i < 600; i++)); do ! pgrep -f -- "-o $1\$" >/dev/null && return 0; sleep 0.05; done
    return 1
}
check "kill -9: no worker left" -- no_worker_left "$tmp/k9"
check "kill -9: the run was stopped before its end" -- test ! -e "$tmp/k9/summary.csv"
expect 0 'circ: 6 points \([1-5] computed' -- "$XB" run -q "$tmp/circ.xml" -o "$tmp/k9"
check "kill -9: the resume removed the killed run's worker folders" -- test -z "$(worker_dirs "$pid")"
check "kill -9: no temporary left after the resume" -- no_temps "$tmp/k9"
check "kill -9: the resumed results equal an uninterrupted run's" -- same_results "$tmp/k9"

# SIGTERM (143) and SIGINT (130): workers stopped, temporaries and folders removed, the resume command
# printed; running it finishes with the same numbers.
for sig in TERM INT; do
    out=$tmp/s$sig
    mkdir -p "$out"
    check "SIG$sig: the run got going" -- start_run "$out"
    kill -s $sig "$pid"; wait "$pid"; rc=$?
    want=$([ $sig = TERM ] && echo 143 || echo 130)
    check "SIG$sig: exit $want (got $rc)" -- test "$rc" -eq "$want"
    expect 0 "stopped by SIG$sig; worker processes stopped" -- cat "$out.log"
    check "SIG$sig: no temporary, no worker folder, no worker left" -- no_litter "$pid" "$out"
    check "SIG$sig: no temporary left" -- no_temps "$out"
    resume=$(grep -A1 'resume with:' "$out.log" | tail -1)
    expect 0 'circ: 6 points \([1-5] computed' -- bash -c "$resume"
    check "SIG$sig: the resumed results equal an uninterrupted run's" -- same_results "$out"
done

# eval --backend spice stopped by SIGTERM: no worker folders either.
"$XB" program -q --weights "$W" --dataset "$tmp/data" --tile 8x8 -o "$tmp/chip" >/dev/null 2>&1
"$XB" eval --weights "$W" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --tile 8x8 --jobs 2 \
    --chunk 1 -o "$tmp/ev" >"$tmp/ev.log" 2>&1 &
pid=$!
for ((i = 0; i < 2400; i++)); do [ -n "$(worker_dirs "$pid")" ] && break; sleep 0.05; done
check "eval: workers started" -- test -n "$(worker_dirs "$pid")"
kill -s TERM "$pid"; wait "$pid"; rc=$?
check "eval SIGTERM: exit 143 (got $rc)" -- test "$rc" -eq 143
check "eval SIGTERM: no worker folder, no worker left" -- no_litter "$pid" "$tmp/ev"
check "eval SIGTERM: no temporary left" -- no_temps "$tmp/ev"

# Folders of workers whose parent died without cleaning up are removed when the next pool starts.
dead=$(dead_pid)
mkdir -p "/tmp/xbarsim-worker-$dead-AbCdEf/sub"
expect 0 'circ: 6 points \(6 computed' -- "$XB" run -q "$tmp/circ.xml" -o "$tmp/ref" --fresh
check "a dead parent's worker folder was removed" -- test ! -e "/tmp/xbarsim-worker-$dead-AbCdEf"

echo "test_outputs: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
