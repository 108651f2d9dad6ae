#!/usr/bin/env bash
# Prove wardrobe on the Pi's architecture without a Pi: an arm64 Debian 12 (Bookworm, as Raspberry Pi OS)
# root under qemu-user emulation, install-pi.sh run inside it, then doctor, describe and the daemon.
#   sudo deploy/check-arm64.sh [--cache DIR] [--out DIR] [--cpu cortex-a72|cortex-a76]
# Needs root (debootstrap, chroot, mounts) and Debian's debootstrap, qemu-user-static and binfmt-support
# (installed if missing). The root and the aarch64 wheels are cached in DIR (default ~/.cache/wardrobe/arm64);
# results (JSON from both architectures, the comparison, the daemon's log) go to --out (default DIR/results).
# Exits non-zero on the first failing step (3 when this machine cannot emulate arm64 at all: no root, no
# binfmt_misc); each step is named as it starts. The emulated processor is a Pi 4's Cortex-A72 unless --cpu
# (or QEMU_CPU) names another, such as the Pi 5's cortex-a76.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/wardrobe/arm64"
OUT=""
CPU="${QEMU_CPU:-cortex-a72}"
while [ $# -gt 0 ]; do
    case "$1" in
        --cache) CACHE="${2:?--cache needs a folder}"; shift ;;
        --out) OUT="${2:?--out needs a folder}"; shift ;;
        --cpu) CPU="${2:?--cpu needs a processor name}"; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "check-arm64.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
OUT="${OUT:-$CACHE/results}"
ROOTFS="$CACHE/root"
WHEELS="$CACHE/wheels"
HOSTVENV="$CACHE/host-venv"
PHOTOS=(assets/photos/*.jpg)
STEP=0
step() { STEP=$((STEP + 1)); echo; echo "==> $STEP/10 $*"; SECONDS_AT=$SECONDS; }
done_() { echo "    ok ($((SECONDS - SECONDS_AT)) s)"; }
fail() { echo "FAILED at step $STEP: $*" >&2; exit 1; }
unavailable() { echo "arm64 emulation is not available here: $*" >&2; exit 3; }
case "$CPU" in
    cortex-a72) CPU_PART=0xd08; CPU_FEATURES="fp asimd evtstrm crc32 cpuid" ;;
    cortex-a76) CPU_PART=0xd0b; CPU_FEATURES="fp asimd evtstrm crc32 cpuid atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp" ;;
    *) echo "check-arm64.sh: --cpu must be cortex-a72 (Pi 4) or cortex-a76 (Pi 5)" >&2; exit 2 ;;
esac
export QEMU_CPU="$CPU"  # qemu-user reads it at every exec: every arm64 program below runs as this processor
inside() { chroot "$ROOTFS" /usr/bin/env -i QEMU_CPU="$CPU" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

[ "$(id -u)" -eq 0 ] || unavailable "run as root (debootstrap, chroot and mounts need it)"
mkdir -p "$CACHE" "$OUT"
cd "$SRC"

mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

step "emulation: qemu-aarch64 registered with binfmt_misc"
if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap qemu-user-static \
        binfmt-support >/dev/null || fail "cannot install debootstrap, qemu-user-static and binfmt-support"
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || unavailable "cannot mount binfmt_misc (a container without that privilege?)"
update-binfmts --enable qemu-aarch64 2>/dev/null || true
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || unavailable "qemu-aarch64 is not enabled in binfmt_misc"
done_

step "an arm64 Debian 12 root (cached in $ROOTFS)"
if [ -x "$ROOTFS/usr/bin/python3" ] && [ -f "$ROOTFS/.wardrobe-root-ready" ]; then
    echo "    cached"
else
    rm -rf "$ROOTFS.partial"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,procps,passwd,systemd \
        bookworm "$ROOTFS.partial" http://deb.debian.org/debian > "$CACHE/debootstrap.log" 2>&1 \
        || fail "debootstrap failed: see $CACHE/debootstrap.log"
    rm -rf "$ROOTFS"
    mv "$ROOTFS.partial" "$ROOTFS"
    touch "$ROOTFS/.wardrobe-root-ready"
fi
[ "$(inside uname -m)" = aarch64 ] || fail "the root does not run as aarch64"
if ! inside sh -c 'command -v useradd && command -v systemctl' >/dev/null; then  # a root cached by an older script
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    inside apt-get install -y -qq passwd systemd >/dev/null || fail "cannot add passwd and systemd to the root"
fi
echo "    $(inside uname -m), $(inside python3 --version), $(. "$ROOTFS/etc/os-release"; echo "$PRETTY_NAME")"
done_

step "aarch64 wheels for Python 3.11, downloaded on this machine (cached in $WHEELS)"
# pip inside the emulated root cannot verify the registry's certificate here, so the wheels come from outside.
mkdir -p "$WHEELS"
python3 -m pip download -q -d "$WHEELS" --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 --platform linux_aarch64 --platform any \
    'setuptools>=77' wheel "$SRC[pi,web]" > "$CACHE/pip-download.log" 2>&1 || fail "pip download: see $CACHE/pip-download.log"
# pip evaluates the extra's "platform_machine == 'aarch64'" marker for this machine, so lgpio is asked for by name.
python3 -m pip download -q -d "$WHEELS" --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_34_aarch64 'lgpio>=0.2' >> "$CACHE/pip-download.log" 2>&1 || fail "pip download lgpio"
rm -f "$WHEELS"/wardrobe-*.whl "$WHEELS"/wardrobe-*.tar.gz  # this checkout is installed from source below
echo "    $(ls "$WHEELS" | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"
done_

step "this checkout and the wheels copied into the root; /proc, /sys, /dev mounted"
for m in proc sys dev dev/pts; do
    mkdir -p "$ROOTFS/$m"
    mount --bind "/$m" "$ROOTFS/$m"
    mounted+=("$ROOTFS/$m")
done
# qemu-user passes the host's x86 /proc/cpuinfo through; ONNX Runtime's cpuinfo library parses it as ARM
# and crashes (SIGSEGV at import). The emulated processor's (a Pi 4's Cortex-A72 unless --cpu) stands in, one
# entry per CPU of this machine.
for ((cpu = 0; cpu < $(nproc); cpu++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$cpu" "$CPU_FEATURES"
    printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' "$CPU_PART"
done > "$CACHE/cpuinfo"
printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B (emulated)\n' >> "$CACHE/cpuinfo"
mount --bind "$CACHE/cpuinfo" "$ROOTFS/proc/cpuinfo"
mounted+=("$ROOTFS/proc/cpuinfo")
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
rm -rf "$ROOTFS/opt/wardrobe/src" "$ROOTFS/opt/wheels"
mkdir -p "$ROOTFS/opt/wardrobe/src" "$ROOTFS/opt/wheels"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$ROOTFS/opt/wardrobe/src"
cp "$WHEELS"/* "$ROOTFS/opt/wheels/"
done_

step "wardrobe on this machine (x86-64, in $HOSTVENV) for the comparison, and a signing key to trust"
if [ ! -x "$HOSTVENV/bin/wardrobe" ]; then
    { python3 -m venv "$HOSTVENV" && "$HOSTVENV/bin/pip" install -q "$SRC"; } > "$CACHE/host-pip.log" 2>&1 \
        || fail "cannot install wardrobe on this machine: see $CACHE/host-pip.log"
else
    "$HOSTVENV/bin/pip" install -q --no-deps --force-reinstall "$SRC" > "$CACHE/host-pip.log" 2>&1 \
        || fail "cannot reinstall wardrobe on this machine: see $CACHE/host-pip.log"
fi
[ -f "$OUT/check-key.pub" ] || "$HOSTVENV/bin/wardrobe" keygen "$OUT/check-key" --comment "arm64 check" >/dev/null \
    || fail "cannot make a signing key"
cp "$OUT/check-key.pub" "$ROOTFS/opt/check-key.pub"
done_

step "deploy/install-pi.sh inside the arm64 root (--no-pi-hardware --wheels)"
inside bash /opt/wardrobe/src/deploy/install-pi.sh --no-pi-hardware --wheels /opt/wheels \
    --trust-key /opt/check-key.pub 2>&1 | tee "$OUT/install.log" | sed 's/^/    /'
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "install-pi.sh failed: see $OUT/install.log"
inside /opt/wardrobe/venv/bin/python -c "import onnxruntime, cv2, piper, cryptography, platform; \
print('    imports ok on', platform.machine(), 'onnxruntime', onnxruntime.__version__, 'opencv', cv2.__version__)"
done_

step "wardrobe doctor (arm64)"
# The folder camera and WAV output stand in for the Pi camera and speaker, which qemu cannot provide.
inside /opt/wardrobe/venv/bin/wardrobe doctor --camera folder --camera-source /opt/wardrobe/src/assets/photos \
    --output wav 2>&1 | tee "$OUT/doctor-arm64.txt" | sed 's/^/    /' || true
grep -q "model" "$OUT/doctor-arm64.txt" || fail "doctor printed no model line"
echo "    (the button PROBLEM is expected: there is no GPIO chip under emulation; camera and audio are stand-ins)"
if grep -E "PROBLEM.*(model|voice)" "$OUT/doctor-arm64.txt"; then fail "doctor reports a model or voice problem"; fi
done_

step "describe --json on ${#PHOTOS[@]} sample photos: arm64, then x86-64 on this machine"
inside /opt/wardrobe/venv/bin/wardrobe describe --json --quiet --state-dir /tmp/state \
    "${PHOTOS[@]/#//opt/wardrobe/src/}" > "$OUT/describe-arm64.jsonl" || fail "describe failed on arm64"
"$HOSTVENV/bin/wardrobe" describe --json --quiet --state-dir /tmp/wardrobe-x86-state "${PHOTOS[@]}" \
    > "$OUT/describe-x86_64.jsonl" || fail "describe failed on x86-64"
python3 "$SRC/deploy/compare_describe.py" "$OUT/describe-x86_64.jsonl" "$OUT/describe-arm64.jsonl" \
    | tee "$OUT/compare.txt" | sed 's/^/    /'
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "arm64 names a different garment or main colour: see $OUT/compare.txt"
echo "    is the model itself the same? its input and logits on x86-64, then on arm64 with x86-64's input:"
rm -rf "$ROOTFS/tmp/same-model" && mkdir -p "$ROOTFS/tmp/same-model"
BUNDLE_X86=$("$HOSTVENV/bin/python" -c "import sys; print(sys.prefix)")/share/wardrobe/models/default
"$HOSTVENV/bin/python" deploy/same_model_check.py dump "$BUNDLE_X86" "$ROOTFS/tmp/same-model" "${PHOTOS[@]}" \
    || fail "same_model_check dump failed"
cp deploy/same_model_check.py "$ROOTFS/tmp/same-model/"
inside /opt/wardrobe/venv/bin/python /tmp/same-model/same_model_check.py check \
    /opt/wardrobe/venv/share/wardrobe/models/default /tmp/same-model "${PHOTOS[@]/#//opt/wardrobe/src/}" \
    > "$OUT/same-model.txt" 2>&1 || { cat "$OUT/same-model.txt"; fail "the model answers differently on arm64"; }
tail -1 "$OUT/same-model.txt" | sed 's/^/    /'
done_

step "the daemon (arm64): folder camera, WAV output, 3 presses (SIGUSR1), SIGHUP, idle memory, SIGTERM"
rm -rf "$ROOTFS/tmp/daemon" && mkdir -p "$ROOTFS/tmp/daemon/wav"
cp "${PHOTOS[@]:0:3}" "$ROOTFS/tmp/daemon/" 2>/dev/null
mkdir -p "$ROOTFS/tmp/daemon/photos" && mv "$ROOTFS"/tmp/daemon/*.jpg "$ROOTFS/tmp/daemon/photos/"
cat > "$ROOTFS/tmp/daemon/config.toml" <<'EOF'
state_dir = "/tmp/daemon/state"
[camera]
kind = "folder"
source = "/tmp/daemon/photos"
[speech]
output = "wav"
EOF
inside /opt/wardrobe/venv/bin/wardrobe run --config /tmp/daemon/config.toml > "$OUT/daemon.log" 2>&1 &
DAEMON=$!
wait_for() {  # wait_for PATTERN SECONDS: until the daemon's log shows PATTERN
    local t=0
    until grep -qE "$1" "$OUT/daemon.log"; do
        sleep 1; t=$((t + 1))
        kill -0 "$DAEMON" 2>/dev/null || { cat "$OUT/daemon.log" >&2; fail "the daemon exited early"; }
        [ "$t" -lt "$2" ] || { cat "$OUT/daemon.log" >&2; fail "no '$1' in the daemon's log after $2 s"; }
    done
}
wait_for "ready" 600
PID=$(pgrep -f "wardrobe run --config /tmp/daemon/config.toml" | head -1)
sleep 5
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
# qemu-user keeps the code it translated in a writable+executable buffer; that part is the emulator's, not ours.
TCG_KB=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {perm = $2} /^Rss:/ && perm == "rwxp" {kb += $2} END {print kb + 0}' "/proc/$PID/smaps")
echo "    idle RSS of the daemon under qemu-aarch64: $((RSS_KB / 1024)) MB, of which qemu's translated-code cache" \
     "$((TCG_KB / 1024)) MB: about $(((RSS_KB - TCG_KB) / 1024)) MB for the daemon itself"
echo "{\"idle_rss_mb_under_qemu\": $((RSS_KB / 1024)), \"qemu_code_cache_mb\": $((TCG_KB / 1024)), \"date\": \"$(date -u +%F)\"}" \
    > "$OUT/daemon-memory.json"
for i in 1 2 3; do
    kill -USR1 "$PID"
    t=0
    until [ "$(grep -c "described: " "$OUT/daemon.log")" -ge "$i" ]; do
        sleep 1; t=$((t + 1)); [ "$t" -lt 300 ] || fail "press $i was not described within 300 s"
    done
    echo "    press $i: $(grep "described: " "$OUT/daemon.log" | tail -1 | sed 's/.*sentence=\("[^"]*"\).*/\1/')"
done
kill -HUP "$PID"
wait_for "reloaded" 600
kill -TERM "$PID"
wait "$DAEMON" || fail "the daemon exited with status $? after SIGTERM"
grep -q "stopped after" "$OUT/daemon.log" || fail "the daemon did not stop cleanly"
WAVS=$(ls "$ROOTFS/tmp/daemon/state/speech"/*.wav 2>/dev/null | wc -l)
[ "$WAVS" -ge 3 ] || fail "only $WAVS spoken WAV files for 3 presses"
echo "    $WAVS WAV files spoken; reload and clean stop logged"
done_

step "summary"
echo "    passed on aarch64 (Debian 12 under qemu): install-pi.sh, doctor, describe, daemon presses/reload/stop"
echo "    answers vs x86-64: $(tail -1 "$OUT/compare.txt")"
echo "    the model on the same input: $(tail -1 "$OUT/same-model.txt" | sed 's/.*; logits: //')"
echo "    results in $OUT (total $SECONDS s)"
