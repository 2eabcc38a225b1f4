#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Each stage fails loudly; nothing is skipped silently. The last line totals every stage.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo test (Linux, the emulator backend)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

echo "== the Windows suite under Wine (scripts/windows-tests.sh, docs/WINDOWS.md)"
bash scripts/windows-tests.sh 2>&1 | tee -a "$log"

# Totals of every `test result:` line above, as one closing line.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     /^credguard\.exe under Wine: [0-9]+ passed, [0-9]+ failed$/ { p += $4; f += $6 }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
