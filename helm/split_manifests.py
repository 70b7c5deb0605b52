"""Split rendered manifests into core Kubernetes objects and custom resources.

Usage: python3 helm/split_manifests.py OUT_DIR FILE.yaml...

Writes OUT_DIR/core.yaml, for kubernetes-validate, and OUT_DIR/custom.yaml, for
helm/validate-custom-resources.mjs. The pod templates that custom resources embed (the
Rollout's pod template, the Job of an AnalysisTemplate's job metric) are core API types
that the custom resources' own schemas check only loosely, so each is also wrapped into
the core object that carries it (a Deployment, a Job) and validated strictly with the
rest; checkov, which knows no custom kinds, scans them in that form too.
"""

import sys
from pathlib import Path

import yaml


def is_core(api_version: str) -> bool:
    """Core API groups: the legacy group ("v1"), unqualified groups such as "apps" and
    "batch", and the *.k8s.io groups."""
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def embedded_core_objects(doc: dict) -> list[dict]:
    kind = doc.get("kind")
    name = doc.get("metadata", {}).get("name", "unnamed")
    namespace = doc.get("metadata", {}).get("namespace")
    annotations = doc.get("metadata", {}).get("annotations")

    def meta(suffix: str) -> dict:
        # Annotations travel along: they carry the in-place checkov skips and reasons.
        return {
            "name": f"{name}-{suffix}",
            **({"namespace": namespace} if namespace else {}),
            **({"annotations": annotations} if annotations else {}),
        }

    wrapped = []
    if kind == "Rollout":
        spec = doc["spec"]
        wrapped.append({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("rollout-template"),
            "spec": {"selector": spec["selector"], "template": spec["template"]},
        })
    if kind == "AnalysisTemplate":
        for metric in doc.get("spec", {}).get("metrics", []):
            job = metric.get("provider", {}).get("job")
            if job:
                wrapped.append({
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {**meta(f"metric-{metric['name']}"), **job.get("metadata", {})},
                    "spec": job["spec"],
                })
    return wrapped


def main() -> int:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    core, custom = [], []
    for file in sys.argv[2:]:
        with open(file, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if not doc:
                    continue
                if is_core(doc["apiVersion"]):
                    core.append(doc)
                else:
                    custom.append(doc)
                    core.extend(embedded_core_objects(doc))
    (out_dir / "core.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False), encoding="utf-8")
    (out_dir / "custom.yaml").write_text(yaml.safe_dump_all(custom, sort_keys=False), encoding="utf-8")
    print(f"{len(core)} core objects, {len(custom)} custom resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
