#!/usr/bin/env bash
# The tests that need a real containerd: each starts a PRIVATE containerd (its own config,
# root, state and socket under a temp dir; credguard_agent::test_support::PrivateContainerd)
# and stops it; the system's containerd, if any, is not touched.
#
# Needs root (containerd runs as root). When `containerd` or `ctr` is missing it installs
# Debian's `containerd` package with apt-get. Fails loudly, never skips: a missing
# containerd that cannot be installed is a failure.
#
#   scripts/containerd-tests.sh           the containerd-backed tests
#   scripts/containerd-tests.sh --bench   also the benchmark of one round (docs/PERFORMANCE.md)
set -euo pipefail
cd "$(dirname "$0")/.."

bench=0
for arg in "$@"; do
    case $arg in
        --bench) bench=1 ;;
        *) echo "containerd-tests.sh: unknown argument $arg (use --bench)" >&2; exit 2 ;;
    esac
done

if [[ $(id -u) -ne 0 ]]; then
    echo "containerd-tests.sh: must run as root (a private containerd runs as root); try: sudo $0" >&2
    exit 1
fi

if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "containerd-tests.sh: containerd is not installed and there is no apt-get; install containerd (with ctr) and run again" >&2
        exit 1
    fi
    echo "containerd-tests.sh: installing Debian's containerd package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || { echo "containerd-tests.sh: apt-get update failed" >&2; exit 1; }
    apt-get install -y -q --no-install-recommends containerd \
        || { echo "containerd-tests.sh: apt-get install containerd failed" >&2; exit 1; }
fi
# The package may start the system's containerd; the tests do not use it.
echo "containerd-tests.sh: $(containerd --version)"

status=0
cargo test --locked -p credguard-agent --features test-support --test containerd -- --ignored || status=1
cargo test --locked -p credguard-cli --test alive_from -- --ignored || status=1
# The node agent against the same kind of private containerd: the loop, and the process.
cargo test --locked -p credguard-agent --features test-support --test agent_containerd -- --ignored || status=1
cargo test --locked -p credguard-cli --test agent_containerd -- --ignored || status=1
if [[ $bench -eq 1 ]]; then
    cargo bench --locked -p credguard-agent --features test-support --bench round || status=1
fi
exit $status
