#!/usr/bin/env bash
# Builds the app's installable Linux packages (.deb and .rpm) with Tauri's bundler, in the `dist`
# profile (Cargo.toml). Prints the paths of the packages it made.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=node-env.sh
. "$root/scripts/node-env.sh"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root/ui"
# The npm CLI bundles offline; AppImage would download tooling, so it is not a target here.
TAURI_APP_PATH=../src-tauri npx tauri build --ci --bundles deb,rpm -- --profile dist --locked >&2
ls "$target"/dist/bundle/deb/*.deb "$target"/dist/bundle/rpm/*.rpm
