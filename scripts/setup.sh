#!/usr/bin/env bash
# Installs what building, running and testing Natter needs on Debian/Ubuntu, skipping what is
# present. Safe to run repeatedly; needs root (or sudo) only when something is missing.
# `--tests` adds what only the test suites use (PostgreSQL and nats-server for the cluster
# suites): running Natter needs neither, and Debian's postgresql package starts a system
# database, which nobody who only wants to chat should get.
set -euo pipefail

# - a C toolchain (sqlite and ring are compiled by their crates);
# - WebKitGTK and friends for the Tauri desktop app, Opus/ALSA for voice;
# - PulseAudio with ALSA's pulse plugin, so CI has a null sink for real audio streams, and
#   python3-pip/-dev to install the `pesq` package the voice tests score speech with;
# - Xvfb, WebKitWebDriver and CJK fonts for the end-to-end suite (the app in real WebKit);
# - Node.js + npm for the web UI (Vite needs Node 20.19+);
# - with --tests: PostgreSQL and nats-server for the cluster suites (started on loopback by
#   scripts/cluster-services.sh, never as system services the tests rely on); a session bus and
#   a notification daemon (dunst) that the app suite starts on its own private bus.
APT_PACKAGES=(
  build-essential pkg-config ca-certificates curl cmake
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  libasound2-dev libopus-dev
  pulseaudio pulseaudio-utils libasound2-plugins alsa-utils python3-pip python3-dev
  xvfb xauth webkit2gtk-driver fonts-noto-cjk
)
[ "${1:-}" = --tests ] && APT_PACKAGES+=(postgresql postgresql-client nats-server dbus dunst xdotool x11-utils)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# Vite 8 needs Node 20.19 or newer; older distributions ship Node 18, and then a current one
# comes from the npm registry (scripts/node.sh).
bash "$(dirname "$0")/node.sh"
# shellcheck source=node-env.sh
. "$(dirname "$0")/node-env.sh"

echo "setup: $(cargo --version), node $(node --version), npm $(npm --version)"

# PESQ for the voice tests (optional: without it they assert on scores computed in Rust).
if ! python3 -c "import numpy, pesq" >/dev/null 2>&1; then
  echo "setup: installing numpy and pesq for the voice tests"
  python3 -m pip install --quiet numpy pesq >/dev/null 2>&1 \
    || python3 -m pip install --quiet --break-system-packages numpy pesq >/dev/null 2>&1 \
    || echo "setup: could not install pesq; the voice tests fall back to their Rust scores"
fi

# The UI's packages, exactly as locked.
cd "$(dirname "$0")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing the UI's npm packages"
  npm ci --no-audit --no-fund
fi
