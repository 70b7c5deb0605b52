// Validates the custom resources of Pixelmill's rendered manifests and GitOps files
// against the published schemas that the @kubernetes-models packages compile in.
//
// Usage: node helm/validate-custom-resources.mjs NODE_MODULES_DIR FILE.yaml...
//
// Every document must be one of the custom kinds below; a kind without a validator is
// an error, so a new custom resource cannot slip through unchecked. Core Kubernetes
// objects are validated elsewhere (kubernetes-validate).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modulesDir, ...files] = process.argv.slice(2);
if (!modulesDir || files.length === 0) {
  console.error("usage: validate-custom-resources.mjs NODE_MODULES_DIR FILE.yaml...");
  process.exit(2);
}

const load = (relative) => import(pathToFileURL(join(modulesDir, relative)).href);

// "apiVersion kind" -> [module inside node_modules, exported class].
const validators = {
  "argoproj.io/v1alpha1 Rollout": ["@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout.js", "Rollout"],
  "argoproj.io/v1alpha1 AnalysisTemplate": ["@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate.js", "AnalysisTemplate"],
  "argoproj.io/v1alpha1 Application": ["@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application.js", "Application"],
  "argoproj.io/v1alpha1 AppProject": ["@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject.js", "AppProject"],
  "monitoring.coreos.com/v1 ServiceMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js", "ServiceMonitor"],
  "monitoring.coreos.com/v1 PrometheusRule": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule.js", "PrometheusRule"],
  "external-secrets.io/v1 ExternalSecret": ["@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret.js", "ExternalSecret"],
  "external-secrets.io/v1beta1 ExternalSecret": ["@kubernetes-models/external-secrets/external-secrets.io/v1beta1/ExternalSecret.js", "ExternalSecret"],
};

const { parseAllDocuments } = await load("yaml/dist/index.js");

let passed = 0;
const failures = [];
for (const file of files) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  for (const document of documents) {
    if (document.errors.length > 0) {
      failures.push(`${file}: YAML: ${document.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const object = document.toJS();
    if (object === null || object === undefined) continue;
    const what = `${file}: ${object.kind}/${object.metadata?.name}`;
    const key = `${object.apiVersion} ${object.kind}`;
    const entry = validators[key];
    if (!entry) {
      failures.push(`${what}: no validator for ${key}`);
      continue;
    }
    const Model = (await load(entry[0]))[entry[1]];
    try {
      new Model(object).validate();
      passed += 1;
      console.log(`ok   ${what} (${key})`);
    } catch (error) {
      failures.push(`${what}: ${error.message}`);
    }
  }
}

for (const failure of failures) console.error(`FAIL ${failure}`);
console.log(`custom resources: ${passed} valid, ${failures.length} invalid`);
process.exit(failures.length === 0 && passed > 0 ? 0 : 1);
