#!/usr/bin/env bash
# Checks of terraform/, offline:
#   - layout and conventions (module files, identical env files, `this`
#     naming, described and typed variables),
#   - terraform fmt,
#   - init (from the provider mirror in /opt/tf-plugins) and validate of every
#     module and env,
#   - terraform test (mocked AWS) of every module and env,
#   - checkov, with zero failed checks.
# Run from anywhere: bash .ci/terraform.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The checkov venv is shared with .ci/helm.sh, which accepts any 3.2.x: both
# scripts must agree on it, or each would reinstall the other's version.
readonly CHECKOV_VERSION="3.2.533"
readonly PLUGIN_DIR="${PIXELMILL_TF_PLUGIN_DIR:-/opt/tf-plugins}"
readonly TOOLS_DIR="${PIXELMILL_TOOLS_DIR:-$HOME/.cache/pixelmill-tools}"
readonly CHECKOV_VENV="$TOOLS_DIR/checkov"
readonly MODULE_FILES="README.md main.tf outputs.tf variables.tf versions.tf"

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
# A CLI config named but missing only produces warnings; use none instead.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "$TF_CLI_CONFIG_FILE" ]]; then
  export TF_CLI_CONFIG_FILE=/dev/null
fi

work_dir="$(mktemp -d)"
created_lock_files=()
cleanup() {
  local lock_file job
  # Checks still running when the script stops early are ended.
  for job in $(jobs -p); do
    kill "$job" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for lock_file in "${created_lock_files[@]}"; do
    rm -f "$lock_file"
  done
  rm -rf "$work_dir"
}
trap cleanup EXIT

fail() {
  echo "terraform: FAILED: $*" >&2
  exit 1
}

step() {
  echo "==> $*"
}

command -v terraform >/dev/null || fail "terraform is not installed"
[[ -d "$PLUGIN_DIR" ]] || fail "provider mirror $PLUGIN_DIR is missing"
step "$(terraform version | head -n 1)"

mapfile -t modules < <(find terraform/modules -mindepth 1 -maxdepth 1 -type d | sort)
mapfile -t envs < <(find terraform/envs -mindepth 1 -maxdepth 1 -type d | sort)
((${#modules[@]} > 0)) || fail "no modules under terraform/modules"
((${#envs[@]} > 0)) || fail "no envs under terraform/envs"

# --- Layout and conventions -------------------------------------------------------

step "layout and conventions"

for module in "${modules[@]}"; do
  files="$(find "$module" -mindepth 1 -maxdepth 1 -type f ! -name .terraform.lock.hcl -printf '%f\n' | sort | tr '\n' ' ')"
  [[ "$files" == "$MODULE_FILES " ]] ||
    fail "$module must hold exactly: $MODULE_FILES (found: $files)"
  compgen -G "$module/tests/*.tftest.hcl" >/dev/null ||
    fail "$module has no tests/*.tftest.hcl"
done

# staging and prod share their .tf files; they differ in terraform.tfvars.
reference_env="${envs[0]}"
reference_tf="$(cd "$reference_env" && ls -- *.tf)"
for env in "${envs[@]}"; do
  [[ "$(cd "$env" && ls -- *.tf)" == "$reference_tf" ]] ||
    fail "$env and $reference_env must have the same .tf files"
  for file in $reference_tf; do
    cmp -s "$reference_env/$file" "$env/$file" ||
      fail "$env/$file differs from $reference_env/$file (envs differ only in terraform.tfvars)"
  done
  [[ -f "$env/terraform.tfvars" && -f "$env/backend.hcl" ]] ||
    fail "$env needs terraform.tfvars and backend.hcl"
done

# The only resource of a type in a module is named `this`.
for module in "${modules[@]}"; do
  misnamed="$(awk '
    /^resource "[^"]+" "[^"]+"/ {
      split($0, parts, "\"")
      count[parts[2]]++
      name[parts[2]] = parts[4]
    }
    END {
      for (type in count) {
        if (count[type] == 1 && name[type] != "this") print type "." name[type]
      }
    }' "$module"/*.tf)"
  [[ -z "$misnamed" ]] || fail "$module: a single resource of its type must be named this: $misnamed"
done

# Every variable has a description and a type; every output a description.
for dir in "${modules[@]}" "${envs[@]}"; do
  undocumented="$(awk '
    /^variable "/ { split($0, parts, "\""); block = "variable " parts[2]; kind = "variable"; has_description = 0; has_type = 0; next }
    /^output "/   { split($0, parts, "\""); block = "output " parts[2]; kind = "output"; has_description = 0; has_type = 1; next }
    block != "" && /^  description[ ]*=/ { has_description = 1 }
    block != "" && /^  type[ ]*=/        { has_type = 1 }
    block != "" && /^}/ {
      if (!has_description || !has_type) print block
      block = ""
    }' "$dir/variables.tf" "$dir/outputs.tf")"
  [[ -z "$undocumented" ]] || fail "$dir: missing description or type: $undocumented"
done

# --- fmt ---------------------------------------------------------------------------------

step "terraform fmt -check -recursive terraform/"
terraform fmt -check -recursive -diff terraform/ || fail "terraform fmt: run \`terraform fmt -recursive terraform/\`"

# --- init, validate, test -------------------------------------------------------------

# Checks one module or env; writes <slug>.log, and <slug>.runs on success.
check_dir() {
  local dir="$1" slug="$2"
  local log="$work_dir/$slug.log" runs=0 summary
  local lock_args=()
  export TF_DATA_DIR="$work_dir/data/$slug"

  # Root modules commit their lock file; it must already be right.
  [[ "$dir" == terraform/envs/* ]] && lock_args=(-lockfile=readonly)

  terraform -chdir="$dir" init -backend=false -plugin-dir="$PLUGIN_DIR" "${lock_args[@]}" -no-color >"$log" 2>&1 || {
    echo "terraform init failed" >>"$log"
    return 1
  }
  terraform -chdir="$dir" validate -no-color >>"$log" 2>&1 || {
    echo "terraform validate failed" >>"$log"
    return 1
  }
  if compgen -G "$dir/tests/*.tftest.hcl" >/dev/null; then
    terraform -chdir="$dir" test -no-color >>"$log" 2>&1 || {
      echo "terraform test failed" >>"$log"
      return 1
    }
    summary="$(grep -E '^Success! [0-9]+ passed, 0 failed' "$log" || true)"
    [[ -n "$summary" ]] || {
      echo "terraform test printed no success summary" >>"$log"
      return 1
    }
    runs="$(sed -E 's/^Success! ([0-9]+) passed.*/\1/' <<<"$summary")"
    ((runs > 0)) || {
      echo "terraform test ran no test" >>"$log"
      return 1
    }
  fi
  echo "$runs" >"$work_dir/$slug.runs"
}

# Each terraform command starts the (large) provider; two directories at a
# time keep both cores busy.
jobs_max="${PIXELMILL_TF_JOBS:-$(nproc)}"
step "init, validate and test ($jobs_max at a time)"
declare -A started_at=()
for dir in "${modules[@]}" "${envs[@]}"; do
  slug="${dir#terraform/}"
  slug="${slug//\//-}"
  if [[ "$dir" == terraform/modules/* && ! -f "$dir/.terraform.lock.hcl" ]]; then
    created_lock_files+=("$dir/.terraform.lock.hcl")
  fi
  while (($(jobs -rp | wc -l) >= jobs_max)); do
    wait -n || true
  done
  started_at[$slug]=$SECONDS
  (
    check_dir "$dir" "$slug"
    echo $((SECONDS - started_at[$slug])) >"$work_dir/$slug.seconds"
  ) &
done
wait || true

total_runs=0
for dir in "${modules[@]}" "${envs[@]}"; do
  name="${dir#terraform/}"
  slug="${name//\//-}"
  if [[ ! -f "$work_dir/$slug.runs" ]]; then
    cat "$work_dir/$slug.log" >&2
    fail "$name (log above)"
  fi
  runs="$(cat "$work_dir/$slug.runs")"
  total_runs=$((total_runs + runs))
  printf '    %-24s valid, %3d test runs passed (%ss)\n' "$name" "$runs" "$(cat "$work_dir/$slug.seconds")"
done

# --- checkov ---------------------------------------------------------------------------

install_checkov() {
  mkdir -p "$TOOLS_DIR"
  # One installer at a time (the lock is shared with the other scripts that
  # use this venv).
  exec 9>"$TOOLS_DIR/checkov.lock"
  flock 9
  if [[ "$("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]]; then
    step "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV"
    [[ -x "$CHECKOV_VENV/bin/pip" ]] || python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  fi
  flock -u 9
  exec 9>&-
}
install_checkov

step "checkov $CHECKOV_VERSION over terraform/"
checkov_json="$work_dir/checkov.json"
checkov_status=0
LOG_LEVEL=ERROR "$CHECKOV_VENV/bin/checkov" \
  --directory terraform \
  --framework terraform \
  --skip-path '\.terraform' \
  --skip-download \
  --quiet \
  --output json >"$checkov_json" 2>"$work_dir/checkov.err" || checkov_status=$?

read -r checkov_passed checkov_failed checkov_skipped checkov_parse_errors < <(
  "$CHECKOV_VENV/bin/python" - "$checkov_json" <<'PY' || echo "x x x x"
import json
import sys

with open(sys.argv[1]) as handle:
    report = json.load(handle)
if isinstance(report, list):
    report = next(item for item in report if item.get("check_type") == "terraform")
summary = report["summary"]
for check in report["results"]["failed_checks"]:
    lines = check.get("file_line_range") or ["?", "?"]
    print(
        f"  FAILED {check['check_id']} {check['resource']} "
        f"({check['file_path']}:{lines[0]}-{lines[1]}): {check['check_name']}",
        file=sys.stderr,
    )
print(summary["passed"], summary["failed"], summary["skipped"], summary["parsing_errors"])
PY
)
if [[ ! "$checkov_failed" =~ ^[0-9]+$ ]]; then
  cat "$work_dir/checkov.err" >&2
  fail "checkov produced no report (exit $checkov_status)"
fi
((checkov_parse_errors == 0)) || fail "checkov could not parse $checkov_parse_errors file(s)"
((checkov_failed == 0)) || fail "checkov: $checkov_failed failed checks (see above)"
echo "    checkov: $checkov_passed passed, $checkov_failed failed, $checkov_skipped skipped (each skip is annotated in place)"

echo "terraform: ${#modules[@]} modules and ${#envs[@]} envs validated, $total_runs test runs passed, checkov 0 failed"
