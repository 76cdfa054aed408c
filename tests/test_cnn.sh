#!/usr/bin/env bash
# test_cnn: convolutional networks from the command line: train --layers, the layer list's errors,
# hardware-aware training of conv layers, eval/program/netlist of a CNN, weight files that leave their
# description to the command line, and the PyTorch reference through every backend
set -u
XB=${1:?usage: test_cnn.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
ref="$src/results/reference/mnist-cnn-pytorch.npz"

# The tiny data set has 4x4 images: a 2x2 kernel and 2x2 pooling fit.
T=("$XB" train -q -d "$tmp/data" --activation relu --epochs 2 --batch 8)
expect 2 "--layers and --hidden both" -- "${T[@]}" --hidden 8 --layers conv:2:2,dense:4 -o "$tmp/a.npz"
expect 2 "unknown layer 'pool:2'.*conv:F:K" -- "${T[@]}" --layers conv:2:2,pool:2 -o "$tmp/a.npz"
expect 2 "'maxpool:2' must follow a conv layer" -- "${T[@]}" --layers maxpool:2,dense:4 -o "$tmp/a.npz"
expect 2 "convolutional layers come first" -- "${T[@]}" --layers dense:4,conv:2:2 -o "$tmp/a.npz"
expect 2 "5x5 kernel does not fit its 4x4 input" -- "${T[@]}" --layers conv:2:5 -o "$tmp/a.npz"
expect 2 "pooling window.*does not fit" -- "${T[@]}" --layers conv:2:3,maxpool:3 -o "$tmp/a.npz"
check "refused runs leave no weights file" -- test ! -e "$tmp/a.npz"

expect 0 "test accuracy" -- "${T[@]}" --layers conv:3:2:1:1,maxpool:2,dense:6 -o "$tmp/cnn.npz"
check "the log names the layers and the synapses" -- grep -q '"layers": "conv:3:2:1:1,maxpool:2,dense:6,dense:3"' "$tmp/cnn.json"
check "the log counts weights and biases as synapses" -- grep -q '"synapses": ' "$tmp/cnn.json"
# hardware-aware training of a conv layer: onto its level set, noise and quantization per layer
expect 0 "test accuracy" -- "${T[@]}" --layers conv:3:2,dense:6 --train-levels bits:2/none/none \
    --train-noise lognormal:sigma=0.2+additive:sigma=0.05 -o "$tmp/hw.npz"
# noise off is plain training, bit for bit
expect 0 "test accuracy" -- "${T[@]}" --layers conv:3:2,dense:6 -o "$tmp/p1.npz"
expect 0 "test accuracy" -- "${T[@]}" --layers conv:3:2,dense:6 --train-noise none --train-levels none -o "$tmp/p2.npz"
check "noise and levels off give plain training's weights" -- cmp -s "$tmp/p1.npz" "$tmp/p2.npz"

# eval and program of a CNN trained here
expect 0 "behavioral accuracy" -- "$XB" eval -q -d "$tmp/data" --weights "$tmp/cnn.npz" --backend behavioral -o "$tmp/ev"
expect 0 "" -- "$XB" program -q -d "$tmp/data" --weights "$tmp/cnn.npz" --levels bits:3 -o "$tmp/prog"
expect 0 "behavioral accuracy" -- "$XB" eval -q -d "$tmp/data" --weights "$tmp/cnn.npz" --chip "$tmp/prog/chip.npz" \
    --backend behavioral -o "$tmp/ev2"

# the PyTorch reference: ideal, behavioral and spice agree on the first images (exact mapping)
expect 0 "spice      accuracy 100.00% \(4/4" -- "$XB" eval --weights "$ref" --backend spice --limit 4 --jobs 2 -o "$tmp/evs"
check "per-input predictions of every backend" -- test "$(wc -l <"$tmp/evs/predictions.csv")" -eq 5
check "tile errors of the conv layers' tiles" -- grep -q "^0,1,0,0," "$tmp/evs/tile_errors.csv"

# a weights file without its description: refused, then given on the command line
# (python3's zipfile drops the three arrays; without python3 these checks are skipped, saying so)
if python3 - "$ref" "$tmp/bare.npz" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
    for n in z.namelist():
        if n not in ("layers.npy", "input.npy", "layout.npy"):
            out.writestr(n, z.read(n))
PY
then
    expect 2 "W1 has shape \(4, 1, 3, 3\), a convolution kernel.*--layers, --input-shape and --layout" -- "$XB" eval --weights "$tmp/bare.npz" -o "$tmp/e3"
    expect 2 "input grid.*--input-shape" -- "$XB" eval --weights "$tmp/bare.npz" --layout pytorch \
        --layers conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,dense:16,dense:10 -o "$tmp/e3"
    expect 2 "layout 'tf': expected keras or pytorch" -- "$XB" eval --weights "$tmp/bare.npz" --layout tf -o "$tmp/e3"
    expect 2 "W1 has shape \(4, 1, 3, 3\); layer 1 .* keras layout needs \(3, 3, 1, 4\)" -- "$XB" eval \
        --weights "$tmp/bare.npz" --layout keras --input-shape 28x28x1 \
        --layers conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,dense:16,dense:10 -o "$tmp/e3"
    expect 0 "ideal      accuracy 94.32%" -- "$XB" eval --weights "$tmp/bare.npz" --layout pytorch --input-shape 28x28x1 \
        --layers conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,dense:16,dense:10 -o "$tmp/e4"
else
    echo "test_cnn: no python3: the checks of a file without its description are skipped"
fi
expect 2 "--input-shape '28x28': expected HEIGHTxWIDTHxCHANNELS" -- "$XB" eval --weights "$ref" --input-shape 28x28 -o "$tmp/e5"

# netlist of a conv layer: one sweep point per patch, cell comments name kernel, channel and filter
expect 0 "1 input x 144 patches" -- "$XB" netlist --weights "$ref" --layer 2 -o "$tmp/nl"
check "cell comments of a conv layer" -- grep -q "input 5 (kernel 0,1 channel 1) -> filter 0 (+)" "$tmp/nl/L2_T0_0.cir"
check "the expected currents have a row per patch" -- test "$(wc -l <"$tmp/nl/L2_T0_0.cir.expected.csv")" -eq 145
if command -v ngspice >/dev/null; then
    check "ngspice -b runs the conv deck" -- bash -c "ngspice -b '$tmp/nl/L2_T0_0.cir' 2>&1 | grep -q '^143'"
fi

# a testbench of a CNN at circuit level with energy on: per point energy per tile, the example's figure
cat >"$tmp/tb.xml" <<XML
<testbench name="tiny-cnn-energy" version="1">
  <dataset name="$tmp/data" images="4" calib="8"/>
  <network arch="conv:2:2,maxpool:2,dense:4" activation="relu" epochs="1" seed="1"/>
  <spice cells="1t1r" energy="on" read-time="2e-7"/>
  <backends use="behavioral spice"/>
  <sweep><axis param="spice.r-row" values="1 2"/></sweep>
  <output><example point="1" layer="1"/></output>
</testbench>
XML
expect 0 "tiny-cnn-energy: 2 points" -- "$XB" run -q "$tmp/tb.xml" -o "$tmp/tbe"
check "energy per tile of every spice point" -- test -s "$tmp/tbe/energy/point-1.csv" -a -s "$tmp/tbe/energy/point-2.csv"
check "the read time of the testbench" -- awk -F, 'NR == 2 { exit !($7 > 1.99e-7 && $7 < 2.01e-7) }' "$tmp/tbe/energy/point-1.csv"
check "the example's energy figure" -- test -s "$tmp/tbe/example/plots/energy-per-tile.csv"
cat >"$tmp/tb2.xml" <<XML
<testbench name="bad-energy" version="1">
  <dataset name="$tmp/data" images="4"/>
  <spice energy="maybe"/>
</testbench>
XML
expect 2 "bad-energy|energy.*maybe.*off, on|allowed: off, on" -- "$XB" run -q "$tmp/tb2.xml" -o "$tmp/tbe2"

echo "test_cnn: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
