// Validates the Prometheus Operator objects (ServiceMonitor, PrometheusRule) in YAML files
// against the operator's own CRD schemas, as packaged by @kubernetes-models/prometheus-operator.
// kubernetes-validate has no schema for them. usage: node check-crds.mjs FILE...
import fs from "node:fs";
import yaml from "js-yaml";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
const kinds = { PrometheusRule, ServiceMonitor };
let n = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
    if (!doc || !kinds[doc.kind]) continue;
    try { new kinds[doc.kind](doc).validate(); n++; }
    catch (e) { console.error(`${file}: ${doc.kind}/${doc.metadata.name}: ${e.message}`); process.exit(1); }
  }
}
console.log(`${n} Prometheus Operator objects valid`);
