#!/usr/bin/env bash
# Install wardrobe on Raspberry Pi OS (Bookworm, 64-bit). Idempotent: run it again to update.
#   sudo deploy/install-pi.sh            install, enable and start the service
#   deploy/install-pi.sh --dry-run       print every step, change nothing
#   deploy/install-pi.sh --root DIR      write files under DIR (a scratch root) and skip apt, users and systemctl
set -euo pipefail

DRY=0
ROOT=""
SRC="$(cd "$(dirname "$0")/.." && pwd)"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "install-pi.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

PREFIX="$ROOT/opt/wardrobe"
VENV="$PREFIX/venv"
ETC="$ROOT/etc/wardrobe"
UNIT_DIR="$ROOT/etc/systemd/system"
STATE="$ROOT/var/lib/wardrobe"
APT_PACKAGES="python3-venv python3-picamera2 python3-lgpio espeak-ng libportaudio2"

step() { echo "==> $*"; }
run() {
    echo "    \$ $*"
    if [ "$DRY" -eq 0 ]; then "$@"; fi
}
system() {  # steps that change the running system; skipped under --root
    if [ -n "$ROOT" ]; then echo "    (skipped under --root) $*"; else run "$@"; fi
}

step "1/7 system packages: $APT_PACKAGES"
system apt-get update
system apt-get install -y $APT_PACKAGES

step "2/7 the wardrobe user (groups video, gpio, audio)"
if [ -z "$ROOT" ] && id wardrobe >/dev/null 2>&1; then
    echo "    user wardrobe exists"
    system usermod -a -G video,gpio,audio wardrobe
else
    system useradd --system --home-dir /var/lib/wardrobe --shell /usr/sbin/nologin --groups video,gpio,audio wardrobe
fi

step "3/7 a virtual environment with system site packages (for picamera2 and lgpio) in $VENV"
if [ -x "$VENV/bin/python" ]; then echo "    exists"; else run python3 -m venv --system-site-packages "$VENV"; fi

step "4/7 the wardrobe package with its Pi extra"
run "$VENV/bin/pip" install --quiet --upgrade ${WARDROBE_PIP_ARGS:-} "$SRC[pi]"

step "5/7 configuration in $ETC (kept if present)"
run mkdir -p "$ETC" "$STATE"
if [ -f "$ETC/config.toml" ]; then
    echo "    $ETC/config.toml exists: kept"
else
    run cp "$SRC/deploy/config.toml" "$ETC/config.toml"
fi

step "6/7 the systemd unit"
run mkdir -p "$UNIT_DIR"
run install -m 0644 "$SRC/systemd/wardrobe.service" "$UNIT_DIR/wardrobe.service"
system chown -R wardrobe:wardrobe /var/lib/wardrobe

step "7/7 enable and start"
system systemctl daemon-reload
system systemctl enable wardrobe.service
system systemctl restart wardrobe.service
echo "done: check with 'wardrobe doctor' and 'journalctl -u wardrobe -f'"
