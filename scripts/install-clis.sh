#!/usr/bin/env bash
# Installs the real coding-agent CLIs that troupe's contract tests drive, at pinned versions,
# into a cache outside the package (they are not runtime dependencies of troupe):
#   ${TROUPE_CLI_CACHE:-$HOME/.cache/troupe-clis}/<name>-<version>/node_modules/.bin/<bin>
# Keep the versions in step with test/helpers/real-clis.ts.
set -euo pipefail
cache="${TROUPE_CLI_CACHE:-$HOME/.cache/troupe-clis}"
install_one() {
  local name="$1" pkg="$2" version="$3" bin="$4"
  local dir="$cache/$name-$version"
  if [ -x "$dir/node_modules/.bin/$bin" ]; then return 0; fi
  mkdir -p "$dir"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$dir" "$pkg@$version" >/dev/null
  echo "install-clis: $pkg@$version → $dir"
}
install_one claude-code @anthropic-ai/claude-code 2.1.332 claude
install_one codex @openai/codex 0.171.0 codex
install_one gemini @google/gemini-cli 0.61.0 gemini
