#!/usr/bin/env bash
# Checks of the dependency graph (Cargo.lock, every workspace crate, every target platform)
# with cargo-deny, against the policy in deny.toml.
#
#   bash .ci/deny.sh                                  (from anywhere)
#   PIXELMILL_DENY_ADVISORIES=1 bash .ci/deny.sh      (also the RustSec advisories)
#
# What it checks:
#   1. licenses: every dependency's licence expression is satisfied by deny.toml's allow-list
#      of permissive licences (MIT, Apache-2.0, BSD, ISC, Zlib, ...); nothing copyleft, nothing
#      unlicensed. The workspace's own crates are `publish = false` and not checked.
#   2. bans: no `*` version requirement (path dependencies between the workspace's crates
#      excepted); several versions of one crate are listed as warnings, not failures.
#   3. sources: every crate comes from crates.io; no other registry, no git dependency.
#   4. advisories, only when PIXELMILL_DENY_ADVISORIES=1: no crate with a RustSec advisory
#      (vulnerable, unsound, unmaintained) and no yanked version. The database is cloned from
#      GitHub, which the project's machines cannot reach; the ci workflow sets the variable.
#
# cargo-deny is pinned and built with `cargo install --locked` into cargo's bin directory,
# only when missing or at another version (a few minutes, once). Offline otherwise: the graph
# comes from `cargo metadata --locked`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DENY_VERSION="0.20.2"

# shellcheck source=.ci/lib.sh
source .ci/lib.sh

# --- tools ----------------------------------------------------------------------------------

log "tools"
command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 1; }
cargo_tool deny "$CARGO_DENY_VERSION"

# --- checks ---------------------------------------------------------------------------------

declare -a RESULTS=()
FAILED=0

# Runs one cargo-deny check, recorded by `checked`.
deny_check() { cargo deny --color never --locked check --hide-inclusion-graph --show-stats "$@"; }

checked "licenses, bans, sources" deny_check licenses bans sources
if [[ "${PIXELMILL_DENY_ADVISORIES:-0}" == 1 ]]; then
  checked "advisories" deny_check advisories
else
  RESULTS+=("skip  advisories (needs GitHub; set PIXELMILL_DENY_ADVISORIES=1)")
fi

log "summary"
printf '%s\n' "${RESULTS[@]}"
echo "deny: $(( ${#RESULTS[@]} - FAILED )) passed or skipped, $FAILED failed"
[[ "$FAILED" == 0 ]]
