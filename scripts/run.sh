#!/usr/bin/env bash
# Installs what is missing, builds, and runs Natter: the server (SQLite in its data dir, ports
# 4004 + 4399) in the background and the desktop app in front. Closing the app stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=node-env.sh
. scripts/node-env.sh

npm --prefix ui run build
cargo build --release -p natter-server -p natter-app

target="${CARGO_TARGET_DIR:-target}"
"$target/release/natter-server" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT

if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display; starting the app under xvfb-run (nothing will be visible)"
  xvfb-run -a "$target/release/natter"
else
  "$target/release/natter"
fi
