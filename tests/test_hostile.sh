#!/usr/bin/env bash
# test_hostile: crafted bad inputs on every surface through the real command line; each must be refused
# cleanly (exit 2 with a message naming the file or option), never crash, hang or fail with exit 1.
# Prints the table of cases tried, refused, accepted, crashes and hangs per surface (docs/input-surfaces.md).
set -u
XB=${1:?usage: test_hostile.sh path/to/xbarsim}
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
ref=$src/results/reference
limit_s=60 # a case that runs longer counts as a hang
declare -A tried refused accepted crashed hung
surfaces=()

# case_ SURFACE OK_CODES NAME_PATTERN -- command...: one crafted case. OK_CODES: "2" (must be refused) or
# "0 2" (a mutation that may stay valid). The message of a refusal must match NAME_PATTERN (the file or
# option at fault).
case_() {
    local s=$1 ok=$2 pat=$3 out rc
    shift 4
    [ -n "${tried[$s]+x}" ] || { surfaces+=("$s"); tried[$s]=0 refused[$s]=0 accepted[$s]=0 crashed[$s]=0 hung[$s]=0; }
    tried[$s]=$((tried[$s] + 1))
    out=$(cd "$tmp" && timeout -s KILL "$limit_s" "$@" 2>&1); rc=$?
    if [ "$rc" -eq 137 ]; then
        hung[$s]=$((hung[$s] + 1)); fail=$((fail + 1)); printf 'HANG (%s s): %s\n' "$limit_s" "$*"; return
    fi
    if [ "$rc" -ge 128 ] || grep -qE 'runtime error|AddressSanitizer|Segmentation|core dumped' <<<"$out"; then
        crashed[$s]=$((crashed[$s] + 1)); fail=$((fail + 1)); printf 'CRASH (exit %s): %s\n%s\n' "$rc" "$*" "$out"; return
    fi
    case " $ok " in *" $rc "*) ;; *)
        fail=$((fail + 1)); printf 'FAIL (exit %s, want %s): %s\n%s\n' "$rc" "$ok" "$*" "$(head -3 <<<"$out")"; return ;;
    esac
    if [ "$rc" -eq 2 ]; then
        if grep -qE -- "$pat" <<<"$out"; then refused[$s]=$((refused[$s] + 1)); pass=$((pass + 1))
        else fail=$((fail + 1)); printf 'FAIL (message does not name /%s/): %s\n%s\n' "$pat" "$*" "$out"; fi
    else
        accepted[$s]=$((accepted[$s] + 1)); pass=$((pass + 1))
    fi
}

# --- IDX: truncated, wrong magic, dimensions that lie, broken gzip, mismatched pairs.
mnist=$src/data/mnist
idx_case() { # NAME: $tmp/idx/NAME holds a data set with one crafted file; the rest are the tiny set's
    case_ idx 2 "$tmp/idx/$1" -- "$XB" data --dataset "$tmp/idx/$1"
}
mkidx() { mkdir -p "$tmp/idx/$1"; cp "$tmp"/data/* "$tmp/idx/$1/"; }
for cut in 0 3 7 15 16 100; do
    mkidx "cut$cut"; head -c "$cut" "$tmp/data/t10k-images-idx3-ubyte" >"$tmp/idx/cut$cut/t10k-images-idx3-ubyte"
    idx_case "cut$cut"
done
mkidx magic; { printf '\x00\x00\x09\x03'; tail -c +5 "$tmp/data/t10k-images-idx3-ubyte"; } >"$tmp/idx/magic/t10k-images-idx3-ubyte"; idx_case magic
mkidx zerodim; { printf '\x00\x00\x08\x03\x00\x00\x00\x1e\x00\x00\x00\x00\x00\x00\x00\x04'; } >"$tmp/idx/zerodim/t10k-images-idx3-ubyte"; idx_case zerodim
mkidx huge; { printf '\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff'; head -c 512 /dev/zero; } >"$tmp/idx/huge/t10k-images-idx3-ubyte"; idx_case huge
mkidx count; { printf '\x00\x00\x08\x01\x00\x00\x00\x1f'; tail -c +9 "$tmp/data/t10k-labels-idx1-ubyte"; printf '\x01'; } >"$tmp/idx/count/t10k-labels-idx1-ubyte"; idx_case count
mkidx gzcut; gzip -c "$tmp/data/t10k-images-idx3-ubyte" | head -c 40 >"$tmp/idx/gzcut/t10k-images-idx3-ubyte.gz"; rm "$tmp/idx/gzcut/t10k-images-idx3-ubyte"; idx_case gzcut
# two bytes of the deflate data changed (12 bytes before the end: before the CRC and size trailer)
mkidx gzflip; gzip -c "$tmp/data/t10k-images-idx3-ubyte" >"$tmp/g.gz"; at=$(($(wc -c <"$tmp/g.gz") - 12))
{ head -c "$at" "$tmp/g.gz"; printf '\x55\xaa'; tail -c +$((at + 3)) "$tmp/g.gz"; } >"$tmp/idx/gzflip/t10k-images-idx3-ubyte.gz"
rm "$tmp/idx/gzflip/t10k-images-idx3-ubyte"; idx_case gzflip
mkidx gzbomb; { printf '\x00\x00\x08\x03\x00\x04\x93\xe0\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c 300000000 /dev/zero; } | gzip -1 >"$tmp/idx/gzbomb/train-images-idx3-ubyte.gz"; rm "$tmp/idx/gzbomb/train-images-idx3-ubyte"; idx_case gzbomb
mkidx labels3d; cp "$tmp/data/t10k-images-idx3-ubyte" "$tmp/idx/labels3d/t10k-labels-idx1-ubyte"; idx_case labels3d

# --- Weights (.npz and .npy): truncations and byte flips of a real file, wrong shapes, non-finite values.
w=$ref/mnist-slp-f32.npz
size=$(wc -c <"$w")
for cut in 0 22 100 1000 $((size / 2)) $((size - 22)) $((size - 1)); do
    head -c "$cut" "$w" >"$tmp/wcut$cut.npz"
    case_ weights 2 "wcut$cut.npz" -- "$XB" eval --weights "$tmp/wcut$cut.npz" --dataset mnist --limit 10
done
for at in 40 80 120 200 400 2000 20000; do # a flipped byte may still leave a valid archive
    { head -c "$at" "$w"; printf '\xff'; tail -c +$((at + 2)) "$w"; } >"$tmp/wflip$at.npz"
    case_ weights "0 2" "wflip$at.npz" -- "$XB" eval -q --weights "$tmp/wflip$at.npz" --dataset mnist --limit 10 -o "$tmp/evflip$at"
done
npy() { # FILE DESCR SHAPE BYTES...
    local f=$1 descr=$2 shape=$3 hdr hl tot
    shift 3
    hdr="{'descr': '$descr', 'fortran_order': False, 'shape': $shape, }"
    hl=${#hdr}; tot=$(( (10 + hl + 1 + 63) / 64 * 64 ))
    { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(((tot - 10) & 255)))\\x$(printf %02x $(((tot - 10) >> 8)))"
      printf '%s' "$hdr"; printf '%*s' $((tot - 10 - hl - 1)) ''; printf '\n'; printf "$@"; } >"$f"
}
npy "$tmp/W1.npy" '<f8' '(2, 1)' '\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\xf0\x3f'
npy "$tmp/b1.npy" '<f8' '(1,)' '\x00\x00\x00\x00\x00\x00\x00\x00'
npy "$tmp/Wnan.npy" '<f8' '(2, 1)' '\x00\x00\x00\x00\x00\x00\xf8\x7f\x00\x00\x00\x00\x00\x00\xf0\x3f'
npy "$tmp/Winf.npy" '<f8' '(2, 1)' '\x00\x00\x00\x00\x00\x00\xf0\x7f\x00\x00\x00\x00\x00\x00\xf0\x3f'
npy "$tmp/Wshort.npy" '<f8' '(2, 1)' '\x00\x00\x00\x00'
npy "$tmp/Wbig.npy" '<f8' '(100000000000, 100000000000)' '\x00'
npy "$tmp/Wzero.npy" '<f8' '(0, 1)' ''
npy "$tmp/Wdescr.npy" '>c16' '(2, 1)' '\x00'
npy "$tmp/W3d.npy" '<f8' '(1, 2, 1)' '\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\xf0\x3f'
for f in Wnan Winf Wshort Wbig Wzero Wdescr W3d; do
    case_ weights 2 "$f.npy" -- "$XB" eval --weights "$tmp/$f.npy,$tmp/b1.npy" --dataset "$tmp/data"
done
case_ weights 2 "b1.npy" -- "$XB" eval --weights "$tmp/W1.npy,$tmp/b1.npy" --dataset "$tmp/data" # 2 inputs, not 16
printf 'PK\x05\x06%018d' 0 | tr 0 '\0' >"$tmp/empty.npz"
case_ weights 2 "empty.npz" -- "$XB" eval --weights "$tmp/empty.npz" --dataset "$tmp/data"
printf 'not a zip at all\n' >"$tmp/text.npz"
case_ weights 2 "text.npz" -- "$XB" eval --weights "$tmp/text.npz" --dataset "$tmp/data"
case_ weights 2 "/dev/zero" -- "$XB" eval --weights /dev/zero --dataset "$tmp/data"
case_ weights 2 "$tmp/nothere.npz" -- "$XB" eval --weights "$tmp/nothere.npz" --dataset "$tmp/data"

# --- Conductance maps: a real one truncated and flipped, and a weights file given as a map.
"$XB" program -q --weights "$ref/mnist-slp-f32.npz" --levels device -o "$tmp/prog" >/dev/null 2>&1
chip=$tmp/prog/chip.npz
csize=$(wc -c <"$chip")
for cut in 0 30 $((csize / 3)) $((csize - 1)); do
    head -c "$cut" "$chip" >"$tmp/ccut$cut.npz"
    case_ chipmap 2 "ccut$cut.npz" -- "$XB" eval --weights "$w" --dataset mnist --limit 10 --backend behavioral --chip "$tmp/ccut$cut.npz"
done
for at in 50 90 300 3000; do
    { head -c "$at" "$chip"; printf '\x00'; tail -c +$((at + 2)) "$chip"; } >"$tmp/cflip$at.npz"
    case_ chipmap "0 2" "cflip$at.npz" -- "$XB" eval -q --weights "$w" --dataset mnist --limit 10 --backend behavioral \
        --chip "$tmp/cflip$at.npz" -o "$tmp/evc$at"
done
case_ chipmap 2 "mnist-slp-f32.npz" -- "$XB" eval --weights "$w" --dataset mnist --limit 10 --backend behavioral --chip "$w"
case_ chipmap 2 "chip.npz" -- "$XB" eval --weights "$ref/mnist-mlp100-f32.npz" --dataset mnist --limit 10 --backend behavioral --chip "$chip"

# --- Device files: absurd and non-finite values, broken XML, entities, model files that are not files.
dev=$src/models/hfo2_1t1r.xml
devcase() { # NAME SED_EXPR: a copy of the device file (model files beside it), edited
    mkdir -p "$tmp/dev"; cp "$src"/models/*.lib "$tmp/dev/" 2>/dev/null
    sed -e "$2" "$dev" >"$tmp/dev/$1.xml"
    case_ device 2 "$1.xml" -- "$XB" program --weights "$w" --dataset mnist --device "$tmp/dev/$1.xml" -o "$tmp/pd-$1"
}
devcase vread-huge 's#<v_read_V>0.2<#<v_read_V>1e6<#'
devcase vread-nan 's#<v_read_V>0.2<#<v_read_V>nan<#'
devcase vread-neg 's#<v_read_V>0.2<#<v_read_V>-0.2<#'
devcase ghrs-inf 's#<g_hrs_S>5e-6<#<g_hrs_S>inf<#'
devcase levels-down 's#<i_trg_A>20e-6<#<i_trg_A>5e-6<#'
devcase sigma-neg 's#<sigma_d2d>0.03<#<sigma_d2d>-1<#'
devcase pstuck 's#<p_stuck_lrs>0<#<p_stuck_lrs>1.5<#'
devcase pulses-frac 's#<max_pulses>200<#<max_pulses>2.5<#'
devcase unknown-el 's#<read>#<read><bogus>1</bogus>#'
devcase not-closed 's#</device>##'
devcase entity '1a<!DOCTYPE device [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
devcase model-devzero 's#<mosfet_model_file>nmos_l1.lib<#<mosfet_model_file>/dev/zero<#'
devcase model-missing 's#<mosfet_model_file>nmos_l1.lib<#<mosfet_model_file>nothere.lib<#'
devcase model-dir 's#<rram_model_file>rram.lib<#<rram_model_file>/tmp<#'
devcase model-name 's#<mosfet_model_name>nmos1t1r<#<mosfet_model_name>not_in_card<#'

# --- Testbenches: broken values, names and sizes (checked before anything runs).
tb=$src/testbenches/quantization-sets.xml
tbcase() { # NAME SED_EXPR
    mkdir -p "$tmp/tb"; sed -e "$2" "$tb" >"$tmp/tb/$1.xml"
    case_ testbench 2 "$1.xml" -- "$XB" run --list "$tmp/tb/$1.xml"
}
tbcase epochs-frac 's#epochs="15"#epochs="1.5"#'
tbcase epochs-nan 's#epochs="15"#epochs="nan"#'
tbcase images-neg 's#images="500"#images="-5"#'
mkdir -p "$tmp/tb"; sed -e 's#<dataset name="mnist"/>#<dataset name="/nonexistent/data"/>#' "$tb" >"$tmp/tb/dataset.xml"
case_ testbench 2 "/nonexistent/data" -- "$XB" run --quick -q "$tmp/tb/dataset.xml" -o "$tmp/tbrun" # data checked first
tbcase unknown-attr 's#<network #<network bogus="1" #'
tbcase not-closed 's#</testbench>##'
tbcase entity '1a<!DOCTYPE testbench [<!ENTITY x "y">]>'
tbcase seed-huge 's#seed="1"#seed="1e300"#'
printf '' >"$tmp/tb/empty.xml"; case_ testbench 2 "empty.xml" -- "$XB" run --list "$tmp/tb/empty.xml"
case_ testbench 2 "/dev/zero" -- "$XB" run --list /dev/zero

# --- Options: non-finite, out-of-range and malformed values, refused before any work.
opt() { case_ options 2 "$1" -- "$XB" "${@:2}"; }
opt "--limit" eval --weights "$w" --limit -1
opt "--limit" eval --weights "$w" --limit 1e300
opt "--trials" eval --weights "$w" --backend behavioral --trials -1
opt "--jobs" eval --weights "$w" --backend spice --jobs 0
opt "--r-row" eval --weights "$w" --backend spice --r-row nan
opt "--r-row" eval --weights "$w" --backend spice --r-row -1
opt "--r-col" eval --weights "$w" --backend spice --r-col inf
opt "--adc-bits" eval --weights "$w" --backend behavioral --adc-bits 99
opt "--dac-bits" eval --weights "$w" --backend behavioral --dac-bits -3
opt "--solve-timeout" eval --weights "$w" --backend spice --solve-timeout nan
opt "--tile" program --weights "$w" --tile 0x0
opt "--tile" program --weights "$w" --tile 64x
opt "--epochs" train --epochs 2.5
opt "--lr" train --lr nan
opt "--batch" train --batch 0
opt "level set" eval --weights "$w" --backend behavioral --levels levels:0,nan
opt "level set" eval --weights "$w" --backend behavioral --levels levels:-2,0,2
opt "perturbation" eval --weights "$w" --backend behavioral --perturb c2c:ar=2,sigma=0.1 --trials 2
opt "perturbation" eval --weights "$w" --backend behavioral --perturb lognormal:sigma=inf --trials 2

# --- Output locations: empty, a file, under a file, a place nothing can be written.
touch "$tmp/afile"
case_ outputs 2 "-o|output" -- "$XB" eval --weights "$w" --dataset mnist --limit 10 -o ""
case_ outputs 2 "afile" -- "$XB" eval --weights "$w" --dataset mnist --limit 10 -o "$tmp/afile"
case_ outputs 2 "afile" -- "$XB" program --weights "$w" -o "$tmp/afile/sub"
case_ outputs 2 "/proc" -- "$XB" program --weights "$w" -o /proc/xbarsim-out
case_ outputs 2 "-o|output" -- "$XB" train --hidden none --epochs 1 -o ""
case_ outputs 2 "afile" -- "$XB" run "$tb" --quick -o "$tmp/afile"

printf '\n%-10s %6s %8s %8s %8s %6s\n' surface tried refused accepted crashes hangs
for s in "${surfaces[@]}"; do
    printf '%-10s %6d %8d %8d %8d %6d\n' "$s" "${tried[$s]}" "${refused[$s]}" "${accepted[$s]}" "${crashed[$s]}" "${hung[$s]}"
done
echo "test_hostile: $((pass + fail)) checks, $fail failed"
[ "$fail" -eq 0 ]
