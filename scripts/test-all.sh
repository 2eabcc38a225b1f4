#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Each stage fails loudly; nothing is skipped silently. Every stage runs even when an
# earlier one failed; the last line totals every stage, and the exit status is non-zero
# when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Totals of a log as "passed failed": `test result:` lines (cargo test), the Wine suite's
# closing line, one test per fuzz target (`fuzz result:`), and one failure per stage that
# failed without a failed test of its own (a build error, a missing tool).
totals() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
         /^credguard\.exe under Wine: [0-9]+ passed, [0-9]+ failed$/ { p += $4; f += $6 }
         /^fuzz result: [^ ]+ ok/ { p += 1 }
         /^fuzz result: [^ ]+ FAILED/ { f += 1 }
         /^stage failed: / { f += 1 }
         END { printf "%d %d\n", p, f }' "$1"
}

status=0
# stage TITLE COMMAND...: runs one stage, its output shown and kept in the log.
stage() {
    local title=$1
    shift
    echo "== $title"
    local out rc=0
    out=$(mktemp)
    "$@" 2>&1 | tee "$out" || rc=$?
    cat "$out" >>"$log"
    if [[ $rc -ne 0 ]]; then
        status=1
        local failed
        failed=$(totals "$out" | cut -d' ' -f2)
        if [[ $failed -eq 0 ]]; then
            echo "stage failed: $title (exit $rc)" | tee -a "$log"
        fi
    fi
    rm -f "$out"
}

stage "cargo test (Linux, the emulator backend)" cargo test --workspace --locked
stage "the containerd-backed tests, a private containerd (scripts/containerd-tests.sh)" \
    bash scripts/containerd-tests.sh
stage "the Windows suite under Wine (scripts/windows-tests.sh, docs/WINDOWS.md)" \
    bash scripts/windows-tests.sh
stage "fuzzing, 30 s per target (scripts/fuzz.sh --short, docs/RELIABILITY.md)" \
    bash scripts/fuzz.sh --short

read -r passed failed < <(totals "$log")
echo "$passed passed, $failed failed"
exit $status
