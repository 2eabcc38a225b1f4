#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Each stage fails loudly; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (Linux, the emulator backend)"
cargo test --workspace --locked
