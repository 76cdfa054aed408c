#!/usr/bin/env bash
# test_cli: the command line as a user meets it: exit codes, messages, files written (real binary)
set -u
XB=${1:?usage: test_cli.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd) # the source tree: models/

expect 2 'usage: xbarsim' -- "$XB"
expect 2 "unknown command 'frobnicate'" -- "$XB" frobnicate
expect 0 'usage: xbarsim train' -- "$XB" help train
expect 0 'usage: xbarsim eval' -- "$XB" eval --help
expect 0 'ir_drop.csv' -- "$XB" eval --help
expect 0 'current deficit' -- "$XB" eval --help
expect 2 "unknown command 'nope'" -- "$XB" help nope
expect 0 'GSL +[0-9]' -- "$XB" --version
expect 0 'ngspice' -- "$XB" --version
expect 2 "--epochs 'abc'" -- "$XB" train --epochs abc
expect 2 "--hidden 'x'" -- "$XB" train --hidden x
expect 2 "--activation 'tanh'" -- "$XB" train --activation tanh
expect 2 "unknown option '--bogus'" -- "$XB" train --bogus
expect 2 'needs a value' -- "$XB" train --epochs
expect 2 'must end in .npz' -- "$XB" train --dataset "$tmp/data" -o "$tmp/w.bin"
expect 2 '--weights is required' -- "$XB" eval
expect 2 "--backend 'bogus'" -- "$XB" eval --weights x.npz --backend bogus
expect 2 "$tmp/missing.npz" -- "$XB" eval --weights "$tmp/missing.npz" --dataset "$tmp/data"
expect 2 "$tmp/nowhere" -- "$XB" data --dataset "$tmp/nowhere"
expect 0 'train: 60 images of 4x4, 3 classes' -- "$XB" data --dataset "$tmp/data"

# Train and evaluate end to end on the tiny set; every promised file appears, no temporary is left.
expect 0 'test accuracy 100.00%' -- "$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 40 --batch 4 \
    --seed 3 -o "$tmp/out/w.npz"
for f in w.npz w.train.csv w.json; do
    check "$f not written" -- test -s "$tmp/out/$f"
done
expect 0 '"seed": 3' -- cat "$tmp/out/w.json"
expect 0 'accuracy 100.00% \(30/30' -- "$XB" eval -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" -o "$tmp/ev"
expect 0 'ideal,30,30,1,' -- cat "$tmp/ev/summary.csv"
expect 0 '^index,label,pred_ideal$' -- head -1 "$tmp/ev/predictions.csv"
expect 0 'sha256' -- cat "$tmp/ev/run.json"
if find "$tmp" -name '*.tmp.*' | grep -q .; then fail=$((fail + 1)); echo "FAIL: temporary files left"; else pass=$((pass + 1)); fi

# Same seed, same threads: identical weight files.
"$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 3 --seed 3 --threads 1 -o "$tmp/a.npz" >/dev/null
"$XB" train -q --dataset "$tmp/data" --hidden 4 --epochs 3 --seed 3 --threads 1 -o "$tmp/b.npz" >/dev/null
check "same seed, different files" -- cmp -s "$tmp/a.npz" "$tmp/b.npz"

# The chip: program the tiny network with IGVVA, evaluate the conductance map with the behavioral model.
expect 0 'programmed [0-9]+ of [0-9]+ cells \(igvva, device\[9\] levels\).* 0 failed' -- \
    "$XB" program -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 -o "$tmp/chip"
for f in chip.npz cells.csv tiles.csv cdf.csv pulses.csv program.json; do
    check "program did not write $f" -- test -s "$tmp/chip/$f"
done
expect 0 '^tile,layer,row_tile,col_tile' -- head -1 "$tmp/chip/tiles.csv"

# --version names the linked libraries' versions, asked at run time; the JSON sidecars say the same.
expect 0 'ngspice +[0-9]+ \(the linked libngspice, started to ask; built against [0-9]+\)' -- "$XB" --version
expect 0 'libxml2 +[0-9]+\.[0-9]+\.[0-9]+ \(built against [0-9.]+\)' -- "$XB" --version
# A run that solved no circuit starts no library to ask: run.json says so; a spice run's (below) names
# the version its own workers reported.
expect 0 '"ngspice": null' -- cat "$tmp/ev/run.json"
expect 0 '"ngspice_note": "no circuit was solved in this run"' -- cat "$tmp/ev/run.json"
expect 0 '"libxml2_build": "[0-9.]+"' -- cat "$tmp/ev/run.json"

# program draws the CDF of read currents per level and the pulse histogram (data, script, pictures).
for f in cdf-plot.csv cdf-plot.gp pulses-plot.csv pulses-plot.gp; do
    check "program wrote $f" -- test -s "$tmp/chip/$f"
done
expect 0 '^# series 0: I_trg = [0-9.]+ uA \([0-9]+ cells\)' -- sed -n 2p "$tmp/chip/cdf-plot.csv"
if command -v gnuplot >/dev/null; then
    for f in cdf-plot.svg cdf-plot.png pulses-plot.svg pulses-plot.png; do
        check "program drew $f" -- test -s "$tmp/chip/$f"
    done
fi
expect 0 'gnuplot \(with svg and pngcairo\) was not found' -- env PATH=/nonexistent "$XB" program -q \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --levels device --tile 8x8 -o "$tmp/chip-nogp"
check "without gnuplot: the script, no picture" -- \
    test -s "$tmp/chip-nogp/cdf-plot.gp" -a ! -e "$tmp/chip-nogp/cdf-plot.svg"

# Weights as a list of .npy files. npy FILE SHAPE COUNT [DESCR]: COUNT values 0.5 (<f8) or 1 (<i4).
npy() {
    local f=$1 shape=$2 n=$3 descr=${4:-<f8} hdr hl tot i
    hdr="{'descr': '$descr', 'fortran_order': False, 'shape': $shape, }"
    hl=${#hdr}; tot=$(( (10 + hl + 1 + 63) / 64 * 64 ))
    { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(((tot - 10) & 255)))\\x$(printf %02x $(((tot - 10) >> 8)))"
      printf '%s' "$hdr"; printf '%*s' $((tot - 10 - hl - 1)) ''; printf '\n'
      for ((i = 0; i < n; i++)); do
          if [ "$descr" = '<i4' ]; then printf '\x01\x00\x00\x00'; else printf '\x00\x00\x00\x00\x00\x00\xe0\x3f'; fi
      done; } >"$f"
}
mkdir -p "$tmp/npy"
npy "$tmp/npy/W1.npy" '(16, 3)' 48; npy "$tmp/npy/b1.npy" '(3,)' 3
npy "$tmp/npy/b1bad.npy" '(4,)' 4; npy "$tmp/npy/W1int.npy" '(16, 3)' 48 '<i4'
expect 0 'programmed' -- "$XB" program -q --weights "$tmp/npy/W1.npy,$tmp/npy/b1.npy" --dataset "$tmp/data" \
    --levels set3 --tile 8x8 -o "$tmp/chip-npy"
expect 0 '"role": "weights:b1"' -- cat "$tmp/chip-npy/program.json"
expect 0 "\"sha256\": \"$(sha256sum "$tmp/npy/b1.npy" | cut -c1-64)\"" -- cat "$tmp/chip-npy/program.json"
expect 2 "$tmp/npy/b1bad.npy: b1 has shape \\(4,\\)" -- "$XB" program --weights "$tmp/npy/W1.npy,$tmp/npy/b1bad.npy" \
    --dataset "$tmp/data" --tile 8x8 -o "$tmp/chip-bad"
expect 2 "$tmp/npy/W1int.npy: W1 has dtype '<i4', expected float32" -- "$XB" eval --weights \
    "$tmp/npy/W1int.npy,$tmp/npy/b1.npy" --dataset "$tmp/data"
expect 0 'results ->' -- "$XB" eval -q --weights "$tmp/npy/W1.npy,$tmp/npy/b1.npy" --dataset "$tmp/data" \
    -o "$tmp/ev-npy"
expect 0 '"role": "weights:W1"' -- cat "$tmp/ev-npy/run.json"

# abits:B: asymmetric levels from each layer's own range.
expect 0 'programmed [0-9]+ of [0-9]+ cells \(igvva, abits:3 levels\)' -- "$XB" program -q --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --levels abits:3 --tile 8x8 -o "$tmp/chip-abits"
expect 2 'level set "abits:17": bits must be an integer in 1..16' -- "$XB" eval --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --backend behavioral --levels abits:17

# Device-level trial perturbations on conductances.
expect 0 '5 trials: accuracy' -- "$XB" eval -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend behavioral \
    --chip "$tmp/chip/chip.npz" --perturb d2d:sigma=0.1 --perturb stuck:lrs=0.01,hrs=0.02@1 --trials 5 -o "$tmp/evdev"
expect 0 '"stuck:lrs=0.01,hrs=0.02@1"' -- cat "$tmp/evdev/run.json"
expect 2 'lrs \+ hrs = 0.6 \+ 0.5 exceeds 1' -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data" \
    --backend behavioral --perturb stuck:lrs=0.6,hrs=0.5 --trials 2
expect 2 'perturbation "d2d:sigma=-1": .*sigma = -1 must be finite and >= 0' -- "$XB" eval --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --backend behavioral --perturb d2d:sigma=-1 --trials 2
expect 0 'behavioral accuracy 100.00% \(30/30' -- "$XB" eval -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" \
    --backend behavioral --chip "$tmp/chip/chip.npz" -o "$tmp/evb"
expect 0 'ideal,30,30,1,' -- cat "$tmp/evb/summary.csv"
expect 0 '^index,label,pred_ideal,pred_behavioral$' -- head -1 "$tmp/evb/predictions.csv"
expect 0 '5 trials: accuracy' -- "$XB" eval -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" \
    --backend behavioral --perturb c2c:ar=0.5,sigma=0.3@1 --perturb additive:sigma=0.1 --trials 5 --adc-bits 6 -o "$tmp/evmc"
expect 0 '^trial,accuracy,delta_accuracy$' -- head -1 "$tmp/evmc/trials.csv"
expect 0 '^delta_accuracy,5,' -- cat "$tmp/evmc/mc_summary.csv"
expect 2 "level set \"bogus\"" -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend behavioral --levels bogus
expect 2 "level sets 'set1/set2/set3': 3 given for a network of 2 layers" -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend behavioral --levels set1/set2/set3
expect 2 'tile width 7 is odd' -- "$XB" program --weights "$tmp/out/w.npz" --dataset "$tmp/data" --tile 8x7
expect 2 "--tile '8'" -- "$XB" program --weights "$tmp/out/w.npz" --tile 8
expect 2 "--mapping 'x'" -- "$XB" program --weights "$tmp/out/w.npz" --mapping x
expect 2 "layers after '@'" -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend behavioral --perturb mult:alpha=0.1@3
expect 2 'need --backend behavioral' -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data" --trials 3
expect 2 "$tmp/out/w.npz: array chip is missing" -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend behavioral --chip "$tmp/out/w.npz"
printf '<device>\n  <bogus/>\n</device>\n' >"$tmp/bad.xml"
expect 2 "bad.xml:[0-9]+" -- "$XB" program --weights "$tmp/out/w.npz" --dataset "$tmp/data" --device "$tmp/bad.xml"

# Netlists: the real `ngspice -b` on a generated deck prints the currents the library driver reports.
# The program must be the linked library's version (the ngspice and libngspice0 packages of one release):
# any other compares two simulators. The deck prints 12 digits. 1T1R cells converge by Newton iteration
# (RELTOL 1e-3 of the update), so allow 1e-6 relative. Linear cells: the review deck names no solver, so
# `ngspice -b` runs Sparse 1.3 (the default through 46) on one op, at round-off; the library solved the
# same input with its default, KLU from 43 on, on pwl rows, whose error is ~1e-9 (docs/circuit.md): 1e-8
# with KLU, 1e-10 with Sparse 1.3 alone.
lib_ngspice=$("$XB" --version | awk '$1 == "ngspice" { print $2 }')
ngspice_matches_library() { # prints why not
    local prog
    prog=$(ngspice -v 2>&1 | sed -n 's/.*ngspice-\([0-9][0-9]*\).*/\1/p' | head -1)
    [ -n "$prog" ] && [ "$prog" = "$lib_ngspice" ] && return 0
    echo "the ngspice program on PATH ($(command -v ngspice || echo none)) is version ${prog:-unknown}, the linked" \
        "libngspice $lib_ngspice: install the ngspice package of the library's version (scripts/setup does)"
    return 1
}
# The check itself: a program of another version is caught.
mkdir -p "$tmp/fake-ngspice"
printf '#!/bin/sh\necho "** ngspice-39 : Circuit level simulation program"\n' >"$tmp/fake-ngspice/ngspice"
chmod +x "$tmp/fake-ngspice/ngspice"
expect 1 'is version 39, the linked libngspice [0-9]+' -- env PATH="$tmp/fake-ngspice:$PATH" bash -c \
    "lib_ngspice=$lib_ngspice; $(declare -f ngspice_matches_library); ngspice_matches_library"
lin_tol=1e-10
"$XB" --version | grep -q 'ngspice  *\(4[3-9]\|[5-9][0-9]\)' && lin_tol=1e-8
compare_deck() { # deck expected.csv tolerance
    ngspice_matches_library || return 1
    ngspice -b "$1" 2>/dev/null | awk -v expfile="$2" -v tol="$3" '
        BEGIN { FS = ","; getline hdr < expfile; getline row < expfile; n = split(row, want, ","); FS = " " }
        /^i\(vsense[0-9]+\) = / { j = substr($1, 9) + 0; got = $3 + 0; w = want[j + 3]; seen++
            d = got - w; if (d < 0) d = -d; a = w < 0 ? -w : w
            if (d > tol * a + 1e-15) { bad++; printf "column %d: ngspice %s, library %s\n", j, $3, w } }
        END { if (seen != n - 2 || bad) { printf "%d columns compared of %d, %d differ\n", seen, n - 2, bad; exit 1 } }'
}
expect 0 'L1_T0_0.cir \(8 x 8 tile, 1 input\)' -- "$XB" netlist --chip "$tmp/chip/chip.npz" --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --input 4 -o "$tmp/decks"
if compare_deck "$tmp/decks/L1_T0_0.cir" "$tmp/decks/L1_T0_0.cir.expected.csv" 1e-6; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: ngspice -b on the 1T1R deck disagrees with the library"; fi
"$XB" netlist --chip "$tmp/chip/chip.npz" --weights "$tmp/out/w.npz" --dataset "$tmp/data" --input 2 --cells linear \
    --r-row 3 --r-col 2 -o "$tmp/decks-lin" >/dev/null
if compare_deck "$tmp/decks-lin/L1_T0_0.cir" "$tmp/decks-lin/L1_T0_0.cir.expected.csv" "$lin_tol"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: ngspice -b on the linear deck disagrees with the library"; fi
expect 2 'layer 1 has 3 x 1 tiles' -- "$XB" netlist --chip "$tmp/chip/chip.npz" --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --tile-index 5,0 -o "$tmp/decks"
# --tile is the chip's tile size (shared with program and eval), --tile-index which tile to write.
expect 0 'L1_T1_0.cir \(8 x 8 tile, 1 input\)' -- "$XB" netlist --weights "$tmp/out/w.npz" --dataset "$tmp/data" \
    --tile 8x8 --tile-index 1,0 -o "$tmp/decks-idx"
expect 0 'rows 8\.\.15 and columns 0\.\.7 of a 17 x 8 layer' -- head -2 "$tmp/decks-idx/L1_T1_0.cir"
expect 2 "--tile '1,0': expected ROWSxCOLS" -- "$XB" netlist --weights "$tmp/out/w.npz" --dataset "$tmp/data" --tile 1,0
# Cell comments tie each cell to the network: layer row and column, input, neuron and side, weights, G.
expect 0 '^\* cell 0,1 = L1 row 8 col 1: input 8 -> neuron 0 \(-\); w [-0-9.e]+ \(wn [-0-9.e]+\); G target [0-9.e-]+ S, programmed [0-9.e-]+ S$' \
    -- cat "$tmp/decks-idx/L1_T1_0.cir"
"$XB" netlist --weights "$tmp/out/w.npz" --dataset "$tmp/data" --tile 8x8 --tile-index 2,0 -o "$tmp/decks-idx" >/dev/null
expect 0 '^\* cell 0,0 = L1 row 16 col 0: bias row 0 -> neuron 0 \(\+\); b/1 ' -- cat "$tmp/decks-idx/L1_T2_0.cir"
if grep -qE '^\* column .*, $' "$tmp/decks-idx/L1_T1_0.cir"; then fail=$((fail + 1)); echo "FAIL: a column comment ends in ', '"; else pass=$((pass + 1)); fi
expect 0 '^Xc0_0 r0_0 c0_0 wl xb_1t1r g=' -- cat "$tmp/decks-idx/L1_T1_0.cir"
expect 0 '^M1 d g s 0 nmos1t1r W=1e-06 L=1e-06$' -- cat "$tmp/decks-idx/L1_T1_0.cir"

# The circuit backend on the tiny set: every prediction as the behavioral model's, McNemar p = 1.
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- "$XB" eval -q --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 -o "$tmp/evs"
expect 0 '^tile,layer,row_tile,col_tile' -- head -1 "$tmp/evs/tile_errors.csv"
# A relative output folder: workers run in folders of their own but still find their logs.
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- env -C "$tmp" "$XB" eval -q --weights out/w.npz \
    --dataset data --backend spice --chip chip/chip.npz --jobs 1 -o evs-rel
expect 0 'ngspice' -- cat "$tmp/evs-rel/logs/ngspice-worker-0.log"
# A worker killed while holding a unit: the unit goes to a fresh worker and the run completes.
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- env XBARSIM_FAULT_UNIT=1 "$XB" eval -q \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 \
    --chunk 10 -o "$tmp/evk"
expect 0 '"workers_lost": [1-9]' -- cat "$tmp/evk/run.json"

# dACC of behavioral and spice against ideal, and of spice against behavioral: stdout, summary.csv, run.json.
expect 0 'dACC: behavioral \+0\.00%, spice \+0\.00% against ideal; spice \+0\.00% against behavioral' -- "$XB" eval -q \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 -o "$tmp/evd"
expect 0 '^backend,samples,correct,accuracy,accuracy_ci95_lo,accuracy_ci95_hi,delta_accuracy$' -- head -1 "$tmp/evd/summary.csv"
expect 0 '^spice,30,30,1,.*,0$' -- cat "$tmp/evd/summary.csv"
expect 0 '"spice_vs_behavioral": 0' -- cat "$tmp/evd/run.json"
expect 0 '"delta_accuracy_vs_ideal": 0' -- cat "$tmp/evd/run.json"
expect 0 ',deficit,g_S,i_cell_A,i_cell_ideal_A,current_deficit$' -- head -1 "$tmp/evd/ir_drop.csv"
# run.json says which row drive ran (pwl tables by default, the faster as measured). The library reads no
# environment for it: the option xb_netlist_options.row_drive chooses (tests/test_pool.c runs both).
expect 0 '"row_sources": "pwl"' -- cat "$tmp/evd/run.json"
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- "$XB" eval -q --spice-rows external \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 -o "$tmp/evp"
expect 0 '"row_sources": "external"' -- cat "$tmp/evp/run.json"
expect 0 '"ngspice": "[0-9]+"' -- cat "$tmp/evp/run.json"
expect 0 '"ngspice_solver": "[A-Za-z]' -- cat "$tmp/evp/run.json"
# The environment no longer chooses: --spice-rows does.
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- env XBARSIM_SPICE_ROWS=pwl "$XB" eval -q \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 \
    --spice-rows external -o "$tmp/evr"
expect 0 '"row_sources": "external"' -- cat "$tmp/evr/run.json"
expect 2 "--spice-rows 'dc': expected external or pwl" -- "$XB" eval --weights "$tmp/out/w.npz" --spice-rows dc
if cmp -s <(cut -d, -f4 "$tmp/evd/predictions.csv") <(cut -d, -f4 "$tmp/evp/predictions.csv"); then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: pwl and external row sources predict differently"; fi
# ngspice's own fatal exit (ControlledExit, from a `quit`) in a worker: replaced, the run completes.
expect 0 'behavioral vs spice: 30 of 30 predictions agree' -- env XBARSIM_FAULT_QUIT_UNIT=0 "$XB" eval -q \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 \
    --chunk 10 -o "$tmp/evq"
expect 0 '"workers_lost": [1-9]' -- cat "$tmp/evq/run.json"
# Inputs that never converge (an absurd RRAM nonlinearity): reported per input, counted wrong, and still
# counted under their labels in per_class.csv.
expect 0 '0 solves retried, 120 failed' -- "$XB" eval -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" \
    --backend spice --chip "$tmp/chip/chip.npz" --jobs 2 --rram-v0 1e-12 -o "$tmp/evnc"
expect 0 '^class,samples,correct,accuracy,unpredicted$' -- head -1 "$tmp/evnc/per_class.csv"
expect 0 '^0,10,0,0,10$' -- cat "$tmp/evnc/per_class.csv"
# The linear mode's exact re-solves are a seeded random sample; run.json records generator and seed.
expect 0 'linear mode: error .*random inputs, seed 5' -- "$XB" eval -q --weights "$tmp/out/w.npz" --dataset "$tmp/data" \
    --backend spice --chip "$tmp/chip/chip.npz" --cells linear --spice-mode linear --linear-sample 6 --seed 5 -o "$tmp/evl"
expect 0 '"linear_sample_seed": 5' -- cat "$tmp/evl/run.json"

# Model files: a missing card is bad input naming the device file's line (exit 2), never a run that ends
# with 0% accuracy; a model name ngspice cannot find (the card pulls in another file, so only ngspice can
# tell) stops the run with ngspice's message, in no worker again.
sed -e "s|<mosfet_model_file>nmos_l1.lib<|<mosfet_model_file>$tmp/no_card.lib<|" \
    -e "s|<rram_model_file>rram.lib<|<rram_model_file>$src/models/rram.lib<|" "$src/models/hfo2_1t1r.xml" >"$tmp/dev_nocard.xml"
expect 2 'dev_nocard.xml:[0-9]+: element <mosfet_model_file>: model file .*no_card.lib does not exist' -- "$XB" eval \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --device "$tmp/dev_nocard.xml" -o "$tmp/evm"
printf '* a card that pulls in the real one\n.include "%s/models/nmos_l1.lib"\n' "$src" >"$tmp/wrap.lib"
sed -e "s|<mosfet_model_file>nmos_l1.lib<|<mosfet_model_file>$tmp/wrap.lib<|" \
    -e "s|<mosfet_model_name>nmos1t1r<|<mosfet_model_name>nmos_typo<|" \
    -e "s|<rram_model_file>rram.lib<|<rram_model_file>$src/models/rram.lib<|" "$src/models/hfo2_1t1r.xml" >"$tmp/dev_typo.xml"
expect 2 "can't find model 'nmos_typo'.*fix the <spice> models of device hfo2_1t1r in .*dev_typo.xml" -- "$XB" eval \
    --weights "$tmp/out/w.npz" --dataset "$tmp/data" --backend spice --chip "$tmp/chip/chip.npz" --device "$tmp/dev_typo.xml" --jobs 2 -o "$tmp/evm"
expect 2 'dev_nocard.xml:[0-9]+: element <mosfet_model_file>' -- "$XB" netlist --weights "$tmp/out/w.npz" \
    --dataset "$tmp/data" --device "$tmp/dev_nocard.xml" -o "$tmp/decks-bad"

# Input errors: weights that do not fit the data, a truncated image file.
expect 2 'takes 16 inputs.*784 pixels' -- "$XB" eval --weights "$tmp/out/w.npz" --dataset mnist
head -c 100 "$tmp/data/t10k-images-idx3-ubyte" >"$tmp/trunc" && mv "$tmp/trunc" "$tmp/data/t10k-images-idx3-ubyte"
expect 2 't10k-images-idx3-ubyte' -- "$XB" eval --weights "$tmp/out/w.npz" --dataset "$tmp/data"

echo "test_cli: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
