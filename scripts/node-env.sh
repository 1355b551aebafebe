# Sourced (not run) by setup.sh, run.sh and .ci/run: puts the Node that scripts/node.sh
# installed from the npm registry first on PATH, when there is one.
NATTER_NODE_DIR="${NATTER_NODE_DIR:-$HOME/.local/share/natter/node}"
if [ -x "$NATTER_NODE_DIR/node_modules/.bin/node" ]; then
  export PATH="$NATTER_NODE_DIR/node_modules/.bin:$PATH"
fi
