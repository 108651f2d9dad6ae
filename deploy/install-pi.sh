#!/usr/bin/env bash
# Install wardrobe on Raspberry Pi OS (Bookworm, 64-bit). Idempotent: run it again to update.
#   sudo deploy/install-pi.sh            install, enable and start the service
#   deploy/install-pi.sh --dry-run       print every step, change nothing
#   deploy/install-pi.sh --root DIR      write files under DIR (a scratch root) and skip apt, users and systemctl
#   --trust-key FILE.pub   trust this caretaker's model-signing key (repeat for several; see README, Updates)
#   --wheels DIR           install Python packages only from this folder of wheels (no network to PyPI)
#   --no-pi-hardware       skip the Pi-only parts (picamera2, lgpio, the gpio group): a plain arm64 Debian
set -euo pipefail

DRY=0
ROOT=""
WHEELS=""
PI_HARDWARE=1
TRUST_KEYS=()
SRC="$(cd "$(dirname "$0")/.." && pwd)"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --wheels) WHEELS="${2:?--wheels needs a folder of wheels}"; shift ;;
        --trust-key) TRUST_KEYS+=("${2:?--trust-key needs a .pub file}"); shift ;;
        --no-pi-hardware) PI_HARDWARE=0 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install-pi.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

PREFIX="$ROOT/opt/wardrobe"
VENV="$PREFIX/venv"
ETC="$ROOT/etc/wardrobe"
UNIT_DIR="$ROOT/etc/systemd/system"
STATE="$ROOT/var/lib/wardrobe"
APT_PACKAGES="python3-venv espeak-ng libportaudio2"
GROUPS_="video,audio"
if [ "$PI_HARDWARE" -eq 1 ]; then
    APT_PACKAGES="$APT_PACKAGES python3-picamera2 python3-lgpio"
    GROUPS_="video,gpio,audio"
fi
PIP_SOURCE=()
if [ -n "$WHEELS" ]; then PIP_SOURCE=(--no-index --find-links "$WHEELS"); fi
for key in "${TRUST_KEYS[@]}"; do
    head -c 17 "$key" 2>/dev/null | grep -q '^wardrobe-ed25519 ' || { echo "install-pi.sh: $key is not a wardrobe public key (make one with wardrobe keygen)" >&2; exit 2; }
done

step() { echo "==> $*"; }
run() {
    echo "    \$ $*"
    if [ "$DRY" -eq 0 ]; then "$@"; fi
}
system() {  # steps that change the running system; skipped under --root
    if [ -n "$ROOT" ]; then echo "    (skipped under --root) $*"; else run "$@"; fi
}

step "1/7 system packages: $APT_PACKAGES"
[ "$PI_HARDWARE" -eq 1 ] || echo "    SKIPPED (--no-pi-hardware): python3-picamera2, python3-lgpio and the gpio group"
system apt-get update
system apt-get install -y $APT_PACKAGES

step "2/7 the wardrobe user (groups ${GROUPS_//,/, })"
if [ -z "$ROOT" ] && id wardrobe >/dev/null 2>&1; then
    echo "    user wardrobe exists"
    system usermod -a -G "$GROUPS_" wardrobe
else
    system useradd --system --home-dir /var/lib/wardrobe --shell /usr/sbin/nologin --groups "$GROUPS_" wardrobe
fi

step "3/7 a virtual environment with system site packages (for picamera2 and lgpio) in $VENV"
if [ -x "$VENV/bin/python" ]; then echo "    exists"; else run python3 -m venv --system-site-packages "$VENV"; fi

step "4/7 the wardrobe package with its Pi extra"
[ -z "$WHEELS" ] || echo "    from the wheels in $WHEELS only"
run "$VENV/bin/pip" install --quiet --upgrade "${PIP_SOURCE[@]}" ${WARDROBE_PIP_ARGS:-} "$SRC[pi,web]"

step "5/7 configuration in $ETC (kept if present) and the trusted model-signing keys"
run mkdir -p "$ETC/trusted-keys" "$STATE"
if [ -f "$ETC/config.toml" ]; then
    echo "    $ETC/config.toml exists: kept"
else
    run cp "$SRC/deploy/config.toml" "$ETC/config.toml"
fi
for key in "${TRUST_KEYS[@]}"; do
    run install -m 0644 "$key" "$ETC/trusted-keys/$(basename "$key")"
done
if [ "$DRY" -eq 0 ] && ! ls "$ETC/trusted-keys/"*.pub >/dev/null 2>&1; then
    echo "    NOTE: no trusted keys in $ETC/trusted-keys: new models will be refused until one is added (--trust-key)"
fi

step "6/7 the systemd unit"
run mkdir -p "$UNIT_DIR"
run install -m 0644 "$SRC/systemd/wardrobe.service" "$UNIT_DIR/wardrobe.service"
run install -m 0644 "$SRC/systemd/wardrobe-web.service" "$UNIT_DIR/wardrobe-web.service"
system chown -R wardrobe:wardrobe /var/lib/wardrobe

step "7/7 enable and start"
if [ -z "$ROOT" ] && [ ! -d /run/systemd/system ]; then
    # A chroot or an image being built: systemd is not running, so enable the unit for the next boot only.
    echo "    systemd is not running here (chroot or image build): enabled for the next boot, not started"
    run systemctl enable wardrobe.service
else
    system systemctl daemon-reload
    system systemctl enable wardrobe.service
    system systemctl restart wardrobe.service
fi
# The caretaker's page starts only once it has a password (it refuses to run without one; there is no default).
if [ -f "$ROOT/var/lib/wardrobe/web-password" ]; then
    if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
        system systemctl enable wardrobe-web.service
        system systemctl restart wardrobe-web.service
    else
        run systemctl enable wardrobe-web.service
    fi
else
    echo "    the caretaker's page is installed, not started: set its password with"
    echo "    'sudo -u wardrobe /opt/wardrobe/venv/bin/wardrobe web password', then 'sudo systemctl enable --now wardrobe-web'"
fi
echo "done: check with 'wardrobe doctor' and 'journalctl -u wardrobe -f'"
