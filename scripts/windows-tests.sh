#!/usr/bin/env bash
# The Windows test suite, run on Linux under Wine.
#
#   scripts/windows-tests.sh
#
# 1. Installs what is missing: the x86_64-pc-windows-gnu Rust target, MinGW
#    (gcc-mingw-w64-x86-64) and wine64; builds the bcryptprimitives.dll shim Wine 8 lacks
#    (scripts/windows/bcryptprimitives.c) into a fresh Wine prefix under target/.
# 2. cargo clippy for the Windows target (the whole workspace, credguard-winapi included),
#    with and without the stub-tests feature, -D warnings.
# 3. Builds the stand-in computecore.dll (crates/computecore-stub), puts it next to the test
#    executables and runs `cargo test --workspace` for the Windows target under wine64, with
#    credguard's `stub-tests` feature: the FFI crate (crates/credguard-winapi, its own unit
#    tests), the lifecycle and its rollbacks against the stand-in, the registry reader, the
#    missing-DLL messages.
# 4. Runs credguard.exe under Wine: `probe` and `instances add/list/show/remove` with
#    `--backend hcs` through the stand-in DLL, the state directories it creates closed to
#    others, faults injected through the same state,
#    `registry://` credential specs after `wine64 reg add`, `doctor`'s CCG plug-in checks
#    against keys made with `wine64 reg add`, and the missing-DLL message of
#    an exe without the DLL beside it.
#
# Nothing is skipped: anything missing that cannot be installed fails the script, in CI
# (CI=true) and elsewhere. Exit status 0 only when every step passed.
#
# Environment: CARGO_TARGET_DIR is honoured; WINE64 overrides /usr/lib/wine/wine64.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TRIPLE=x86_64-pc-windows-gnu
WINE64=${WINE64:-/usr/lib/wine/wine64}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/$TRIPLE/debug
WORK=$TARGET_DIR/windows-tests
FEATURES=(--features credguard/stub-tests)
SPEC_FILE=$ROOT/examples/credspecs/contoso_webapp01.json

export WINEPREFIX=$WORK/prefix
export WINEDEBUG=-all
# Keep Wine from asking to install Mono/Gecko on a fresh prefix.
export WINEDLLOVERRIDES="mscoree,mshtml="
# The runner is given as cargo configuration, not as CARGO_TARGET_<triple>_RUNNER: test
# processes inherit that variable, and assert_cmd would then start child executables
# through /usr/lib/wine/wine64 from inside Wine.
unset CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER
RUNNER=(--config "target.$TRIPLE.runner='$WINE64'")

started=$SECONDS
step() { printf '\n==> %s (%ds)\n' "$*" $((SECONDS - started)); }
die() {
    printf 'windows-tests: FAILED: %s\n' "$*" >&2
    exit 1
}

# --- 1. Tools -----------------------------------------------------------------------------

apt_updated=0
apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        die "missing $*: install it (apt-get install $*) or run as root so this script can"
    fi
    if [[ $apt_updated -eq 0 ]]; then
        apt-get update -qq || die "apt-get update failed (needed to install $*)"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
        die "apt-get install $* failed"
}

step "checking the tools"
command -v cargo >/dev/null || die "cargo is not on PATH"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE"; then
    rustup target add "$TRIPLE" || die "rustup target add $TRIPLE failed"
fi
if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    apt_install gcc-mingw-w64-x86-64
fi
if [[ ! -x $WINE64 ]]; then
    apt_install --no-install-recommends wine64
fi
command -v x86_64-w64-mingw32-gcc >/dev/null || die "x86_64-w64-mingw32-gcc is still missing"
# python3 reads doctor's JSON document in section 4.
command -v python3 >/dev/null || apt_install python3
command -v python3 >/dev/null || die "python3 is still missing"
[[ -x $WINE64 ]] || die "$WINE64 is still missing"
WINESERVER=$(dirname "$WINE64")/wineserver
echo "rust target $TRIPLE, $(x86_64-w64-mingw32-gcc --version | head -1), $("$WINE64" --version)"

# A path as Windows programs under Wine see it (drive Z: is /).
winpath() { printf 'Z:%s' "${1//\//\\}"; }

step "creating a fresh Wine prefix in $WINEPREFIX"
if [[ -d $WINEPREFIX ]]; then
    "$WINESERVER" -k 2>/dev/null || true
    rm -rf "$WINEPREFIX"
fi
mkdir -p "$WORK"
"$WINE64" wineboot --init >/dev/null 2>&1 || die "wineboot --init failed in $WINEPREFIX"
"$WINESERVER" -w
[[ -d $WINEPREFIX/drive_c/windows/system32 ]] || die "the Wine prefix has no system32"
# The wineserver of this prefix (ours alone) goes when the script ends, whatever happens.
trap '"$WINESERVER" -k 2>/dev/null || true' EXIT

step "building the bcryptprimitives.dll shim"
x86_64-w64-mingw32-gcc -O2 -Wall -Werror -shared -o "$WORK/bcryptprimitives.dll" \
    scripts/windows/bcryptprimitives.c -ladvapi32 || die "the bcryptprimitives shim does not build"
cp "$WORK/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"

# --- 2. Lints -------------------------------------------------------------------------------

step "cargo clippy --target $TRIPLE --all-targets -- -D warnings"
cargo clippy --quiet --locked --target "$TRIPLE" --workspace --all-targets -- -D warnings ||
    die "clippy for $TRIPLE"
step "cargo clippy --target $TRIPLE --all-targets ${FEATURES[*]} -- -D warnings"
cargo clippy --quiet --locked --target "$TRIPLE" --workspace --all-targets "${FEATURES[@]}" -- -D warnings ||
    die "clippy for $TRIPLE with the stub tests"

# --- 3. cargo test under Wine -----------------------------------------------------------------

step "building the stand-in computecore.dll, credguard.exe and the test executables"
cargo build --quiet --locked --target "$TRIPLE" -p computecore-stub "${FEATURES[@]}" ||
    die "the stand-in computecore.dll does not build"
cargo build --quiet --locked --target "$TRIPLE" -p credguard-cli "${FEATURES[@]}" ||
    die "credguard.exe does not build"
# Benchmarks are left out: they are timed on Linux (docs/PERFORMANCE.md), and their
# executables print no "test result:" line.
cargo test --quiet --locked --target "$TRIPLE" --workspace --lib --test '*' "${FEATURES[@]}" --no-run ||
    die "the Windows tests do not build"
STUB_DLL=$OUT/computecore.dll
[[ -f $STUB_DLL ]] || die "$STUB_DLL was not built"
# Test executables live in deps/: the backend finds the stand-in in the executable's
# directory (System32 has no computecore.dll under Wine).
cmp -s "$STUB_DLL" "$OUT/deps/computecore.dll" || cp -f "$STUB_DLL" "$OUT/deps/computecore.dll"

# The CLI's integration tests (crates/credguard-cli/tests/) are left out: they assume
# `--backend auto` means the emulator (it means hcs on Windows) and Unix file modes;
# credguard.exe is tested under Wine by section 4 below instead. The CLI's unit tests do run.
step "cargo test --target $TRIPLE --workspace under wine64"
rm -rf "$WORK/stub-state"
mkdir -p "$WORK/stub-state"
: >"$WORK/cargo-test.log"
export CREDGUARD_STUB_STATE_DIR
CREDGUARD_STUB_STATE_DIR=$(winpath "$WORK/stub-state")
cargo test --locked --target "$TRIPLE" "${RUNNER[@]}" --workspace --exclude credguard-cli --lib --test '*' "${FEATURES[@]}" \
    2>&1 | tee -a "$WORK/cargo-test.log" || die "cargo test for $TRIPLE under Wine"
cargo test --locked --target "$TRIPLE" "${RUNNER[@]}" -p credguard-cli --bins "${FEATURES[@]}" \
    2>&1 | tee -a "$WORK/cargo-test.log" || die "cargo test -p credguard-cli --bins for $TRIPLE under Wine"
# A test executable that crashes under Wine (an access violation, say) can end with exit
# code 0 once winedbg has printed its backtrace: so every test executable must also have
# printed its "test result:" line.
awk '
    /^ *(Running|Doc-tests) / {
        if (open) { print "windows-tests: no test result from " name; bad = 1 }
        open = 1; name = $0; next
    }
    /^test result: ok\./ { open = 0 }
    END {
        if (open) { print "windows-tests: no test result from " name; bad = 1 }
        exit bad
    }
' "$WORK/cargo-test.log" || die "a Windows test executable ended without its test result (crashed?)"

# --- 4. credguard.exe under Wine ----------------------------------------------------------------

step "credguard.exe under Wine"
CLI=$WORK/cli
NODLL=$WORK/cli-nodll
STATE=$WORK/cli-state
rm -rf "$CLI" "$NODLL" "$STATE"
mkdir -p "$CLI" "$NODLL" "$STATE"
cp "$OUT/credguard.exe" "$STUB_DLL" "$CLI/"
cp "$OUT/credguard.exe" "$NODLL/"
# The CLI's emulator commands use <state-dir>/emulator: the stand-in DLL shares it.
CREDGUARD_STUB_STATE_DIR=$(winpath "$STATE/emulator")
SPEC_WIN=$(winpath "$SPEC_FILE")

passed=0
failed=0
out=""
err=""
code=0
# credguard EXE_DIR ARGS...: runs credguard.exe, keeping stdout, stderr and the exit code.
credguard() {
    local dir=$1 try
    shift
    # Up to 3 tries, only when Wine itself could not start the program: a client that
    # connects while the idle wineserver shuts down gets "wine client error ... Connection
    # reset by peer" before credguard.exe runs at all. Any other result is the check's.
    for try in 1 2 3; do
        code=0
        "$WINE64" "$dir/credguard.exe" --state-dir "$(winpath "$STATE")" "$@" \
            >"$WORK/out.txt" 2>"$WORK/err.txt" || code=$?
        out=$(tr -d '\r' <"$WORK/out.txt")
        err=$(tr -d '\r' <"$WORK/err.txt")
        [[ $err == "wine client error:"* ]] || break
        echo "(Wine could not start credguard.exe, try $try: ${err%%$'\n'*})"
        timeout 60 "$WINESERVER" -w || true
    done
}
ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}
not_ok() {
    failed=$((failed + 1))
    printf 'not ok - %s\n  exit code: %s\n  stdout:\n%s\n  stderr:\n%s\n' \
        "$1" "$code" "$(sed 's/^/    /' <<<"$out")" "$(sed 's/^/    /' <<<"$err")"
}
# expect NAME CODE [--out TEXT]... [--err TEXT]... [--no-out TEXT]...: checks the last run.
expect() {
    local name=$1 want=$2
    shift 2
    local good=1
    [[ $code -eq $want ]] || good=0
    while [[ $# -gt 0 ]]; do
        case $1 in
        --out) grep -qF -- "$2" <<<"$out" || good=0 ;;
        --err) grep -qF -- "$2" <<<"$err" || good=0 ;;
        --no-out) ! grep -qF -- "$2" <<<"$out" || good=0 ;;
        *) die "expect: unknown option $1" ;;
        esac
        shift 2
    done
    if [[ $good -eq 1 ]]; then ok "$name"; else not_ok "$name"; fi
}

credguard "$NODLL" --backend hcs instances list
expect "without computecore.dll, --backend hcs says what is missing (exit 8)" 8 \
    --err "hcs::LoadLibrary: cannot load computecore.dll from System32 or from the directory of credguard.exe" \
    --err "the Host Compute Service API needs Windows 10 version 1809 / Windows Server 2019 or later" \
    --err "ERROR_MOD_NOT_FOUND"

credguard "$NODLL" credspec validate "$SPEC_WIN"
expect "without computecore.dll, credspec validate still works" 0

credguard "$CLI" --backend hcs probe --credspec "$SPEC_WIN"
expect "probe through the stand-in DLL passes" 0 --out "backend hcs" --out "probe passed"

credguard "$CLI" --backend hcs probe --credspec "$SPEC_WIN" --isolation hyperv
expect "probe with Hyper-V isolation passes" 0 --out "hvsocket service" --out "probe passed"

credguard "$CLI" --backend hcs instances add --id wine-cli-1 --credspec "$SPEC_WIN"
expect "instances add through the DLL" 0
credguard "$CLI" --backend hcs instances list
expect "instances list shows it" 0 --out "wine-cli-1"
credguard "$CLI" --backend hcs --output json instances show wine-cli-1
expect "instances show gives its state" 0 --out '"Cookie"'
credguard "$CLI" emulator log
expect "the calls went through the stand-in DLL into the shared emulator state" 0 \
    --out '"api":"HcsModifyServiceSettings"' --out 'wine-cli-1'
credguard "$CLI" --backend hcs instances add --id wine-cli-1 --credspec "$SPEC_WIN"
expect "a second add of the same id is refused (exit 5)" 5
credguard "$CLI" --backend hcs instances remove wine-cli-1
expect "instances remove" 0 --out "removed the CCG instance of \`wine-cli-1\`"
credguard "$CLI" --backend hcs instances list
expect "instances list no longer shows it" 0 --no-out "wine-cli-1"
# no_lock_files NAME: the journal directory holds no *.lock file (issue 9, point 14).
no_lock_files() {
    code=0
    out=$(find "$STATE/journal/hcs" -maxdepth 1 -name '*.lock' 2>&1)
    err=""
    if [[ -z $out ]]; then ok "$1"; else not_ok "$1"; fi
}
no_lock_files "add, refused add and remove leave no lock file in the journal"

# The state directories credguard.exe and the DLL created (docs/WINDOWS.md, "Owner-only
# state"): Wine keeps no DACL but turns the one it is given into the Unix mode, so an
# owner-only DACL shows as no access for others (Wine's own default would be 0755).
code=0
out=""
err=""
for dir in "$STATE/journal" "$STATE/journal/hcs" "$STATE/emulator"; do
    mode=$(stat -c '%a' "$dir" 2>/dev/null) || mode=missing
    if [[ $mode == missing ]] || (((8#$mode & 8#007) != 0)); then
        err+="$dir: mode $mode"$'\n'
    fi
done
if [[ -z $err ]]; then
    ok "the state directories credguard created are closed to others (owner-only DACL)"
else
    not_ok "the state directories credguard created are closed to others (owner-only DACL)"
fi

# HCS applies an AddInstance and still reports failure: the CLI rolls back and reports it.
credguard "$CLI" emulator inject --api HcsModifyServiceSettings --operation AddInstance \
    --apply-then-fail --hresult 0x8037011E \
    --result '{"Error":-2143354594,"ErrorMessage":"service disconnected"}'
expect "a fault is queued in the stand-in's state" 0
credguard "$CLI" --backend hcs instances add --id wine-cli-2 --credspec "$SPEC_WIN"
expect "an AddInstance applied despite its failure is rolled back and reported (exit 3)" 3 \
    --err "service disconnected" --err "HCS_E_SERVICE_DISCONNECT"
credguard "$CLI" --backend hcs instances list
expect "nothing is left behind after the rollback" 0 --no-out "wine-cli-2"
no_lock_files "a rolled-back add leaves no lock file in the journal"

# registry:// credential specs, written with Wine's reg.exe.
REG_KEY='HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs'
"$WINE64" reg add "$REG_KEY" /v credguard-wine /t REG_SZ /d "$(tr -d '\n' <"$SPEC_FILE")" /f \
    >/dev/null 2>&1 || die "wine64 reg add failed"
"$WINE64" reg add "$REG_KEY" /v credguard-dword /t REG_DWORD /d 7 /f >/dev/null 2>&1 ||
    die "wine64 reg add failed"
credguard "$CLI" credspec validate registry://credguard-wine
expect "credspec validate registry://NAME reads the registered spec" 0 --out "registry://credguard-wine"
credguard "$CLI" credspec show registry://credguard-wine
expect "credspec show registry://NAME shows it" 0 --out "webapp01" --out "contoso.com"
credguard "$CLI" credspec validate registry://credguard-absent
expect "registry:// of an unregistered name says so (exit 2)" 2 \
    --err "cannot read the credential spec registry://credguard-absent" \
    --err "it is not registered: registry key HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs has no value of that name"
credguard "$CLI" credspec validate registry://credguard-dword
expect "registry:// of a value that is not a string says so (exit 2)" 2 \
    --err "the registry value under HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs is of type REG_DWORD, not a string (REG_SZ)"
credguard "$CLI" --backend hcs instances add --id wine-cli-reg --credspec registry://credguard-wine
expect "instances add --credspec registry://NAME" 0
credguard "$CLI" emulator log --tail 3
expect "the registered spec is what AddInstance carried" 0 --out "wine-cli-reg" --out "NetBiosName"
credguard "$CLI" --backend hcs instances remove wine-cli-reg
expect "and its removal" 0 --out "removed the CCG instance of \`wine-cli-reg\`"
# doctor's registry checks (docs/WINDOWS.md, "credguard doctor"): CCG plug-ins registered
# with Wine's reg.exe, as an installer would, right and wrong. Wine has no vmcompute nor
# ccg.exe, so doctor always exits 1 here; the plug-in checks are what is looked at.
CCG_KEY='HKLM\SYSTEM\CurrentControlSet\Control\CCG\COMClasses'
WRONG_CCG_KEY='HKLM\SYSTEM\CurrentControlSet\CCG\COMClasses'
GOOD_GUID='{CCC2A336-D7F3-4818-A213-272B7924213E}'   # registered right, its DLL present
WRONG_GUID='{859E1386-BDB4-49E8-85C7-3070B13920E1}'  # under the wrongly documented key
NODLL_GUID='{E4781092-F116-4B79-B55E-28EB6A224E26}'  # its InprocServer32 file is missing
STALE_GUID='{0DC7A1E5-C0DE-4C0D-8DC7-00000000C0DE}'  # in COMClasses with no CLSID behind it
reg_add() { "$WINE64" reg add "$@" /f >/dev/null 2>&1 || die "wine64 reg add $1 failed"; }
reg_add "$CCG_KEY\\$GOOD_GUID"
# REG_EXPAND_SZ, as regsvr32 writes it: doctor expands %SystemRoot%.
reg_add "HKCR\\CLSID\\$GOOD_GUID\\InprocServer32" /ve /t REG_EXPAND_SZ /d '%SystemRoot%\system32\kernel32.dll'
reg_add "$WRONG_CCG_KEY\\$WRONG_GUID"
reg_add "HKCR\\CLSID\\$WRONG_GUID\\InprocServer32" /ve /t REG_SZ /d 'C:\windows\system32\kernel32.dll'
reg_add "$CCG_KEY\\$NODLL_GUID"
reg_add "HKCR\\CLSID\\$NODLL_GUID\\InprocServer32" /ve /t REG_SZ /d 'C:\credguard-absent\ccgplugin.dll'
reg_add "$CCG_KEY\\$STALE_GUID"
# plugin_spec GUID: the example spec with that plug-in, as a Windows path.
plugin_spec() {
    local file="$WORK/doctor-spec-${1//[\{\}]/}.json"
    sed 's|"ActiveDirectoryConfig": {|"ActiveDirectoryConfig": {"HostAccountConfig": {"PortableCcgVersion": "1", "PluginGUID": "'"$1"'", "PluginInput": "doctor-never-shows-this"},|' \
        "$SPEC_FILE" >"$file"
    winpath "$file"
}
credguard "$CLI" doctor --credspec "$(plugin_spec "$GOOD_GUID")"
expect "doctor: a plug-in registered under Control\\CCG\\COMClasses with its DLL is ok" 1 \
    --out "plugin_registration" --out "is registered with CCG: $CCG_KEY\\$GOOD_GUID" \
    --out "system32\\kernel32.dll, which exists" \
    --out "containers_feature" --out "not installed: the Containers feature is not enabled" \
    --out "ccg.exe is missing: it is Container Credential Guard" \
    --out "next: enable the Containers feature" --no-out "doctor-never-shows-this"
credguard "$CLI" --output json doctor --credspec "$(plugin_spec "$GOOD_GUID")"
expect "doctor --output json: the plug-in's checks are ok" 1 \
    --out '{"name":"plugin_registration","status":"ok"' \
    --out '{"name":"plugin_com_class","status":"ok"' \
    --out '{"name":"hcs_service","status":"failed"'
credguard "$CLI" doctor --credspec "$(plugin_spec "$WRONG_GUID")"
expect "doctor: a plug-in under the wrongly documented CurrentControlSet\\CCG\\COMClasses is called out" 1 \
    --out "is registered under $WRONG_CCG_KEY\\$WRONG_GUID, a key some documents give and CCG never reads" \
    --out "reg delete \"$WRONG_CCG_KEY\\$WRONG_GUID\"" \
    --out "plug-ins registered under $WRONG_CCG_KEY, a key some documents give and CCG never reads: $WRONG_GUID"
credguard "$CLI" doctor --credspec "$(plugin_spec "$NODLL_GUID")"
expect "doctor: a COM class whose InprocServer32 file is missing fails" 1 \
    --out "names C:\\credguard-absent\\ccgplugin.dll (HKCR\\CLSID\\$NODLL_GUID\\InprocServer32), which does not exist" \
    --out "is registered with CCG: $CCG_KEY\\$NODLL_GUID"
credguard "$CLI" doctor
expect "doctor: a COMClasses entry with no CLSID behind it is listed as stale" 1 \
    --out "warning  stale_comclasses" --out "no COM class (HKCR\\CLSID\\{GUID}) behind them" \
    --out "$STALE_GUID" --out "warning  ccg_event_channel" --no-out "plugin_registration"
credguard "$CLI" --output json doctor --credspec "$(plugin_spec "$NODLL_GUID")" --container wine-doctor-1
code_was=$code
if [[ $code_was -eq 1 && $(wc -l <<<"$out") -eq 1 ]] &&
    python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
assert set(v) == {"checks", "plugin_guid", "container", "events", "summary"}, v.keys()
for c in v["checks"]:
    assert set(c) == {"name", "status", "detail", "next_step"}, c
    assert c["status"] in ("ok", "warning", "failed"), c
    assert (c["next_step"] is None) == (c["status"] == "ok"), c
names = {c["name"]: c["status"] for c in v["checks"]}
assert names["plugin_com_class"] == "failed" and names["plugin_registration"] == "ok", names
assert names["stale_comclasses"] == "warning" and "container_events" in names, names
assert v["container"] == "wine-doctor-1" and v["plugin_guid"] == sys.argv[1], v
assert sum(v["summary"].values()) == len(v["checks"]), v["summary"]
' "$NODLL_GUID" <<<"$out" 2>"$WORK/json-check.txt"; then
    ok "doctor --output json is one document of checks {name,status,detail,next_step}, with a summary"
    credguard "$CLI" doctor --container wine-doctor-1
    expect "doctor --container: Wine has no event log, which is a warning naming the channel" 1 \
        --out "warning  container_events" --out "Microsoft-Windows-Containers-CCG/Admin"
else
    err="$err$(cat "$WORK/json-check.txt")"
    not_ok "doctor --output json is one document of checks {name,status,detail,next_step}, with a summary"
fi
# A registry:// name with an ESC and 3,000 more characters: shown escaped, cut, and once.
credguard "$CLI" credspec validate "registry://evil$(printf '\033')x$(printf 'n%.0s' {1..3000})"
if [[ $code -eq 2 && $err == *'registry://evil\u{1b}xnnn'* && $err != *$'\033'* &&
    $(grep -o evil <<<"$err" | wc -l) -eq 1 && ${#err} -lt 2000 ]]; then
    ok "a registry:// name is shown escaped, short and once"
else
    not_ok "a registry:// name is shown escaped, short and once"
fi
# DOS device names are refused before anything is opened: file://COM1 used to hang (an
# Azure VM's COM1 is its serial console) and file://CON to read the console; a plain path
# naming a device is refused too (`-` reads standard input).
for source in file://COM1 file://CON file://COM1.json 'file://sub/CONIN$' COM1 'C:\x\nul.json'; do
    code=0
    timeout 60 "$WINE64" "$CLI/credguard.exe" --state-dir "$(winpath "$STATE")" \
        credspec validate "$source" </dev/null >"$WORK/out.txt" 2>"$WORK/err.txt" ||
        code=$?
    out=$(tr -d '\r' <"$WORK/out.txt")
    err=$(tr -d '\r' <"$WORK/err.txt")
    expect "credspec validate $source is refused at once (exit 2)" 2 \
        --err "is a DOS device name on Windows"
done

# Plain paths in the Windows device namespace, and `COM1:`: refused before any open
# (`COM1:` and `\\.\COM1` hung credguard.exe; `COM1#NAME` opened COM1 through an exists()
# check; `\\.\NUL` read as an empty spec), for --credspec, --alive-file and
# --plugin-input-file.
# run_guarded ARGS...: credguard.exe under `timeout 60`, standard input closed.
run_guarded() {
    code=0
    timeout 60 "$WINE64" "$CLI/credguard.exe" --state-dir "$(winpath "$STATE")" "$@" \
        </dev/null >"$WORK/out.txt" 2>"$WORK/err.txt" || code=$?
    out=$(tr -d '\r' <"$WORK/out.txt")
    err=$(tr -d '\r' <"$WORK/err.txt")
}
for source in CON NUL 'COM1:' 'con:' 'COM1#webapp01' '\\.\COM1' '//./COM1' '\\.\NUL' \
    '\\.\CONIN$' '\\.\pipe\credguard' '\\?\GLOBALROOT\Device\Null' "\\\\?\\$(winpath "$WORK")\\CON"; do
    run_guarded credspec validate "$source"
    expect "credspec validate $source is refused at once (exit 2)" 2 --err "on Windows, not a file"
done
run_guarded reconcile --dry-run --alive-file '\\.\COM1'
expect "reconcile --alive-file \\\\.\\COM1 is refused at once (exit 2)" 2 --err "on Windows, not a file"
run_guarded credspec new --account webapp01 --domain contoso.com --netbios CONTOSO \
    --sid S-1-5-21-1-2-3 --guid 11111111-2222-3333-4444-555555555555 \
    --plugin-guid 859E1386-BDB4-49E8-85C7-3070B13920E1 --plugin-input-file 'COM1:'
expect "credspec new --plugin-input-file COM1: is refused at once (exit 2)" 2 --err "on Windows, not a file"

# file://NAME through links made on the Linux side, which Wine follows transparently: the
# final path of the opened handle (GetFinalPathNameByHandleW) shows where they lead.
SPECS=$WORK/cli-specs
rm -rf "$SPECS" "$WORK/outside.json"
mkdir -p "$SPECS/sub"
cp "$SPEC_FILE" "$SPECS/sub/ok.json"
sed 's/contoso/outsider/g' "$SPEC_FILE" >"$WORK/outside.json"
ln -s "$WORK/outside.json" "$SPECS/abs.json"
ln -s ../outside.json "$SPECS/up.json"
ln -s "$WORK" "$SPECS/parent"
ln -s sub/ok.json "$SPECS/in.json"
ln -s /dev/zero "$SPECS/zero.json"
ln -s /dev/ttyS0 "$SPECS/serial.json"
mkfifo "$SPECS/fifo.json"
for name in sub/ok.json 'sub\ok.json' in.json; do
    run_guarded credspec validate --credspec-dir "$(winpath "$SPECS")" "file://$name"
    expect "file://$name inside the credential-spec directory is read" 0 --out "ok"
done
for name in abs.json up.json parent/outside.json zero.json serial.json; do
    run_guarded credspec show --credspec-dir "$(winpath "$SPECS")" "file://$name"
    expect "file://$name (a link leading outside) is refused (exit 2)" 2 \
        --err "leads outside the credential-spec directory" --no-out "outsider"
done
if grep -qF outsider <<<"$err"; then not_ok "no message shows the outside file"; else ok "no message shows the outside file"; fi
run_guarded credspec validate --credspec-dir "$(winpath "$SPECS")" file://sub
expect "file://sub (a directory) is refused as one (exit 2)" 2 --err "is a directory, not a regular file"
run_guarded credspec validate --credspec-dir "$(winpath "$SPECS")" file://fifo.json
expect "file://fifo.json (a FIFO) fails at once (exit 2)" 2
for name in ../outside.json 'sub\..\..\outside.json' '.. /outside.json'; do
    run_guarded credspec validate --credspec-dir "$(winpath "$SPECS")" "file://$name"
    expect "file://$name is refused (exit 2)" 2 --err "component"
done

# registry:// names with U+202E, and with 30,000 characters: escaped, cut, said once.
LC_ALL=C.UTF-8 run_guarded credspec validate "registry://rlo$(printf '\u202e')txt.json"
if [[ $code -eq 2 && $err == *'\u{202e}'* && $err != *$'\u202e'* ]]; then
    ok "a registry:// name with U+202E is shown escaped"
else
    not_ok "a registry:// name with U+202E is shown escaped"
fi
run_guarded credspec validate "registry://LoNg$(printf 'n%.0s' {1..30000})"
if [[ $code -eq 2 && $(grep -o LoNg <<<"$err" | wc -l) -eq 1 && ${#err} -lt 2000 ]]; then
    ok "a 30,000-character registry:// name is shown short and once"
else
    err=${err:0:3000}
    not_ok "a 30,000-character registry:// name is shown short and once"
fi

# Lock files after reconcile: a process killed while it holds a record's lock (in the middle
# of an AddInstance the stand-in delays) leaves its record and lock file; reconcile removes
# both, and a lock file left with no record beside it.
credguard "$CLI" emulator inject --api HcsModifyServiceSettings --operation AddInstance --delay-ms 120000
expect "a slow AddInstance is queued" 0
"$WINE64" "$CLI/credguard.exe" --state-dir "$(winpath "$STATE")" --backend hcs instances add \
    --id wine-killed --credspec "$SPEC_WIN" </dev/null >/dev/null 2>&1 &
adder=$!
deadline=$((SECONDS + 60))
# The add holds the record's lock once its lock file and `creating` record exist (polled
# with a deadline, and only while the add still runs: one that ended early fails below).
until { compgen -G "$STATE/journal/hcs/*.lock" && compgen -G "$STATE/journal/hcs/*.json"; } \
    >/dev/null || ((SECONDS > deadline)) || ! kill -0 "$adder" 2>/dev/null; do sleep 0.2; done
kill -9 "$adder" 2>/dev/null || true
wait "$adder" 2>/dev/null || true
# A killed Wine process can take the prefix's wineserver down a moment later, resetting a
# later client's connection: let it finish shutting down, then keep a fresh one running for
# the rest of the script (the EXIT trap ends it).
timeout 60 "$WINESERVER" -w || true
"$WINESERVER" -p
code=0
out=$(find "$STATE/journal/hcs" -maxdepth 1 -name '*.lock')
err=""
if [[ -n $out ]]; then ok "a killed add leaves its lock file"; else not_ok "a killed add leaves its lock file"; fi
credguard "$CLI" emulator inject --clear
: >"$STATE/journal/hcs/0123abcd-orphan.lock"
credguard "$CLI" --backend hcs reconcile
expect "reconcile after the killed add" 0
no_lock_files "reconcile removes the killed process's lock file and an orphaned one"
credguard "$CLI" --backend hcs instances list
expect "nothing of the killed add is left" 0 --no-out "wine-killed"

# A failed AddInstance (not applied) leaves no lock file either.
credguard "$CLI" emulator inject --api HcsModifyServiceSettings --operation AddInstance --hresult E_FAIL
expect "a failing AddInstance is queued" 0
credguard "$CLI" --backend hcs instances add --id wine-cli-failed --credspec "$SPEC_WIN"
expect "a failed add says so (exit 3)" 3 --err "E_FAIL"
no_lock_files "a failed add leaves no lock file in the journal"

# No state file is opened through a link (issue 9, point 9): a call log and a journal record
# planted as links made on the Linux side (which Wine follows whatever the open's flags)
# are refused, and their targets are neither written nor moved.
: >"$WORK/victim-log"
printf 'not json\n' >"$WORK/victim-record"
rm -f "$STATE/emulator/calls.jsonl"
ln -s "$WORK/victim-log" "$STATE/emulator/calls.jsonl"
ln -s "$WORK/victim-record" "$STATE/journal/hcs/0f0f0f0f-0000-5000-8000-000000000000.json"
credguard "$CLI" --backend hcs instances add --id wine-cli-linked --credspec "$SPEC_WIN"
if [[ $code -ne 0 && $err == *"through a link: remove it"* && ! -s $WORK/victim-log ]]; then
    ok "a planted call-log link is refused and its target stays empty"
else
    not_ok "a planted call-log link is refused and its target stays empty"
fi
rm -f "$STATE/emulator/calls.jsonl"
credguard "$CLI" --backend hcs reconcile
expect "reconcile skips a linked journal record, naming it" 0 --err "through a link: remove it"
if [[ -L "$STATE/journal/hcs/0f0f0f0f-0000-5000-8000-000000000000.json" &&
    $(cat "$WORK/victim-record") == "not json" ]]; then
    ok "the linked record's target is neither moved nor changed"
else
    not_ok "the linked record's target is neither moved nor changed"
fi
rm -f "$STATE/journal/hcs/0f0f0f0f-0000-5000-8000-000000000000.json"

# Read-only commands change nothing in the journal (issue 9, point 15), a corrupt record
# included (reported, left for reconcile); `emulator log` changes nothing in the emulator's
# state. (Through --backend hcs the stand-in DLL, being the HCS, logs the calls it answers.)
credguard "$CLI" --backend hcs instances add --id wine-cli-ro --credspec "$SPEC_WIN"
expect "an instance for the read-only commands" 0
printf 'not json\n' >"$STATE/journal/hcs/0e0e0e0e-0000-5000-8000-000000000000.json"
snapshot() { find "$1" -printf '%p %y %s %m %T@\n' | sort; }
before=$(snapshot "$STATE/journal")
credguard "$CLI" --backend hcs instances list
expect "instances list with a corrupt record reports it" 0 --out "wine-cli-ro"
credguard "$CLI" --backend hcs instances show wine-cli-ro
expect "instances show" 0
credguard "$CLI" --backend hcs reconcile --dry-run
expect "reconcile --dry-run" 0
code=0
out=$(diff <(echo "$before") <(snapshot "$STATE/journal") 2>&1)
err=""
if [[ -z $out ]]; then ok "list, show and reconcile --dry-run changed nothing in the journal"; else not_ok "list, show and reconcile --dry-run changed nothing in the journal"; fi
before=$(snapshot "$STATE/emulator")
credguard "$CLI" emulator log
expect "emulator log" 0 --out "wine-cli-ro"
code=0
out=$(diff <(echo "$before") <(snapshot "$STATE/emulator") 2>&1)
err=""
if [[ -z $out ]]; then ok "emulator log changed nothing in the emulator's state"; else not_ok "emulator log changed nothing in the emulator's state"; fi
credguard "$CLI" --backend hcs instances remove wine-cli-ro
expect "and its removal" 0
credguard "$CLI" --backend hcs reconcile
expect "reconcile moves the corrupt record aside" 0
if [[ ! -e "$STATE/journal/hcs/0e0e0e0e-0000-5000-8000-000000000000.json" ]]; then
    ok "the corrupt record is gone from the journal after reconcile"
else
    not_ok "the corrupt record is gone from the journal after reconcile"
fi
no_lock_files "no lock file is left after the read-only commands, remove and reconcile"

# An HvSocket hot-add that fails names the utility VM and the ServiceId (issue 9, point 16),
# and its rollback leaves no lock file.
credguard "$CLI" --backend hcs instances add --id wine-cli-hv --isolation hyperv --uvm uvm-absent \
    --credspec "$SPEC_WIN"
expect "a failed hot-add names the utility VM and the ServiceId (exit 3)" 3 \
    --err "the utility VM \`uvm-absent\` (ServiceId \`" --err "HCS_E_SYSTEM_NOT_FOUND"
no_lock_files "the failed hot-add's rollback leaves no lock file"

# The node agent (issue 11; docs/WINDOWS.md, "The agent as a Windows service"): its help, its
# flags checked before it starts, and --service outside the service control manager.
credguard "$CLI" agent --help
expect "agent --help documents its flags and ends with examples" 0 \
    --out "--alive-from <SOURCE>" --out "--metrics-listen <ADDR>" --out "Examples:"
credguard "$CLI" agent service --help
expect "agent service --help lists install and uninstall" 0 --out "install" --out "uninstall"
credguard "$CLI" agent --alive-from nope
expect "agent --alive-from nope is refused (exit 2)" 2 --err "not a live-set source"
credguard "$CLI" agent --alive-from containerd --interval 0s
expect "agent --interval 0s is refused (exit 2)" 2 --err "above zero"
credguard "$CLI" --backend hcs agent --alive-from containerd --service
expect "agent --service outside the service control manager says so (exit 8)" 8 \
    --err "cannot connect to the service control manager"

# Wine's service control manager runs services: install starts `agent --service` (a source
# nobody serves: failed rounds, nothing removed), its metrics answer, a second install is
# refused (exit 5), uninstall stops it through its Stop control and deletes it, and again is
# "not installed" (exit 4).
# metrics PORT: GET /metrics over bash's /dev/tcp (no curl needed), into $out.
metrics() {
    out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$1" 2>/dev/null) || true
}
credguard "$CLI" --backend emulator agent service install --alive-from containerd --interval 1s \
    --metrics-listen 127.0.0.1:19464
expect "agent service install registers and starts the service under Wine's SCM" 0 \
    --out "service credguard-agent: installed and started"
deadline=$((SECONDS + 60))
metrics 19464
until grep -q '^credguard_agent_rounds_total [1-9]' <<<"$out" || ((SECONDS > deadline)); do
    sleep 0.2
    metrics 19464
done
code=0
err=""
if grep -q '^credguard_agent_failed_rounds_total{source="containerd:[^"]*"} [1-9]' <<<"$out"; then
    ok "the agent service runs rounds and serves its metrics (a failed source counted)"
else
    not_ok "the agent service runs rounds and serves its metrics (a failed source counted)"
fi
credguard "$CLI" --backend emulator agent service install --alive-from containerd
expect "a second agent service install is refused (exit 5)" 5 --err "uninstall it first"
credguard "$CLI" agent service uninstall
expect "agent service uninstall stops and deletes it" 0 --out "stopped and uninstalled"
credguard "$CLI" agent service uninstall
expect "agent service uninstall of no service says so (exit 4)" 4 --err "does not exist"

printf '\ncredguard.exe under Wine: %d passed, %d failed\n' "$passed" "$failed"
[[ $failed -eq 0 ]] || die "$failed credguard.exe check(s) under Wine"
printf 'windows-tests: all passed in %ds\n' $((SECONDS - started))
