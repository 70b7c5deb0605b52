"""Tests of the pixelmill chart's logic: render with `helm template`, assert on the objects.

Usage: HELM=/path/to/helm python3 helm/tests/test_chart.py   (from the repository root)

Each test_* function is one case. The run ends with "N passed, M failed" and exits
non-zero when any case failed.
"""

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import traceback
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "pixelmill"
CI = CHART / "ci"
DEPLOY = REPO / "deploy"
HELM = os.environ.get("HELM", "helm")
NAMESPACE = "pixelmill"
RELEASE = "pixelmill"
DIGEST = "sha256:" + "ab" * 32
SELECTOR = {"app.kubernetes.io/name": "pixelmill", "app.kubernetes.io/instance": RELEASE}

# The least a render needs: storage, a Secret, an image by digest, and the metrics that
# rollouts are judged on.
BASE = (
    "config.storage=s3://pixelmill-test/images",
    "secrets.existingSecret=pixelmill-env",
    f"image.digest={DIGEST}",
    "metrics.serviceMonitor.enabled=true",
)


class RenderError(Exception):
    pass


@lru_cache(maxsize=None)
def _helm_template(files: tuple, sets: tuple, set_strings: tuple, set_jsons: tuple) -> str:
    command = [HELM, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for file in files:
        command += ["-f", str(file)]
    for value in sets:
        command += ["--set", value]
    for value in set_strings:
        command += ["--set-string", value]
    for value in set_jsons:
        command += ["--set-json", value]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return result.stdout


def render(*files, sets=(), set_strings=(), set_jsons=(), base=True):
    """Rendered objects of the chart, as a list of dicts. `sets` parse numbers as
    integers only; floats go through `set_jsons` ("key=<json>")."""
    all_sets = (BASE if base and not files else ()) + tuple(sets)
    text = _helm_template(tuple(str(f) for f in files), all_sets, tuple(set_strings), tuple(set_jsons))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_error(*files, sets=(), set_strings=(), base=True) -> str:
    """The error of a render that must fail."""
    try:
        render(*files, sets=sets, set_strings=set_strings, base=base)
    except RenderError as error:
        return str(error)
    raise AssertionError(f"render should have failed: files={files} sets={sets} set_strings={set_strings}")


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs):
    return {d["kind"] for d in docs}


def workload(docs):
    found = [d for d in docs if d["kind"] in ("Deployment", "Rollout")]
    assert len(found) == 1, f"expected one workload, found {len(found)}"
    return found[0]


def server_container(docs):
    return workload(docs)["spec"]["template"]["spec"]["containers"][0]


def annotations(doc):
    return doc["metadata"].get("annotations") or {}


def pod_specs(docs):
    """(where, pod spec) of every pod the rendered objects would start."""
    pods = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "Rollout", "Job"):
            pods.append((name, doc["spec"]["template"]["spec"]))
        if doc["kind"] == "CronJob":
            pods.append((name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        if doc["kind"] == "AnalysisTemplate":
            for metric in doc["spec"]["metrics"]:
                job = metric["provider"].get("job")
                if job:
                    pods.append((f"{name}:{metric['name']}", job["spec"]["template"]["spec"]))
    return pods


def all_scenarios():
    """Every values file the project ships: the ci scenarios and the environments."""
    environments = [DEPLOY / env / "values.yaml" for env in ("staging", "prod", "local")]
    return sorted(CI.glob("*-values.yaml")) + environments


def config_checksum(docs):
    return workload(docs)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


# --- workload and strategies -------------------------------------------------------------

def test_rollouts_off_renders_a_deployment():
    docs = render(CI / "rollouts-off-values.yaml")
    assert "Deployment" in kinds(docs)
    assert not kinds(docs) & {"Rollout", "AnalysisTemplate"}, kinds(docs)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_rollouts_on_renders_a_rollout_and_no_deployment():
    docs = render(sets=("rollouts.enabled=true",))
    assert "Rollout" in kinds(docs) and "Deployment" not in kinds(docs), kinds(docs)
    rollout = one(docs, "Rollout")
    assert rollout["apiVersion"] == "argoproj.io/v1alpha1"
    assert rollout["spec"]["selector"]["matchLabels"] == SELECTOR


def test_canary_steps_follow_values():
    docs = render(CI / "canary-values.yaml")
    template = one(docs, "AnalysisTemplate")["metadata"]["name"]
    strategy = one(docs, "Rollout")["spec"]["strategy"]
    assert list(strategy) == ["canary"], strategy
    steps = strategy["canary"]["steps"]
    assert steps[0] == {"setWeight": 25}
    assert steps[1] == {"pause": {}}
    assert steps[4] == {"pause": {"duration": "30s"}}
    analysis = steps[2]["analysis"]
    assert analysis["templates"] == [{"templateName": template}]
    assert analysis["args"] == [{"name": "pod-template-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    # By pod count: no extra Services, no traffic router.
    assert "canaryService" not in strategy["canary"] and "trafficRouting" not in strategy["canary"]
    assert [s["metadata"]["name"] for s in of_kind(docs, "Service")] == ["pixelmill", "pixelmill-metrics"]


def test_canary_with_alb_traffic_routing():
    docs = render(CI / "canary-alb-values.yaml")
    canary = one(docs, "Rollout")["spec"]["strategy"]["canary"]
    services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
    assert canary["canaryService"] in services and canary["stableService"] in services, (canary, services)
    assert canary["canaryService"] != canary["stableService"]
    ingress = one(docs, "Ingress")
    alb = canary["trafficRouting"]["alb"]
    assert alb["ingress"] == ingress["metadata"]["name"]
    assert alb["rootService"] == "pixelmill" and alb["servicePort"] == 80
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": alb["rootService"], "port": {"name": "use-annotation"}}, backend


def test_alb_traffic_routing_needs_the_ingress():
    error = render_error(sets=("rollouts.enabled=true", "rollouts.canary.trafficRouting.alb.enabled=true"))
    assert "needs ingress.enabled" in error, error


def test_rollouts_and_alerts_need_the_service_monitor():
    error = render_error(sets=BASE[:3] + ("rollouts.enabled=true",), base=False)
    assert "rollouts need metrics.serviceMonitor.enabled" in error, error
    error = render_error(sets=BASE[:3] + ("metrics.prometheusRule.enabled=true",), base=False)
    assert "metrics.prometheusRule needs metrics.serviceMonitor.enabled" in error, error
    assert "ServiceMonitor" not in kinds(render(sets=BASE[:3], base=False))


def test_blue_green_services_and_analysis():
    docs = render(DEPLOY / "prod" / "values.yaml")
    blue_green = one(docs, "Rollout")["spec"]["strategy"]["blueGreen"]
    services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
    assert blue_green["activeService"] == "pixelmill" and blue_green["previewService"] == "pixelmill-preview"
    assert {"pixelmill", "pixelmill-preview"} <= services, services
    templates = {t["metadata"]["name"] for t in of_kind(docs, "AnalysisTemplate")}
    pre = [t["templateName"] for t in blue_green["prePromotionAnalysis"]["templates"]]
    post = [t["templateName"] for t in blue_green["postPromotionAnalysis"]["templates"]]
    assert pre == ["pixelmill-preview-load", "pixelmill"] and post == ["pixelmill"], (pre, post)
    assert set(pre) | set(post) <= templates, templates
    assert blue_green["autoPromotionEnabled"] is False


def test_blue_green_auto_promotion_is_configurable():
    docs = render(CI / "bluegreen-values.yaml")
    blue_green = one(docs, "Rollout")["spec"]["strategy"]["blueGreen"]
    assert blue_green["autoPromotionEnabled"] is True and blue_green["autoPromotionSeconds"] == 300
    assert blue_green["previewReplicaCount"] == 1
    # The preview load is off in that scenario: only the Prometheus template is used.
    assert [t["templateName"] for t in blue_green["prePromotionAnalysis"]["templates"]] == ["pixelmill"]
    assert [t["metadata"]["name"] for t in of_kind(docs, "AnalysisTemplate")] == ["pixelmill"]
    docs = render(sets=("rollouts.enabled=true", "rollouts.strategy=blueGreen", "rollouts.blueGreen.prePromotionAnalysis=false"))
    assert "prePromotionAnalysis" not in one(docs, "Rollout")["spec"]["strategy"]["blueGreen"]


def test_preview_load_targets_the_preview_service():
    docs = render(DEPLOY / "prod" / "values.yaml")
    job = one(docs, "AnalysisTemplate", "pixelmill-preview-load")["spec"]["metrics"][0]["provider"]["job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/local/bin/pixelmill-load"]
    args = container["args"]
    assert args[args.index("--target-base") + 1] == "http://pixelmill-preview.pixelmill.svc:80", args
    assert args[args.index("--threshold") + 1] == "errors<1%", args
    # A constant rate for the whole analysis, not a ramp up from zero.
    assert (args[args.index("--rate") + 1], args[args.index("--duration") + 1]) == ("5", "3m"), args
    assert "--stages" not in args
    docs = render(DEPLOY / "prod" / "values.yaml", sets=("loadTest.apiKeySecret.name=pixelmill-load-key",))
    job = one(docs, "AnalysisTemplate", "pixelmill-preview-load")["spec"]["metrics"][0]["provider"]["job"]
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "PIXELMILL_LOAD_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "pixelmill-load-key", "key": "api-key"}}}], env


# --- schema --------------------------------------------------------------------------------

def test_schema_rejects_bad_values():
    bad = [
        ("rollouts.strategy=rolling",),
        ("image.digest=sha256:abc",),
        ("image.digest=sha256:" + "A" * 64,),
        ("replicaCount=0",),
        ("autoscaling.minReplicas=0",),
        ("rollouts.canary.steps[0].setWeight=150",),
        ("ingress.wafAclArn=not-an-arn",),
        ("loadTest.stages=fast",),
        ("imagee.tag=typo",),
        ("securityContext.allowPrivilegeEscalation=true",),
    ]
    for sets in bad:
        error = render_error(sets=sets)
        assert "schema" in error, (sets, error)
    for set_strings in (("replicaCount=two",), ("autoscaling.enabled=yes",)):
        error = render_error(set_strings=set_strings)
        assert "schema" in error, (set_strings, error)


def test_schema_accepts_the_placeholder_digest():
    docs = render(sets=("image.digest=sha256:" + "0" * 64,))
    assert server_container(docs)["image"] == "pixelmill@sha256:" + "0" * 64


# --- image ---------------------------------------------------------------------------------

def test_image_by_digest_with_tag_fallback():
    docs = render(sets=("image.repository=registry.example.com/pixelmill", "image.tag=1.2.3"))
    assert server_container(docs)["image"] == f"registry.example.com/pixelmill@{DIGEST}"
    docs = render(sets=("image.digest=", "image.tag=1.2.3"))
    assert server_container(docs)["image"] == "pixelmill:1.2.3"
    docs = render(sets=("image.digest=",))
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert server_container(docs)["image"] == f"pixelmill:{app_version}"


def test_every_container_runs_the_same_image():
    for scenario in all_scenarios():
        docs = render(scenario)
        images = {c["image"] for _, spec in pod_specs(docs) for c in spec["containers"]}
        assert len(images) == 1, (scenario.name, images)


# --- ingress -------------------------------------------------------------------------------

def test_ingress_off():
    assert "Ingress" not in kinds(render(CI / "ingress-off-values.yaml"))
    assert "Ingress" not in kinds(render())


def test_ingress_on_is_an_alb_with_tls_and_waf():
    docs = render(CI / "rollouts-off-values.yaml")
    ingress = one(docs, "Ingress")
    notes = annotations(ingress)
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["spec"]["tls"][0]["hosts"] == ["images.ci.example.com"]
    assert notes["alb.ingress.kubernetes.io/wafv2-acl-arn"].startswith("arn:aws:wafv2:")
    assert notes["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    assert notes["alb.ingress.kubernetes.io/target-type"] == "ip"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "pixelmill", "port": {"name": "http"}}
    assert "alb.ingress.kubernetes.io/wafv2-acl-arn" not in annotations(one(render(sets=("ingress.enabled=true",)), "Ingress"))


# --- secrets -------------------------------------------------------------------------------

def secret_refs(spec):
    return [e["secretRef"]["name"] for c in spec["containers"] for e in c.get("envFrom", []) if "secretRef" in e]


def test_existing_secret():
    docs = render(CI / "rollouts-off-values.yaml")
    assert "ExternalSecret" not in kinds(docs)
    assert secret_refs(workload(docs)["spec"]["template"]["spec"]) == ["pixelmill-env"]
    assert secret_refs(one(docs, "Job", "pixelmill-migrate")["spec"]["template"]["spec"]) == ["pixelmill-env"]


def test_external_secret_builds_database_url():
    docs = render(CI / "external-secret-values.yaml")
    external = one(docs, "ExternalSecret")
    assert external["apiVersion"] == "external-secrets.io/v1beta1"
    target = external["spec"]["target"]
    assert secret_refs(workload(docs)["spec"]["template"]["spec"]) == [target["name"]]
    assert secret_refs(one(docs, "Job", "pixelmill-migrate")["spec"]["template"]["spec"]) == [target["name"]]
    url = target["template"]["data"]["DATABASE_URL"]
    assert url == ("postgres://{{ .username | urlquery }}:{{ .password | urlquery }}"
                   "@db.ci.example.com:5432/pixelmill?sslmode=require"), url
    assert target["template"]["data"]["PIXELMILL_SIGNING_KEY"] == "{{ .signing_key }}"
    keys = {(d["secretKey"], d["remoteRef"]["key"], d["remoteRef"].get("property")) for d in external["spec"]["data"]}
    assert keys == {
        ("username", "rds!db-00000000-0000-0000-0000-000000000000", "username"),
        ("password", "rds!db-00000000-0000-0000-0000-000000000000", "password"),
        ("signing_key", "pixelmill/ci/keys", "signing_key"),
    }, keys
    assert external["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": "aws"}
    # It must exist before the migration hook that reads it.
    secret_weight = int(annotations(external)["helm.sh/hook-weight"])
    migrate_weight = int(annotations(one(docs, "Job", "pixelmill-migrate"))["helm.sh/hook-weight"])
    assert "pre-install" in annotations(external)["helm.sh/hook"] and secret_weight < migrate_weight
    assert annotations(external)["argocd.argoproj.io/hook"] == "PreSync"


def test_external_secret_without_signing_key():
    docs = render(DEPLOY / "staging" / "values.yaml")
    data = one(docs, "ExternalSecret")["spec"]["target"]["template"]["data"]
    assert set(data) == {"DATABASE_URL"}, data


def test_a_secret_is_required():
    error = render_error(sets=("config.storage=s3://pixelmill-test/images",), base=False)
    assert "set secrets.existingSecret or enable secrets.externalSecret" in error, error


# --- autoscaling ---------------------------------------------------------------------------

def test_hpa_targets_the_workload_kind():
    for rollouts, kind, api_version in (("true", "Rollout", "argoproj.io/v1alpha1"), ("false", "Deployment", "apps/v1")):
        docs = render(sets=(f"rollouts.enabled={rollouts}",))
        target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
        assert target == {"apiVersion": api_version, "kind": kind, "name": workload(docs)["metadata"]["name"]}, target
        assert workload(docs)["kind"] == kind


def test_hpa_owns_the_replica_count():
    docs = render()
    assert "replicas" not in workload(docs)["spec"]
    docs = render(sets=("autoscaling.enabled=false", "replicaCount=3"))
    assert "HorizontalPodAutoscaler" not in kinds(docs)
    assert workload(docs)["spec"]["replicas"] == 3


def test_hpa_scales_up_fast_and_down_slowly():
    spec = one(render(), "HorizontalPodAutoscaler")["spec"]
    assert [m["type"] for m in spec["metrics"]] == ["Resource"]
    up, down = spec["behavior"]["scaleUp"], spec["behavior"]["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0 and down["stabilizationWindowSeconds"] >= 300
    assert max(p["value"] for p in up["policies"] if p["type"] == "Percent") > max(p["value"] for p in down["policies"])


def test_hpa_renders_in_flight_metric():
    spec = one(render(CI / "observability-values.yaml"), "HorizontalPodAutoscaler")["spec"]
    pods = [m for m in spec["metrics"] if m["type"] == "Pods"]
    assert len(pods) == 1 and pods[0]["pods"]["metric"]["name"] == "pixelmill_renders_in_flight", spec["metrics"]


def test_hpa_bounds_are_checked():
    error = render_error(sets=("autoscaling.minReplicas=5", "autoscaling.maxReplicas=2"))
    assert "maxReplicas must be at least" in error, error


# --- pods ----------------------------------------------------------------------------------

def test_security_context_on_every_container_of_every_pod():
    checked = 0
    for scenario in all_scenarios() + [None]:
        docs = render(scenario) if scenario else render()
        for where, spec in pod_specs(docs):
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, where
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert spec["automountServiceAccountToken"] is False, where
            tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
            for container in spec["containers"] + spec.get("initContainers", []):
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001, where
                assert context["capabilities"]["drop"] == ["ALL"], where
                assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
                mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                assert mounts.get("/tmp") in tmp_volumes, (where, mounts)
                checked += 1
    # Service, migration, helm test, load test and preview load containers were all seen.
    assert checked >= 25, checked


def test_probes_and_graceful_drain():
    docs = render(sets=("lifecycle.preStopSleepSeconds=12", "config.shutdownDrainSeconds=30"))
    container = server_container(docs)
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 12}}
    grace = workload(docs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 12 + 30, grace
    docs = render(sets=("lifecycle.terminationGracePeriodSeconds=90",))
    assert workload(docs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 90
    # 0 leaves the hook out (the kubelet's sleep action needs a positive duration before 1.33).
    assert "lifecycle" not in server_container(render(sets=("lifecycle.preStopSleepSeconds=0",)))


def test_deregistration_delay_matches_pre_stop_sleep():
    docs = render(CI / "rollouts-off-values.yaml", sets=("lifecycle.preStopSleepSeconds=20",))
    attributes = annotations(one(docs, "Ingress"))["alb.ingress.kubernetes.io/target-group-attributes"]
    assert attributes == "deregistration_delay.timeout_seconds=20", attributes


def test_topology_spread_over_zones_per_revision():
    for rollouts, hash_label in (("true", "rollouts-pod-template-hash"), ("false", "pod-template-hash")):
        spec = workload(render(sets=(f"rollouts.enabled={rollouts}",)))["spec"]["template"]["spec"]
        zone = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert len(zone) == 1 and zone[0]["labelSelector"]["matchLabels"] == SELECTOR
        assert zone[0]["matchLabelKeys"] == [hash_label], zone


def test_config_map_holds_the_service_config():
    docs = render(CI / "ingress-off-values.yaml")
    data = one(docs, "ConfigMap", "pixelmill")["data"]
    assert data["PIXELMILL_LISTEN"] == "0.0.0.0:8080"
    assert data["PIXELMILL_STORAGE"] == "s3://pixelmill-ci/images"
    assert data["PIXELMILL_S3_ENDPOINT"] == "http://garage.storage.svc:3900"
    assert data["PIXELMILL_LOG_FORMAT"] == "json" and data["PIXELMILL_AUTH"] == "true"
    assert data["RUST_LOG"] == "info"
    assert all(isinstance(v, str) for v in data.values()), data
    # On AWS the endpoint is not set at all rather than set empty.
    assert "PIXELMILL_S3_ENDPOINT" not in one(render(), "ConfigMap", "pixelmill")["data"]
    env_from = server_container(docs)["envFrom"]
    assert {"configMapRef": {"name": "pixelmill"}} in env_from, env_from


def test_watermarks_are_named_blob_keys():
    assert "PIXELMILL_WATERMARKS" not in config_data(render())
    docs = render(set_strings=("config.watermarks.logo=watermarks/logo.png", "config.watermarks.badge=marks/b.png"))
    assert config_data(docs)["PIXELMILL_WATERMARKS"] == "badge=blob:marks/b.png;logo=blob:watermarks/logo.png"
    for bad in ("config.watermarks.a b=x.png", "config.watermarks.logo=../x.png", "config.watermarks.logo=originals/x"):
        assert render_error(set_strings=(bad,)), bad


def test_checksum_changes_only_with_config():
    base = config_checksum(render(sets=("autoscaling.enabled=false",)))
    changed = config_checksum(render(sets=("autoscaling.enabled=false", "config.maxRendersInFlight=64")))
    unrelated = config_checksum(render(sets=("autoscaling.enabled=false", "replicaCount=5")))
    assert base != changed, "a config change must roll the pods"
    assert base == unrelated, "a change outside the config must not"
    assert re.fullmatch(r"[0-9a-f]{64}", base), base


# --- render budget ---------------------------------------------------------------------------

MIB = 1024 * 1024
# What the service holds besides its renders and its memory cache (runtime, pools, buffers).
RUNTIME_BYTES = 128 * MIB
QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|M|G|T)?")
QUANTITY_FACTORS = {None: 1, "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value) -> Fraction:
    """A Kubernetes quantity ("2", 2, 1.5, "1500m", "2Gi", "512Mi", "1G") as an exact number."""
    match = QUANTITY.fullmatch(str(value))
    assert match, f"not a quantity the tests read: {value!r}"
    return Fraction(match.group(1)) * QUANTITY_FACTORS[match.group(2)]


def service_resources(docs):
    found = [c for c in workload(docs)["spec"]["template"]["spec"]["containers"] if c["name"] == "pixelmill"]
    assert len(found) == 1, [c["name"] for c in found]
    return found[0]["resources"]


def config_data(docs):
    return one(docs, "ConfigMap", "pixelmill")["data"]


def renders_in_flight(sets=(), set_strings=(), set_jsons=()):
    docs = render(sets=sets, set_strings=set_strings, set_jsons=set_jsons)
    return config_data(docs)["PIXELMILL_MAX_RENDERS_IN_FLIGHT"]


def test_quantities_are_read_exactly():
    assert [quantity(q) for q in ("2", 2, 1.5, "1500m", "500m")] == [2, 2, Fraction(3, 2), Fraction(3, 2), Fraction(1, 2)]
    assert [quantity(q) for q in ("2Gi", "512Mi", "1G", "64Ki", 1048576)] == [2 * 2**30, 512 * 2**20, 10**9, 64 * 2**10, 2**20]


def test_renders_in_flight_fit_the_cpu_and_memory_limits():
    # Every render runs on its own thread of the render pool and holds up to
    # PIXELMILL_MAX_RENDER_BYTES: more renders than cores only share the cores, and the
    # memory limit must hold all of them, the memory cache and the runtime.
    scenarios = [("defaults", render())] + [(str(s.relative_to(REPO)), render(s)) for s in all_scenarios()]
    for name, docs in scenarios:
        data = config_data(docs)
        in_flight = int(data["PIXELMILL_MAX_RENDERS_IN_FLIGHT"])
        render_bytes = int(data["PIXELMILL_MAX_RENDER_BYTES"])
        cache_bytes = int(data["PIXELMILL_MEMORY_CACHE_BYTES"])
        resources = service_resources(docs)
        limits = resources["limits"]
        assert in_flight >= 1, (name, in_flight)
        cores = math.ceil(quantity(limits["cpu"]))
        assert in_flight <= cores, f"{name}: {in_flight} renders in flight on a CPU limit of {limits['cpu']}"
        needed = in_flight * render_bytes + cache_bytes + RUNTIME_BYTES
        assert needed <= quantity(limits["memory"]), (
            f"{name}: {in_flight} x {render_bytes} + {cache_bytes} + {RUNTIME_BYTES} = {needed} bytes "
            f"> memory limit {limits['memory']}")
        for resource, request in resources.get("requests", {}).items():
            assert quantity(request) <= quantity(limits[resource]), (name, resource, request, limits[resource])


def test_renders_in_flight_derive_from_the_cpu_limit():
    assert renders_in_flight() == "2", "the default CPU limit is 2"
    # Rounded up, at least 1: 0 would tell the service to run one render per core of the node.
    for cpu, expected in (("2", "2"), ("1500m", "2"), ("500m", "1"), ("1", "1"), ("1001m", "2"),
                          ("4000m", "4"), ("2.5", "3"), ("0.25", "1"), ("0", "1")):
        assert renders_in_flight(set_strings=(f"resources.limits.cpu={cpu}",)) == expected, (cpu, expected)
    # Numbers, as a values file or --set give them, not only strings.
    assert renders_in_flight(sets=("resources.limits.cpu=3",)) == "3"
    assert renders_in_flight(set_jsons=("resources.limits.cpu=1.5",)) == "2"
    assert renders_in_flight(set_jsons=("resources.limits.cpu=2",)) == "2"
    # An explicit value is passed as is, whatever the CPU limit.
    explicit = renders_in_flight(sets=("config.maxRendersInFlight=3",))
    assert explicit == "3", explicit
    explicit = renders_in_flight(sets=("config.maxRendersInFlight=3",), set_strings=("resources.limits.cpu=500m",))
    assert explicit == "3", explicit
    error = render_error(set_strings=("resources.limits.cpu=1k",))
    assert "resources.limits.cpu" in error, error


def test_the_service_container_needs_cpu_and_memory_limits():
    # The renders in flight derive from the CPU limit and the memory limit is sized for them:
    # the schema requires both, so the derived value always exists.
    for limit in ("cpu", "memory"):
        error = render_error(sets=(f"resources.limits.{limit}=null",))
        assert "schema" in error and limit in error, (limit, error)
    error = render_error(sets=("config.maxRendersInFlight=-1",))
    assert "schema" in error, error


def test_render_budget_settings_reach_the_config_map():
    data = config_data(render())
    assert data["PIXELMILL_MAX_RENDER_BYTES"] == "268435456", data
    assert data["PIXELMILL_MEMORY_CACHE_BYTES"] == "67108864", data
    # Large numbers stay integers, whether they come as integers or as JSON (float) numbers.
    data = config_data(render(sets=("config.maxRenderBytes=536870912", "config.memoryCacheBytes=0")))
    assert (data["PIXELMILL_MAX_RENDER_BYTES"], data["PIXELMILL_MEMORY_CACHE_BYTES"]) == ("536870912", "0"), data
    data = config_data(render(set_jsons=("config.maxRenderBytes=1073741824",)))
    assert data["PIXELMILL_MAX_RENDER_BYTES"] == "1073741824", data
    for sets in (("config.maxRenderBytes=1048576",), ("config.memoryCacheBytes=-1",)):
        error = render_error(sets=sets)
        assert "schema" in error, (sets, error)


# --- migration, load test, helm test ---------------------------------------------------------

def test_migration_hook():
    docs = render()
    job = one(docs, "Job", "pixelmill-migrate")
    notes = annotations(job)
    assert notes["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert notes["argocd.argoproj.io/hook"] == "PreSync"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"] and "command" not in container
    # Nothing else of the release exists when the hook runs.
    assert "serviceAccountName" not in job["spec"]["template"]["spec"]
    assert not [e for e in container.get("envFrom", []) if "configMapRef" in e]
    assert one(docs, "ConfigMap", "pixelmill")["data"]["PIXELMILL_MIGRATE_ON_START"] == "false"
    docs = render(sets=("migration.enabled=false",))
    assert not [j for j in of_kind(docs, "Job") if j["metadata"]["name"] == "pixelmill-migrate"]
    assert one(docs, "ConfigMap", "pixelmill")["data"]["PIXELMILL_MIGRATE_ON_START"] == "true"


def test_variant_gc_cron_job():
    docs = render(DEPLOY / "prod" / "values.yaml", sets=("variantGc.unusedDays=45",))
    cron = one(docs, "CronJob", "pixelmill-gc")
    assert cron["spec"]["schedule"] == "17 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["gc", "--variants-unused-days", "45"]
    # The service's configuration, Secret and ServiceAccount (its store access).
    sources = [next(iter(e.values()))["name"] for e in container["envFrom"]]
    assert sources == ["pixelmill", workload(docs)["spec"]["template"]["spec"]["containers"][0]["envFrom"][1]["secretRef"]["name"]]
    assert pod["serviceAccountName"] == workload(docs)["spec"]["template"]["spec"]["serviceAccountName"]
    # Its own NetworkPolicy selects its pods: out to the database and the store, nothing in.
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    policy = one(docs, "NetworkPolicy", "pixelmill-gc")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == [] and len(policy["spec"]["egress"]) >= 3
    assert not SELECTOR.items() <= labels.items(), "the Service never selects a gc pod"
    docs = render(sets=("variantGc.enabled=false",))
    assert not of_kind(docs, "CronJob") and not [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("-gc")]


def test_load_test_is_off_by_default():
    for docs in (render(), render(DEPLOY / "staging" / "values.yaml"), render(DEPLOY / "prod" / "values.yaml")):
        assert not [j for j in of_kind(docs, "Job") if "load-test" in j["metadata"]["name"]]


def test_load_test_job():
    docs = render(CI / "observability-values.yaml")
    job = one(docs, "Job", "pixelmill-load-test")
    assert annotations(job)["argocd.argoproj.io/hook"] == "PostSync"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/local/bin/pixelmill-load"]
    args = container["args"]
    assert args[args.index("--target-base") + 1] == "http://pixelmill.pixelmill.svc:80"
    assert args[args.index("--stages") + 1] == "30s:10,60s:50,30s:0"
    assert args[args.index("--scenario") + 1] == "mixed"
    thresholds = [args[i + 1] for i, a in enumerate(args) if a == "--threshold"]
    assert thresholds == ["p99<500ms", "errors<1%"], thresholds
    assert job["spec"]["backoffLimit"] == 0
    assert "env" not in container, "no API key unless a Secret is named"
    docs = render(sets=("loadTest.enabled=true", "loadTest.target=https://images.example.com"))
    args = one(docs, "Job", "pixelmill-load-test")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--target-base") + 1] == "https://images.example.com"


def test_helm_test_checks_readyz():
    job = one(render(), "Job", "pixelmill-test")
    assert annotations(job)["helm.sh/hook"] == "test"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/local/bin/pixelmill-load"]
    # The Service's address from the variables Kubernetes gives the test pod (no DNS needed):
    # they exist, since the test pod's service links are on.
    assert container["args"] == ["--target", "http://$(PIXELMILL_SERVICE_HOST):$(PIXELMILL_SERVICE_PORT)/readyz",
                                 "--rate", "1", "--duration", "5s", "--threshold", "errors<1%"], container["args"]
    assert job["spec"]["template"]["spec"].get("enableServiceLinks", True)
    named = one(render(sets=("fullnameOverride=images-api",)), "Job", "images-api-test")
    target = named["spec"]["template"]["spec"]["containers"][0]["args"][1]
    assert target == "http://$(IMAGES_API_SERVICE_HOST):$(IMAGES_API_SERVICE_PORT)/readyz", target


def test_the_service_and_its_migration_get_no_service_variables():
    # Kubernetes gives a pod PIXELMILL_SERVICE_HOST, PIXELMILL_PORT_80_TCP, ... for a Service
    # named pixelmill unless its spec says not to; the service once refused them at start.
    docs = render()
    assert workload(docs)["spec"]["template"]["spec"]["enableServiceLinks"] is False
    migrate = one(docs, "Job", "pixelmill-migrate")
    assert migrate["spec"]["template"]["spec"]["enableServiceLinks"] is False


# --- labels, services, policies --------------------------------------------------------------

def test_selectors_are_minimal_and_never_match_jobs():
    docs = render(DEPLOY / "prod" / "values.yaml", sets=("loadTest.enabled=true",))
    assert workload(docs)["spec"]["selector"]["matchLabels"] == SELECTOR
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == SELECTOR
    for service in of_kind(docs, "Service"):
        assert service["spec"]["selector"] == SELECTOR, service["metadata"]["name"]
    job_pods = [(where, spec) for where, spec in pod_specs(docs) if not where.startswith("Rollout")]
    assert len(job_pods) >= 4, [w for w, _ in job_pods]
    for doc in docs:
        if doc["kind"] == "Job":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert not SELECTOR.items() <= labels.items(), (doc["metadata"]["name"], labels)
    server_labels = workload(docs)["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= server_labels.items()


def test_every_object_is_namespaced_and_labelled():
    for doc in render(CI / "observability-values.yaml"):
        expected = "monitoring" if doc["metadata"]["name"] == "pixelmill-dashboard" else NAMESPACE
        assert doc["metadata"]["namespace"] == expected, doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_service_monitor_scrapes_every_pod_once():
    docs = render(DEPLOY / "prod" / "values.yaml")
    monitor = one(docs, "ServiceMonitor")
    metrics = one(docs, "Service", "pixelmill-metrics")
    assert metrics["spec"]["clusterIP"] == "None" and metrics["spec"]["selector"] == SELECTOR
    selected = [s["metadata"]["name"] for s in of_kind(docs, "Service")
                if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert selected == ["pixelmill-metrics"], selected
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert "rollouts-pod-template-hash" in monitor["spec"]["podTargetLabels"]


def test_network_policy():
    docs = render(DEPLOY / "staging" / "values.yaml")
    policy = one(docs, "NetworkPolicy", "pixelmill")
    assert policy["spec"]["podSelector"]["matchLabels"] == SELECTOR
    sources = policy["spec"]["ingress"][0]["from"]
    namespaces = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources if "namespaceSelector" in s}
    assert namespaces == {"kube-system", "monitoring"}, namespaces
    assert {"ipBlock": {"cidr": "10.10.0.0/16"}} in sources
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443)}, egress_ports
    jobs = one(docs, "NetworkPolicy", "pixelmill-jobs")
    components = jobs["spec"]["podSelector"]["matchExpressions"][0]["values"]
    for doc in docs:
        if doc["kind"] == "Job":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/component"] in components, labels
    assert "NetworkPolicy" not in kinds(render(CI / "ingress-off-values.yaml"))
    # Jobs reach outside the cluster only for a load test aimed at an outside URL.
    job_ports = lambda docs: {p["port"] for r in one(docs, "NetworkPolicy", "pixelmill-jobs")["spec"]["egress"] for p in r["ports"]}
    assert job_ports(render(sets=("loadTest.enabled=true",))) == {53, 8080, 5432}
    assert job_ports(render(sets=("loadTest.enabled=true", "loadTest.target=https://images.example.com"))) == {53, 8080, 5432, 443, 80}


def test_service_account_has_the_irsa_role():
    docs = render(DEPLOY / "prod" / "values.yaml")
    account = one(docs, "ServiceAccount")
    assert annotations(account)["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/pixelmill-prod-service"
    assert account["automountServiceAccountToken"] is False
    assert workload(docs)["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"] == "pixelmill"


# --- monitoring ------------------------------------------------------------------------------

def test_prometheus_rules():
    rule = one(render(CI / "observability-values.yaml"), "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"PixelmillHighErrorRatio", "PixelmillHighLatency", "PixelmillShedding",
                           "PixelmillRestarting", "PixelmillNoReadyPods"}, set(alerts)
    assert 'status=~"5.."' in alerts["PixelmillHighErrorRatio"]
    assert "pixelmill_http_request_duration_seconds_bucket" in alerts["PixelmillHighLatency"]
    assert 'pixelmill_render_rejected_total{' in alerts["PixelmillShedding"] and 'reason="overloaded"' in alerts["PixelmillShedding"]
    assert "or vector(0)" in alerts["PixelmillNoReadyPods"]
    # The pod name pattern matches the service's pods and none of the chart's Jobs.
    pattern = re.search(r'pod=~"([^"]+)"', alerts["PixelmillNoReadyPods"]).group(1)
    assert re.fullmatch(pattern, "pixelmill-5c6b7d9f8-k2xzq")
    for job_pod in ("pixelmill-migrate-k2xzq", "pixelmill-load-test-x7k2p", "pixelmill-test-x7k2p"):
        assert not re.fullmatch(pattern, job_pod), job_pod


def test_analysis_is_nan_safe_and_judges_the_new_pods():
    docs = render(sets=("rollouts.enabled=true",),
                  set_jsons=("analysis.successRate=0.995", "analysis.p99LatencySeconds=0.25"))
    metrics = {m["name"]: m for m in one(docs, "AnalysisTemplate")["spec"]["metrics"]}
    guard = "len(result) == 0 || isNaN(result[0]) || "
    assert metrics["success-rate"]["successCondition"] == guard + "result[0] >= 0.995"
    assert metrics["latency-p99"]["successCondition"] == guard + "result[0] <= 0.25"
    for metric in metrics.values():
        query = metric["provider"]["prometheus"]["query"]
        assert 'rollouts_pod_template_hash="{{args.pod-template-hash}}"' in query, query
    assert 'status!~"5.."' in metrics["success-rate"]["provider"]["prometheus"]["query"]


def test_grafana_dashboard():
    docs = render(CI / "observability-values.yaml")
    config_map = one(docs, "ConfigMap", "pixelmill-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["pixelmill.json"])
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for word in ("requests", "latency", "cache hit", "in flight", "per stage", "replicas"):
        assert word in titles, (word, titles)
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("pixelmill_http_requests_total", "pixelmill_http_request_duration_seconds_bucket",
                   "pixelmill_variant_cache_total", "pixelmill_renders_in_flight",
                   "pixelmill_render_duration_seconds_bucket"):
        assert metric in queries, metric
    assert "ConfigMap" not in {d["kind"] for d in render() if d["metadata"]["name"].endswith("dashboard")}


# --- GitOps ----------------------------------------------------------------------------------

DIGEST_LINE = re.compile(r'^  digest: "sha256:[a-f0-9]{64}"$')


def test_environment_values_have_one_rewritable_digest_line():
    for env, strategy in (("staging", "canary"), ("prod", "blueGreen")):
        lines = (DEPLOY / env / "values.yaml").read_text().splitlines()
        digest_lines = [i for i, line in enumerate(lines) if DIGEST_LINE.match(line)]
        assert len(digest_lines) == 1, (env, digest_lines)
        above = [line for line in lines[:digest_lines[0]] if line and not line.startswith((" ", "#"))]
        assert above[-1] == "image:", (env, above[-1])
        values = yaml.safe_load((DEPLOY / env / "values.yaml").read_text())
        assert values["rollouts"] == {**values["rollouts"], "enabled": True, "strategy": strategy}
        rollout = one(render(DEPLOY / env / "values.yaml"), "Rollout")
        assert list(rollout["spec"]["strategy"]) == [strategy]


def test_applications_render_their_environment():
    for env in ("staging", "prod"):
        app = yaml.safe_load((DEPLOY / env / "application.yaml").read_text())
        source = app["spec"]["source"]
        chart = REPO / source["path"]
        assert chart.resolve() == CHART.resolve(), chart
        value_files = [(chart / f).resolve() for f in source["helm"]["valueFiles"]]
        assert value_files == [(DEPLOY / env / "values.yaml").resolve()], value_files
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert "CreateNamespace=true" in policy["syncOptions"]
        assert policy["retry"]["backoff"]["factor"] >= 2
        assert app["spec"]["destination"]["namespace"] == NAMESPACE
        ignored = [p for d in app["spec"]["ignoreDifferences"] for p in d.get("jqPathExpressions", [])]
        assert '.spec.selector["rollouts-pod-template-hash"]' in ignored, ignored


def test_each_cluster_roots_only_its_own_environment():
    # Every cluster runs its own Argo CD, which registers only itself: a root that listed another
    # environment's Application would point it at a cluster it cannot reach.
    projects = {p["metadata"]["name"]: p for p in yaml.safe_load_all((DEPLOY / "argocd" / "appproject.yaml").read_text())}
    allowed = {(k["group"], k["kind"]) for k in projects["pixelmill"]["spec"]["namespaceResourceWhitelist"]}
    envs = sorted(p.parent.name for p in DEPLOY.glob("*/application.yaml"))
    assert envs == ["prod", "staging"], envs
    for env in envs:
        root = yaml.safe_load((DEPLOY / env / "root.yaml").read_text())
        source = root["spec"]["source"]
        assert source["path"] == f"deploy/{env}", source
        assert source["directory"] == {"include": "application.yaml"}, source
        assert root["spec"]["project"] in projects
        assert root["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
        app = yaml.safe_load((DEPLOY / env / "application.yaml").read_text())
        assert app["spec"]["project"] == "pixelmill"
        assert app["spec"]["source"]["repoURL"] in projects["pixelmill"]["spec"]["sourceRepos"]
        assert source["repoURL"] == app["spec"]["source"]["repoURL"]
        for doc in render(DEPLOY / env / "values.yaml"):
            group = doc["apiVersion"].rpartition("/")[0]
            assert (group, doc["kind"]) in allowed, (env, group, doc["kind"])


def test_every_setting_the_chart_passes_is_one_the_service_knows():
    # The service refuses unknown PIXELMILL_* variables at start; pixelmill.sample.toml names every
    # setting it knows (a Rust test keeps it complete).
    sample = (REPO / "pixelmill.sample.toml").read_text()
    docs = render(CI / "ingress-off-values.yaml")
    names = set(one(docs, "ConfigMap", "pixelmill")["data"])
    for doc in docs:
        if doc.get("kind") == "Job":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                # pixelmill-load's own variables are not settings of the service.
                if container.get("command") != ["/usr/local/bin/pixelmill-load"]:
                    names.update(e["name"] for e in container.get("env", []))
    settings = sorted(n for n in names if n.startswith("PIXELMILL_"))
    assert settings, names
    for name in settings:
        assert name in sample, f"{name} is not a setting of the service"


# Settings whose allowed values the service lists in service/src/config.rs: the schema's enum
# must be the same set (schema path -> name of the Rust constant).
SERVICE_ALLOWED_VALUES = {
    ("config", "logFormat"): "LOG_FORMATS",
}


def service_constant(name):
    source = (REPO / "service" / "src" / "config.rs").read_text()
    match = re.search(rf"pub(?:\([a-z]+\))?\s+const {name}\s*:\s*&\[&(?:'static\s+)?str\]\s*=\s*&\[(.*?)\];", source, re.S)
    assert match, f"service/src/config.rs defines no {name}"
    values = re.findall(r'"([^"]*)"', match.group(1))
    assert values, (name, match.group(0))
    return set(values)


def test_allowed_values_match_the_service():
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    for path, constant in SERVICE_ALLOWED_VALUES.items():
        node, default = schema, defaults
        for key in path:
            node, default = node["properties"][key], default[key]
        chart, service = set(node["enum"]), service_constant(constant)
        assert chart == service, f"{'.'.join(path)}: the schema allows {sorted(chart)}, the service {constant} {sorted(service)}"
        assert default in service, (path, default)


def test_the_region_is_an_aws_one_or_an_s3_compatible_stores_name():
    for region in ("eu-west-1", "us-gov-west-1", "garage", "us-east-1"):
        config = one(render(sets=(f"config.awsRegion={region}", "config.s3Endpoint=http://192.0.2.2:3900")), "ConfigMap")
        assert config["data"]["AWS_REGION"] == region
    for region in ("EU-West-1", "eu west 1", "-garage"):
        assert "awsRegion" in render_error(sets=(f"config.awsRegion={region}",)), region


def main() -> int:
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(limit=3)
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
