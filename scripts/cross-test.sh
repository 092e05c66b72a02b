#!/usr/bin/env bash
# Cross checks (issue 3): the workspace tests on aarch64 (NEON) under qemu-aarch64, and the no_std
# Cortex-M4F firmware (examples/firmware) run on qemu-system-arm mps2-an386, compared with the host.
#
# Idempotent: installs the Debian packages it needs (only those missing), then builds with Debian's
# rustc-web (/usr/bin/rustc: its arm64 std and rust-src; rustup targets are not needed) and the
# `cargo` on PATH. Own target dirs: target-aarch64, target-thumb. Exits non-zero on any failure.
# Env: CROSS_SKIP_AARCH64=1 / CROSS_SKIP_FIRMWARE=1 skip a part; CROSS_AARCH64_PROFILE=dev|release.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

T_START=$SECONDS
FAILED=()
T_SECTION=$SECONDS
section() {
    echo
    echo "== [$((SECONDS - T_START))s] $*"
    T_SECTION=$SECONDS
}
took() { echo "   ... $*: $((SECONDS - T_SECTION))s"; }

# ------------------------------------------------------------------------------------------------
section "packages (Debian)"
PKGS=(rustc-web libstd-rust-web-dev:arm64 rust-web-src lld-22 gcc-aarch64-linux-gnu
      libc6-dev-arm64-cross libc6:arm64 qemu-user qemu-system-arm binutils-arm-none-eabi)
missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    SUDO=()
    [[ $(id -u) == 0 ]] || SUDO=(sudo -n)
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        "${SUDO[@]}" dpkg --add-architecture arm64
    fi
    "${SUDO[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
else
    echo "all present: ${PKGS[*]}"
fi
for c in /usr/bin/rustc /usr/bin/rustdoc aarch64-linux-gnu-gcc qemu-aarch64 qemu-system-arm ld.lld-22 arm-none-eabi-size; do
    command -v "$c" >/dev/null || { echo "missing after install: $c" >&2; exit 1; }
done
took "packages"

# Debian's rustc and rustdoc together (doctests link crates built by RUSTC), with the cargo on PATH.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
echo "cargo: $(cargo --version); rustc: $($RUSTC --version)"

# ------------------------------------------------------------------------------------------------
# neulens-macros is excluded: its only tests are trybuild UI tests, which compile snippets with the
# host toolchain and compare rustc's diagnostics to snapshots; they contain no target code (nothing
# aarch64 or NEON in them), and Debian's rustc words diagnostics differently from the snapshots'.
# Default profile: the workspace's test profile (opt-level 2, debug assertions and overflow checks
# kept); CROSS_AARCH64_PROFILE=release trades those checks for opt-level 3 without debug info.
if [[ ${CROSS_SKIP_AARCH64:-0} != 1 ]]; then
    profile=${CROSS_AARCH64_PROFILE:-dev}
    prof_flag=()
    [[ $profile == release ]] && prof_flag=(--release)
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    # No `-L /usr/aarch64-linux-gnu`: with libc6:arm64 installed (libstd-rust-web-dev:arm64 needs
    # it), the guest's ld.so from that prefix (libc6-arm64-cross) would load the multiarch
    # libc.so.6 of another glibc build through /etc/ld.so.cache, and every pthread_create hangs
    # (glibc's stack-cache list). The multiarch loader and libc at / are consistent.
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
    A64=(cargo test --workspace --exclude neulens-macros --target aarch64-unknown-linux-gnu
         --target-dir "$ROOT/target-aarch64" "${prof_flag[@]}")

    # Tests that re-run their own executable (std::env::current_exe) start an aarch64 ELF from the
    # host kernel: register qemu-aarch64 with binfmt_misc (the magic of qemu's qemu-binfmt-conf.sh;
    # F: the interpreter is opened now). Where that is not allowed, skip those tests by name.
    A64_SKIP=()
    BINFMT=/proc/sys/fs/binfmt_misc
    if [[ ! -e $BINFMT/qemu-aarch64 ]]; then
        [[ -e $BINFMT/register ]] || mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null || true
        printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:F' \
            >"$BINFMT/register" 2>/dev/null || true
    fi
    if [[ -e $BINFMT/qemu-aarch64 ]]; then
        echo "binfmt_misc: $(head -1 "$BINFMT/qemu-aarch64") ($(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64"))"
    else
        echo "binfmt_misc unavailable: skipping the tests that re-run their own executable"
        A64_SKIP=(-- --skip cargo_output_prints_one_error_line_per_item)
    fi

    section "aarch64: build the workspace tests ($profile profile)"
    "${A64[@]}" --no-run
    took "aarch64 build"

    section "aarch64: run the workspace tests under qemu-aarch64 (NEON kernels)"
    # A failure here still lets the firmware part run; the script fails at the end.
    if ! "${A64[@]}" --no-fail-fast "${A64_SKIP[@]}"; then
        FAILED+=("aarch64 tests (see 'test result: FAILED' above)")
    fi
    took "aarch64 tests"
fi

# ------------------------------------------------------------------------------------------------
if [[ ${CROSS_SKIP_FIRMWARE:-0} != 1 ]]; then
    FW_DIR=$ROOT/examples/firmware
    FW_TARGET=$ROOT/target-thumb
    ELF=$FW_TARGET/thumbv7em-none-eabihf/release/neulens-firmware

    section "firmware: build for thumbv7em-none-eabihf (-Zbuild-std=core, release)"
    # Debian's rustc ships no rust-lld: link with Debian's ld.lld (same flavor, gnu-lld).
    (cd "$FW_DIR" &&
        RUSTC_BOOTSTRAP=1 CARGO_TARGET_THUMBV7EM_NONE_EABIHF_LINKER=ld.lld-22 \
            cargo build --release -Zbuild-std=core --target thumbv7em-none-eabihf \
            --target-dir "$FW_TARGET")
    took "firmware build"

    section "firmware: footprint"
    arm-none-eabi-size -A "$ELF" | awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/'
    read -r text data bss _ < <(arm-none-eabi-size "$ELF" | awk 'NR == 2')
    echo "flash (code + weights + input): $((text + data)) bytes; static RAM (.data + .bss, the arena): $((data + bss)) bytes"

    section "firmware: run on qemu-system-arm -M mps2-an386 (Cortex-M4, semihosting)"
    fw_out=$(mktemp)
    host_out=$(mktemp)
    trap 'rm -f "$fw_out" "$host_out"' EXIT
    if ! timeout 600 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
        -semihosting-config enable=on,target=native -kernel "$ELF" >"$fw_out"; then
        cat "$fw_out"
        echo "FAILED: the firmware exited with an error (or timed out)" >&2
        exit 1
    fi
    cat "$fw_out"
    took "firmware run"

    section "firmware: host reference (same input, same scalar kernels, x86-64)"
    # Same RUSTC_BOOTSTRAP as the firmware build: cargo rebuilds everything when it changes.
    (cd "$FW_DIR" &&
        RUSTC_BOOTSTRAP=1 cargo run --quiet --release --features host --bin host-reference \
            --target-dir "$FW_TARGET") >"$host_out"
    cat "$host_out"
    took "host reference"

    section "firmware: compare the board's report with the host's"
    # Lines starting with '#' are informational (stack use, the host's SIMD ISA); all others must be
    # identical, bits included: the board and the host run the same scalar kernels, and f32
    # arithmetic (no FMA contraction, no fast-math) is IEEE on both.
    if ! diff <(grep -v '^#' "$fw_out") <(grep -v '^#' "$host_out"); then
        echo "FAILED: the firmware's report differs from the host's (< firmware, > host)" >&2
        exit 1
    fi
    echo "firmware == host: $(grep -vc '^#' "$fw_out") lines identical (class, outputs to the bit, arena)"
    took "compare"

    section "firmware: footprint summary"
    stack=$(sed -n 's/.*stack high-water mark \([0-9]*\) bytes.*/\1/p' "$fw_out")
    echo "flash $((text + data)) bytes (of 4 MiB); RAM $((data + bss)) static (arena) + ${stack:-?} stack = $((data + bss + ${stack:-0})) bytes (of 4 MiB)"
fi

if ((${#FAILED[@]})); then
    section "cross-test: FAILED after $((SECONDS - T_START))s: ${FAILED[*]}"
    exit 1
fi
section "cross-test: all passed in $((SECONDS - T_START))s"
