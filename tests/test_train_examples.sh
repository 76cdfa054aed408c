#!/usr/bin/env bash
# test_train_examples: the training examples of README.md and `xbarsim train --help`, with the default
# hyperparameters, reach a stated test accuracy on the real MNIST / Fashion-MNIST, for seeds 1 and 2.
#
# Full runs (15 epochs) take about 2.5 minutes on 2 cores, so every example runs --epochs 2 here; the
# learning rate, momentum, batch, initialisation and optimizer stay the defaults (the test checks the
# learning rate each run records). Bounds, from measurements at 2 epochs (seeds 1, 2) with a margin
# of 1.5 to 2 points:
#   MNIST SLP (lr 0.01)                   91.81 %, 91.79 %  -> >= 0.90  (15 epochs: 92.66 %)
#   MNIST 784-100-10 sigmoid (lr 0.1)     96.73 %, 96.87 %  -> >= 0.95  (15 epochs: 97.82 %)
#   Fashion 784-300-100-10 ReLU (0.01)    85.52 %, 84.92 %  -> >= 0.83  (15 epochs: 88.76 %, 88.79 %)
#   Fashion 784-100-10 ReLU (0.01)        85.31 %, 85.05 %  -> >= 0.83  (15 epochs: 87.98 %, 88.06 %)
# With the former ReLU default (lr 0.1) the two ReLU nets reach 65.3 % / 65.0 % and 75.3 % / 61.4 %
# after 2 epochs (21.3 % / 10.0 % and 79.7 % / 76.9 % after 15), so the bounds catch that failure.
set -u
XB=${1:?usage: test_train_examples.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"

# run NAME MIN_ACCURACY LR -- train options...: every seed's test accuracy >= MIN, recorded lr = LR.
run() {
    local name=$1 min=$2 lr=$3 seed out acc rec
    shift 4
    for seed in 1 2; do
        out="$tmp/$name-s$seed.npz"
        expect 0 "test accuracy" -- "$XB" train -q --epochs 2 --seed "$seed" -o "$out" "$@"
        acc=$(grep -A2 '"test"' "${out%.npz}.json" | sed -nE 's/.*"accuracy": *([0-9.eE+-]+).*/\1/p')
        rec=$(sed -nE 's/.*"learning_rate": *([0-9.eE+-]+).*/\1/p' "${out%.npz}.json")
        echo "  $name seed $seed: test accuracy ${acc:-?} (bound $min), learning rate ${rec:-?}"
        check "$name seed $seed: test accuracy ${acc:-none} >= $min" -- \
            awk -v a="${acc:-0}" -v m="$min" 'BEGIN { exit !(a >= m) }'
        check "$name seed $seed: the default learning rate $lr (recorded ${rec:-none})" -- \
            awk -v a="${rec:-0}" -v m="$lr" 'BEGIN { exit !(a == m) }'
    done
}

run mnist-slp 0.90 0.01 -- --hidden none
run mnist-mlp100-sigmoid 0.95 0.1 -- --hidden 100 --activation sigmoid
run fashion-mlp300-100-relu 0.83 0.01 -- --dataset fashion-mnist --hidden 300,100 --activation relu --val-split 0.1
run fashion-mlp100-relu 0.83 0.01 -- --dataset fashion-mnist --hidden 100 --activation relu

echo "test_train_examples: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
