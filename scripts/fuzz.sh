#!/usr/bin/env bash
# Fuzz every sans-IO parser target for a while and fail on the first crash of any of them.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      SECONDS per target (default 30, or $FUZZ_SECONDS)
#
# Targets (fuzz/fuzz_targets/*.rs): http_head ws_decoder eio_payload sio_packet. Each run starts
# from fuzz/seeds/<t>/ (committed), fuzz/regressions/<t>/ (committed crash inputs) and
# fuzz/corpus/<t>/ (git-ignored, grows between runs), with fuzz/dicts/<t>.dict.
#
# Environment:
#   FUZZ_MODE=auto|libfuzzer|replay  auto (default): cargo-fuzz + libFuzzer + ASan when it builds,
#                                    else the stable `replay` driver (no coverage feedback).
#   RINGIO_FUZZ_KNOWN=id,...         tolerate already-reported issues (see fuzz/README.md).
#   FUZZ_ARGS="..."                  extra libFuzzer flags, e.g. "-jobs=2 -workers=2".
#
# cargo-fuzz needs nightly rustc features; on a stable toolchain they are unlocked with
# RUSTC_BOOTSTRAP=1 (set here only for the fuzz build). cargo-fuzz is installed when missing.
# Exit status: 0 when no target crashed; 1 on a crash (each crash input path is printed);
# 2 when nothing could be built.
set -uo pipefail
# ringio matches Node's JSON.parse grammar (lone surrogate escapes, numbers beyond f64 are
# accepted, as Node does); that sonic-rs's full parser refuses them only means a typed handler
# gets a deserialization error for such an argument. So that check is off by default.
export RINGIO_FUZZ_KNOWN="${RINGIO_FUZZ_KNOWN:-sonic-value}"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz="$root/fuzz"
secs="${1:-${FUZZ_SECONDS:-30}}"
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;; esac
mode="${FUZZ_MODE:-auto}"
cd "$fuzz"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
for t in "${targets[@]}"; do
    [ -f "fuzz_targets/$t.rs" ] || { echo "fuzz.sh: no target '$t'" >&2; exit 2; }
done

log_dir="$fuzz/artifacts/logs"
mkdir -p "$log_dir"

# ---------------------------------------------------------------------------------------------
# libFuzzer through cargo-fuzz
use_libfuzzer() {
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "== installing cargo-fuzz"
        cargo install cargo-fuzz --locked || return 1
    fi
    if ! rustc --version | grep -q nightly; then
        export RUSTC_BOOTSTRAP=1
    fi
    echo "== building fuzz targets (cargo fuzz build, ASan)"
    local one=()
    [ ${#targets[@]} -eq 1 ] && one=("${targets[0]}") # cargo fuzz build takes one target or all
    cargo fuzz build "${one[@]}" >"$log_dir/build.log" 2>&1 ||
        { tail -30 "$log_dir/build.log" >&2; return 1; }
}

run_libfuzzer() {
    local t=$1 log="$log_dir/$1.log" dict=() before after rc
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    before=$(ls "artifacts/$t" 2>/dev/null | sort)
    echo "== $t: ${secs}s (log: $log)"
    # shellcheck disable=SC2086
    cargo fuzz run "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-} \
        >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed "s/^/   $t: /"
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
        tr '\n' ' ' | sed "s/^/   $t: /;s/$/\n/"
    if [ $rc -ne 0 ]; then
        after=$(ls "artifacts/$t" 2>/dev/null | sort)
        echo "!! $t CRASHED (exit $rc); last lines of the log:"
        grep -E 'panicked at|ERROR: |SUMMARY|^(thread|assertion)' "$log" | head -8 | sed 's/^/   /'
        local new
        new=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
        if [ -n "$new" ]; then
            for f in $new; do echo "   crash input: $fuzz/artifacts/$t/$f"; done
        else
            grep -E 'Test unit written to|artifact_prefix' "$log" | sed 's/^/   /'
        fi
        echo "   reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t <crash input>)"
        return 1
    fi
    return 0
}

# ---------------------------------------------------------------------------------------------
# Stable fallback: replay driver (seeds + corpus + regressions, then random mutations)
run_replay() {
    local t=$1
    echo "== $t: ${secs}s with the replay driver (no libFuzzer)"
    "$fuzz/target/release/examples/replay" --secs "$secs" --iters 1000000000 "$t"
}

failed=0
if [ "$mode" != replay ] && use_libfuzzer; then
    for t in "${targets[@]}"; do
        run_libfuzzer "$t" || failed=1
    done
elif [ "$mode" = libfuzzer ]; then
    echo "fuzz.sh: cargo-fuzz build failed (FUZZ_MODE=libfuzzer)" >&2
    exit 2
else
    echo "== cargo-fuzz unavailable or failed to build: using the stable replay driver"
    unset RUSTC_BOOTSTRAP
    cargo build --release --no-default-features --example replay >"$log_dir/build-replay.log" 2>&1 ||
        { tail -30 "$log_dir/build-replay.log" >&2; exit 2; }
    for t in "${targets[@]}"; do
        run_replay "$t" || failed=1
    done
fi

if [ $failed -ne 0 ]; then
    echo "fuzz.sh: at least one target crashed (inputs listed above)"
    exit 1
fi
echo "fuzz.sh: no crashes (${#targets[@]} targets, ${secs}s each)"
