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
