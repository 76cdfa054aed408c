#!/usr/bin/env bash
# test_train_hw: `xbarsim train`'s hardware-aware options on a tiny data set: bad settings are refused
# with exit 2 naming the option, the layer and what is allowed; good ones train and the JSON log
# records them; a plain run's log keeps its former fields only.
set -u
XB=${1:?usage: test_train_hw.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"

T=("$XB" train -q -d "$tmp/data" --hidden 8 --activation relu --epochs 2 --batch 8)

expect 2 "train-noise, layer 1.*programmed conductances.*mult:alpha=S" -- "${T[@]}" --train-noise d2d:sigma=0.1 -o "$tmp/a.npz"
expect 2 "train-noise, layer 1.*sigma = -1" -- "${T[@]}" --train-noise lognormal:sigma=-1 -o "$tmp/a.npz"
expect 2 "3 specs for a network of 2 layers" -- "${T[@]}" --train-noise none/none/none -o "$tmp/a.npz"
expect 2 "train-levels, layer 2.*bits must be an integer in 1..16" -- "${T[@]}" --train-levels none/bits:99 -o "$tmp/a.npz"
expect 2 "train-norm.*allowed: maxabs" -- "${T[@]}" --train-levels bits:2 --train-norm clip:0 -o "$tmp/a.npz"
expect 2 "activation quantization \"4:x\".*B:dynamic" -- "${T[@]}" --act-quant 4:x -o "$tmp/a.npz"
expect 2 "optimizer 'rmsprop': expected sgd or adam" -- "${T[@]}" --optimizer rmsprop -o "$tmp/a.npz"
expect 2 "dropout" -- "${T[@]}" --dropout 0.99 -o "$tmp/a.npz"
expect 2 "device is only used by --train-levels device" -- "${T[@]}" --device x.xml -o "$tmp/a.npz"
expect 2 "ste-threshold" -- "${T[@]}" --ste-threshold 0 -o "$tmp/a.npz"
check "refused runs leave no weights file" -- test ! -e "$tmp/a.npz"

expect 0 "test accuracy" -- "${T[@]}" -o "$tmp/plain.npz"
check "a plain run's log has no hardware-aware record" -- bash -c "! grep -q 'hardware_aware\|optimizer' '$tmp/plain.json'"

expect 0 "test accuracy" -- "${T[@]}" --optimizer adam --lr 0.01 --dropout 0.1 --grad-clip 5 \
    --train-noise "lognormal:sigma=0.3+additive:sigma=0.05/mult:alpha=0.1" --noise-ramp 2 \
    --train-levels nnary:2:0.1:0.2/bits:3 --train-norm none --ste-threshold 0.5 --act-quant 4:dynamic -o "$tmp/hw.npz"
for field in '"optimizer": "adam"' '"dropout": 0.1' '"grad_clip_norm": 5' '"hardware_aware"' \
    '"lognormal:sigma=0.3\+additive:sigma=0.05"' '"mult:alpha=0.1"' '"nnary:2:0.1:0.2"' '"bits:3"' \
    '"normalization": "none"' '"ste_threshold": 0.5' '"noise_ramp_epochs": 2' '"activation_quantization": "4:dynamic"' \
    '"noise_seed": 3'; do
    check "the log records $field" -- grep -qE "$field" "$tmp/hw.json"
done
expect 0 "test accuracy" -- "${T[@]}" --train-levels device --train-noise mult:alpha=0.05 -o "$tmp/dev.npz"
check "device levels are named in the log" -- grep -q '"device\[9\]"' "$tmp/dev.json"

echo "test_train_hw: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
