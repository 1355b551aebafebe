#!/usr/bin/env bash
# Makes sure the Node on PATH is new enough for the UI (Vite 8 needs 20.19+; NATTER_NODE_MIN
# overrides it). Older distributions ship Node 18: then Node 22 is installed from the npm
# registry (the `node` package carries the binary) into NATTER_NODE_DIR, which
# scripts/node-env.sh puts first on PATH. No root needed, nothing outside that directory
# changes, and the only network it uses is the npm registry.
set -euo pipefail
here="$(dirname "$0")"
# shellcheck source=node-env.sh
. "$here/node-env.sh"
want="${NATTER_NODE_MIN:-20.19}"

at_least() {
  node -e '
    const [wa, wb] = process.argv[1].split(".").map(Number);
    const [ha, hb] = process.versions.node.split(".").map(Number);
    process.exit(ha > wa || (ha === wa && hb >= wb) ? 0 : 1);' "$want"
}

if at_least; then
  exit 0
fi
echo "setup: Node $(node --version) is older than the UI needs ($want); installing Node" \
     "${NATTER_NODE_MAJOR:-22} from the npm registry into $NATTER_NODE_DIR"
mkdir -p "$NATTER_NODE_DIR"
npm install --no-audit --no-fund --prefix "$NATTER_NODE_DIR" "node@${NATTER_NODE_MAJOR:-22}"
. "$here/node-env.sh"
hash -r
if ! at_least; then
  echo "setup: the Node from the npm registry ($(node --version)) is still older than $want" >&2
  exit 1
fi
echo "setup: using Node $(node --version) from $NATTER_NODE_DIR"
