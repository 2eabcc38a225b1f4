#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a while, one after the other.
#
#   scripts/fuzz.sh --short              about 30 s per target (what scripts/test-all.sh runs)
#   scripts/fuzz.sh --long SECONDS       SECONDS per target (e.g. --long 600 for a real run)
#   scripts/fuzz.sh ... TARGET...        only these targets
#
# Needs a nightly toolchain (libFuzzer needs -Zsanitizer) and cargo-fuzz; installs what is
# missing (rustup for nightly, crates.io for cargo-fuzz). Anything it cannot have is an
# error, in CI (CI=true) and elsewhere, never a silent skip.
#
# Seeds are taken from where they live (seeds_for below): the repository's fixtures of each
# target's input (crates/credguard/tests/fixtures, examples/credspecs; one copy, the tests
# read them too), plus hand-written inputs in fuzz/seeds/<target>/ where no fixture fits.
# They are copied into the working corpus (fuzz/corpus/<target>/, git-ignored) before each
# run, so a corpus grows across runs; each target also gets a dictionary (fuzz/dicts/). A
# crash leaves its input in fuzz/artifacts/<target>/.
#
# Prints one `fuzz result: <target> ok|FAILED ...` line per target, which test-all.sh counts,
# and exits non-zero when any target crashed or could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

seconds=
case "${1:-}" in
    --short) seconds=30; shift ;;
    --long)
        [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || usage
        seconds=$2
        shift 2
        ;;
    *) usage ;;
esac

die() {
    echo "fuzz.sh: $*" >&2
    echo "fuzz result: setup FAILED ($*)"
    exit 1
}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "== installing a nightly toolchain (libFuzzer needs -Zsanitizer)"
    rustup toolchain install nightly --profile minimal ||
        die "no nightly toolchain, and \`rustup toolchain install nightly\` failed${CI:+ (CI=$CI)}"
    cargo +nightly --version >/dev/null 2>&1 || die "the nightly toolchain was installed but does not run"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked || die "cargo-fuzz is missing and could not be installed"
    cargo fuzz --version >/dev/null 2>&1 || die "cargo-fuzz was installed but does not run"
fi

all_targets=$(cargo +nightly fuzz list)
if [[ $# -gt 0 ]]; then
    targets="$*"
    for t in $targets; do
        grep -qx "$t" <<<"$all_targets" || die "no fuzz target \`$t\` (have: $(echo $all_targets))"
    done
else
    targets=$all_targets
fi
[[ -n "$targets" ]] || die "cargo fuzz list found no targets"

echo "== building the fuzz targets (nightly, libFuzzer)"
cargo +nightly fuzz build || die "the fuzz targets do not build"

dict_for() {
    case "$1" in
        service_properties) echo fuzz/dicts/service_properties.dict ;;
        result_error) echo fuzz/dicts/result_error.dict ;;
        explain_text) echo fuzz/dicts/explain_text.dict ;;
        credspec_*) echo fuzz/dicts/credspec.dict ;;
    esac
}

# The seed files of a target, one per line.
seeds_for() {
    local fixtures=crates/credguard/tests/fixtures
    local -a seeds=()
    case "$1" in
        credspec_read | credspec_source)
            # The credential-spec corpus (its expectations file is not an input), the specs
            # the tests create instances with, and the bundled example.
            seeds+=("$fixtures"/credspecs/* "$fixtures"/cs1.json "$fixtures"/secret_spec.json
                examples/credspecs/*.json)
            ;;
        service_properties) seeds+=("$fixtures"/golden/s5_service_properties.json) ;;
    esac
    seeds+=(fuzz/seeds/"$1"/*)
    local seed
    for seed in "${seeds[@]}"; do
        if [[ -f $seed && ${seed##*/} != expected.txt ]]; then
            printf '%s\n' "$seed"
        fi
    done
}

failed=0
for t in $targets; do
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus"
    seeds=$(seeds_for "$t")
    [[ -n $seeds ]] || die "no seeds for $t (moved fixtures? see seeds_for in $0)"
    while IFS= read -r seed; do
        if [[ ! -e $corpus/${seed##*/} ]]; then
            cp "$seed" "$corpus"/
        fi
    done <<<"$seeds"
    # A dictionary per target: JSON tokens plus the keys the target's documents use.
    dict=$(mktemp)
    cat fuzz/dicts/json.dict $(dict_for "$t") >"$dict"
    echo "== fuzzing $t for ${seconds}s (corpus $corpus, $(ls "$corpus" | wc -l) inputs)"
    out=$(mktemp)
    rc=0
    cargo +nightly fuzz run "$t" "$corpus" -- \
        -max_total_time="$seconds" -dict="$dict" -print_final_stats=1 >"$out" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]]; then
        grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE))' "$out" || true
    else
        # The crash report: the panic, the failing input and how to reproduce it.
        grep -v -E '^(#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|"|###### )' "$out" | tail -n 80
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
    if [[ $rc -eq 0 ]]; then
        echo "fuzz result: $t ok (${seconds}s, ${runs:-?} runs, cov ${cov:-?}, corpus $(ls "$corpus" | wc -l))"
    else
        echo "fuzz result: $t FAILED (exit $rc; the input is in fuzz/artifacts/$t/)"
        failed=1
    fi
    rm -f "$out" "$dict"
done
exit $failed
