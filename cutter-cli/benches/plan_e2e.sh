#!/usr/bin/env bash
# End-to-end speed of `cutter plan` (the release binary, as a user runs it) on a synthetic
# document, beside `sha256sum` of the same file and the parser's own figure.
#
#   cutter-cli/benches/plan_e2e.sh [PROFILE] [MB]     # default: vn-legal 50
#
# The document is the parse bench's (cutter-core/benches/parse.rs: the Constitution of Vietnam
# or the GDPR repeated and renumbered), written to a temporary folder and removed at the end.
# Each figure is the best of $RUNS runs (default 5; wall clock), with the CPU time (user + system,
# which counts both threads of `cutter plan`) and the peak resident memory of that run.
# Run it on a quiet machine: another build on the same cores halves every figure.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=${1:-vn-legal}
mb=${2:-50}
runs=${RUNS:-5}
target=${CARGO_TARGET_DIR:-target}

cargo build -q --release -p cutter-cli
cutter="$target/release/cutter"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
doc="$scratch/$profile-$mb.txt"
cargo bench -q -p cutter-core --bench parse -- --generate "$profile" "$doc" "$mb" >/dev/null
size=$(stat -c %s "$doc")

# best SECONDS and PEAK_KB of `$@` over $runs runs, stdout to /dev/null
best() {
    local best_s="" best_kb="" best_cpu="" s kb cpu
    for _ in $(seq 1 "$runs"); do
        local start end
        start=$(date +%s.%N)
        /usr/bin/time -o "$scratch/time" -f '%M %U %S' "$@" >/dev/null 2>"$scratch/stderr" || {
            cat "$scratch/stderr" >&2
            return 1
        }
        end=$(date +%s.%N)
        s=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
        read -r kb cpu <<<"$(tail -n1 "$scratch/time" | awk '{ print $1, $2 + $3 }')"
        if [[ -z "$best_s" ]] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best_s=$s
            best_kb=$kb
            best_cpu=$cpu
        fi
    done
    echo "$best_s $best_kb $best_cpu"
}

mbs() { awk -v b="$size" -v s="$1" 'BEGIN { printf "%7.1f", (s > 0 ? b / 1048576 / s : 0) }'; }
row() { # LABEL SECONDS PEAK_KB CPU_SECONDS
    printf '  %-40s %s MB/s  %6.2f s (cpu %5.2f s)  peak %7.1f MB (%.2fx input)\n' "$1" "$(mbs "$2")" "$2" "$4" \
        "$(awk -v k="$3" 'BEGIN { print k / 1024 }')" "$(awk -v k="$3" -v b="$size" 'BEGIN { print k * 1024 / b }')"
}

read -r sha_s sha_kb sha_cpu < <(best sha256sum "$doc")
read -r human_s human_kb human_cpu < <(best "$cutter" plan "$doc" --profile "$profile")
read -r json_s json_kb json_cpu < <(best "$cutter" plan "$doc" --profile "$profile" --json)
read -r auto_s auto_kb auto_cpu < <(best "$cutter" plan "$doc")
# The parser alone (read, decode, parse, hash, validate, payload digest), as the parse bench
# measures it: the ceiling of the end-to-end figure.
parse_s=$(for _ in $(seq 1 "$runs"); do
    cargo bench -q -p cutter-core --bench parse -- --child parse "$profile" "$doc" | awk '{ print $1 }'
done | sort -g | head -n1)

printf 'cutter plan end to end: %s, %.1f MB, profile %s (best of %d, wall clock)\n' \
    "$(basename "$doc")" "$(awk -v b="$size" 'BEGIN { print b / 1048576 }')" "$profile" "$runs"
row "sha256sum" "$sha_s" "$sha_kb" "$sha_cpu"
printf '  %-40s %s MB/s  %6.2f s\n' "parser alone (parse bench)" "$(mbs "$parse_s")" "$parse_s"
row "cutter plan --profile (human, /dev/null)" "$human_s" "$human_kb" "$human_cpu"
row "cutter plan --profile --json" "$json_s" "$json_kb" "$json_cpu"
row "cutter plan (profile detected)" "$auto_s" "$auto_kb" "$auto_cpu"
awk -v h="$human_s" -v j="$json_s" -v s="$sha_s" -v p="$parse_s" 'BEGIN {
    printf "  ratio  plan time / sha256sum time: human %.2fx, json %.2fx; plan / parser alone: human %.2fx, json %.2fx\n", h / s, j / s, h / p, j / p
}'
