# lib.sh: what the shell tests share: a scratch folder, expect/check with counts, a tiny IDX data set
# Source it after setting XB (the xbarsim binary); it sets tmp, pass and fail and removes tmp on exit.
XB=$(cd "$(dirname "$XB")" && pwd)/$(basename "$XB") # absolute: some checks run in other folders
tmp=$(mktemp -d /tmp/xb_test_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect CODE PATTERN -- command...: the exit code must be CODE and stdout+stderr must match PATTERN.
expect() {
    local code=$1 pattern=$2
    shift 3
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pattern" <<<"$out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        printf 'FAIL: %s\n  exit %s (want %s), output:\n%s\n  (wanted /%s/)\n' "$*" "$rc" "$code" "$out" "$pattern"
    fi
}

# check DESCRIPTION -- command...: the command must succeed (a test of files, numbers, ...).
check() {
    local what=$1
    shift 2
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

# A testbench CSV without its last column (the seconds a point took), and two such CSVs compared.
strip_seconds() { awk -F, 'BEGIN { OFS = "," } { NF--; print }' "$1"; }
same_numbers() { cmp -s <(strip_seconds "$1") <(strip_seconds "$2"); }

# A tiny IDX data set in $tmp/data: 4x4 images, 3 classes, class c lights up row c. Byte by byte.
u32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
make_split() { # prefix count
    local f=$1 n=$2 i r c
    { printf '\x00\x00\x08\x03'; u32 "$n"; u32 4; u32 4
      for ((i = 0; i < n; i++)); do
          for ((r = 0; r < 4; r++)); do for ((c = 0; c < 4; c++)); do
              if ((r == i % 3)); then printf '\xff'; else printf '\x10'; fi
          done; done
      done; } >"$tmp/data/$f-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; u32 "$n"
      for ((i = 0; i < n; i++)); do printf "\\x0$((i % 3))"; done; } >"$tmp/data/$f-labels-idx1-ubyte"
}
mkdir -p "$tmp/data"
make_split train 60
make_split t10k 30

# Golden outputs (tests/golden/): numeric result files of the shipped examples, replayed exactly.
# golden_put FILE DEST: FILE with its timing columns (seconds) dropped and the source and scratch folders
# replaced by @SRC@ and @TMP@, as DEST; a file of more than 256 kB is kept as its SHA-256 (DEST.sha256).
golden_put() {
    local f=$1 dest=$2 norm
    norm=$(mktemp "$tmp/golden.XXXXXX")
    case "$f" in
    *.csv)
        # Fields split at commas outside double quotes (hidden sizes and level lists are quoted).
        awk 'function split_csv(line, f,   n, i, c, q, cur) {
                 n = 0; q = 0; cur = ""
                 for (i = 1; i <= length(line); i++) {
                     c = substr(line, i, 1)
                     if (c == "\"") q = !q
                     if (c == "," && !q) { f[++n] = cur; cur = "" } else cur = cur c
                 }
                 f[++n] = cur
                 return n
             }
             { nf = split_csv($0, fld) }
             NR == 1 { for (i = 1; i <= nf; i++) drop[i] = (fld[i] == "seconds") }
             { out = ""; n = 0
               for (i = 1; i <= nf; i++) if (!drop[i]) { out = out (n++ ? "," : "") fld[i] }
               print out }' "$f" ;;
    *) cat "$f" ;;
    esac | sed -e "s#$src#@SRC@#g" -e "s#$tmp#@TMP@#g" >"$norm"
    mkdir -p "$(dirname "$dest")"
    if [ "$(wc -c <"$norm")" -gt 262144 ]; then
        sha256sum <"$norm" | cut -d' ' -f1 >"$dest.sha256"
    else
        cp "$norm" "$dest"
    fi
    rm -f "$norm"
}

# golden_compare EXPECTED_DIR ACTUAL_DIR LABEL: every golden file must be reproduced exactly, and no new
# one may appear. With XB_GOLDEN_UPDATE=1 the expected folder is rewritten instead (commit it, saying why
# the numbers moved).
golden_compare() {
    local want=$1 got=$2 label=$3 f
    if [ "${XB_GOLDEN_UPDATE:-0}" = 1 ]; then
        rm -rf "$want" && mkdir -p "$(dirname "$want")" && cp -r "$got" "$want"
        echo "golden: rewrote $want"
        return
    fi
    if [ ! -d "$want" ]; then
        fail=$((fail + 1)); echo "FAIL: $label: no golden folder $want (make it with XB_GOLDEN_UPDATE=1)"; return
    fi
    for f in $( (cd "$want" && find . -type f; cd "$got" && find . -type f) | sort -u); do
        if [ ! -f "$got/$f" ]; then
            fail=$((fail + 1)); echo "FAIL: $label: $f is no longer written"
        elif [ ! -f "$want/$f" ]; then
            fail=$((fail + 1)); echo "FAIL: $label: $f is new (no golden copy)"
        elif cmp -s "$want/$f" "$got/$f"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1)); echo "FAIL: $label: $f differs from its golden copy:"
            diff "$want/$f" "$got/$f" | head -6
        fi
    done
}
