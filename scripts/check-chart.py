#!/usr/bin/env python3
"""Lints the Helm chart and renders it through the Helm engine (helm-python-sdk) with the default
values and with ci/full-values.yaml (every option on); validates every rendered manifest with
kubernetes-validate --strict (1.32); checks the values schema refuses bad values, that two
releases share no cluster-wide name, and that an upgrade render carries changed CRDs.
Prints `ARGS <values>: <json>` and `EXPR <promql>` lines for tests/chart.rs."""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import celpy
import helm_python as helm
import yaml

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "charts", "restore-operator")
FULL_VALUES = os.path.join(CHART, "ci", "full-values.yaml")
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                  "ValidatingAdmissionPolicyBinding", "CustomResourceDefinition"}
# Values the schema must refuse (issue 15), with the key the refusal must name.
BAD_VALUES = [
    ({"replicas": "two"}, "/replicas"),
    ({"approval": {"fourEyes": "false"}}, "/approval/fourEyes"),
    ({"metrics": {"serviceMonitor": False}}, "/metrics/serviceMonitor"),
    ({"crds": {"enabled": True, "keep": True, "install": True}}, "/crds"),
]


class Failure(Exception):
    pass


def docs(manifests: dict) -> list:
    out = []
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        out.extend(d for d in yaml.safe_load_all(text) if d)
    return out


def check_cel(objects: list) -> int:
    """Parses every CEL expression of the rendered admission policies (syntax errors fail)."""
    env = celpy.Environment()
    count = 0
    for doc in objects:
        if doc.get("kind") != "ValidatingAdmissionPolicy":
            continue
        spec = doc["spec"]
        for item in spec.get("variables", []) + spec.get("validations", []):
            for key in ("expression", "messageExpression"):
                if key in item:
                    env.compile(item[key])
                    count += 1
    if count == 0:
        raise Failure("no CEL expression found in the admission policy")
    return count


def validate(name: str, manifests: dict) -> int:
    """kubernetes-validate --strict on every rendered manifest; monitoring.coreos.com kinds are
    checked for their required fields here (kubernetes-validate has no schema for them)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for path, text in manifests.items():
            if not text.strip() or path.endswith(".txt"):
                continue
            for i, doc in enumerate(d for d in yaml.safe_load_all(text) if d):
                if doc["apiVersion"].startswith("monitoring.coreos.com/"):
                    check_monitoring(doc)
                    continue
                out = os.path.join(tmp, f"{path.replace('/', '_')}.{i}.yaml")
                with open(out, "w") as f:
                    yaml.safe_dump(doc, f)
                files.append(out)
        result = subprocess.run(["kubernetes-validate", "-k", "1.32.0", "--strict", "--quiet", *files],
                                capture_output=True, text=True)
        if result.returncode != 0 or "WARN" in result.stdout + result.stderr:
            raise Failure(f"kubernetes-validate ({name}): {result.stdout} {result.stderr}")
        return len(files)


def check_monitoring(doc: dict) -> None:
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        if not spec["selector"]["matchLabels"] or not all("port" in e for e in spec["endpoints"]):
            raise Failure(f"ServiceMonitor without selector or endpoint port: {spec}")
    elif doc["kind"] == "PrometheusRule":
        for group in spec["groups"]:
            for rule in group["rules"]:
                if not rule.get("alert") or not isinstance(rule.get("expr"), str):
                    raise Failure(f"PrometheusRule rule without alert/expr: {rule}")
    else:
        raise Failure(f"unexpected monitoring kind {doc['kind']}")


def check_schema_refusals(chart) -> None:
    for values, key in BAD_VALUES:
        try:
            chart.render(values=values, name="restore-operator", namespace="restore-operator")
        except helm.HelmValuesError as e:
            if key not in str(e):
                raise Failure(f"{values} refused for another reason: {e}")
            print(f"SCHEMA refuses {json.dumps(values)} at {key}")
            continue
        raise Failure(f"the values schema accepted {values}")


def kinds(objects: list, kind: str) -> list:
    return [d for d in objects if d["kind"] == kind]


def check_service_monitor_switch(chart) -> None:
    for enabled in (False, True):
        objects = docs(chart.render(values={"metrics": {"serviceMonitor": {"enabled": enabled}}},
                                    name="restore-operator", namespace="restore-operator"))
        if len(kinds(objects, "ServiceMonitor")) != int(enabled):
            raise Failure(f"serviceMonitor.enabled={enabled} rendered {len(kinds(objects, 'ServiceMonitor'))}")
    print("SERVICEMONITOR follows metrics.serviceMonitor.enabled")


def check_two_releases(chart) -> None:
    first = docs(chart.render(name="restore-operator", namespace="restore-operator"))
    second = docs(chart.render(values={"crds": {"enabled": False, "keep": True}},
                               name="canary", namespace="restore-canary"))
    names = lambda objs: {(d["kind"], d["metadata"]["name"]) for d in objs if d["kind"] in CLUSTER_SCOPED}
    clash = names(first) & names(second)
    if clash:
        raise Failure(f"a second release collides on cluster-wide names: {sorted(clash)}")
    if kinds(second, "CustomResourceDefinition"):
        raise Failure("crds.enabled=false still renders CRDs")
    print(f"RELEASES two releases, {len(names(first))} + {len(names(second))} cluster-wide names, none shared")


def check_secret_scope(chart) -> None:
    """secretNamespaces: no cluster-wide Secret access, a RoleBinding in each listed namespace
    and the matching --secret-namespace flags; by default one ClusterRoleBinding."""
    scoped = docs(chart.render(values={"secretNamespaces": ["team-a", "team-b"]},
                               name="restore-operator", namespace="restore-operator"))
    secret_rules = lambda d: [r for r in d.get("rules", []) if "secrets" in r.get("resources", [])]
    reader = "restore-operator-secret-reader"
    for role in kinds(scoped, "ClusterRole"):
        if secret_rules(role) and role["metadata"]["name"] != reader:
            raise Failure(f"{role['metadata']['name']} grants Secrets besides the secret reader")
    bindings = [d for d in scoped if d["kind"] in ("RoleBinding", "ClusterRoleBinding") and d["roleRef"]["name"] == reader]
    where = sorted((d["kind"], d["metadata"].get("namespace")) for d in bindings)
    if where != [("RoleBinding", "team-a"), ("RoleBinding", "team-b")]:
        raise Failure(f"secret reader bound at {where}")
    args = kinds(scoped, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    if [a for a in args if a.startswith("--secret-namespace=")] != ["--secret-namespace=team-a", "--secret-namespace=team-b"]:
        raise Failure(f"--secret-namespace flags missing: {args}")
    default = docs(chart.render(name="restore-operator", namespace="restore-operator"))
    bound = [d["kind"] for d in default if d["kind"] in ("RoleBinding", "ClusterRoleBinding") and d["roleRef"]["name"] == reader]
    if bound != ["ClusterRoleBinding"]:
        raise Failure(f"default secret scope: {bound}")
    print("SECRETS read only in secretNamespaces when set (RoleBindings + --secret-namespace)")


def check_crds(chart, objects: list, keep: bool) -> None:
    """The rendered CRDs are the generator's files (files/crds/) plus labels and, with
    crds.keep, helm.sh/resource-policy: keep."""
    rendered = {d["metadata"]["name"]: d for d in kinds(objects, "CustomResourceDefinition")}
    sources = {}
    for fname in sorted(os.listdir(os.path.join(CHART, "files", "crds"))):
        with open(os.path.join(CHART, "files", "crds", fname)) as f:
            doc = yaml.safe_load(f)
        sources[doc["metadata"]["name"]] = doc
    if set(rendered) != set(sources):
        raise Failure(f"rendered CRDs {sorted(rendered)} != files/crds {sorted(sources)}")
    for name, crd in rendered.items():
        if crd["spec"] != sources[name]["spec"]:
            raise Failure(f"rendered CRD {name} differs from files/crds")
        annotations = crd["metadata"].get("annotations") or {}
        if (annotations.get("helm.sh/resource-policy") == "keep") != keep:
            raise Failure(f"CRD {name}: resource-policy keep should be {keep}: {annotations}")
    if os.path.isdir(os.path.join(CHART, "crds")):
        raise Failure("charts/restore-operator/crds/ exists: Helm would install it and never upgrade it")


def check_upgrade_carries_crd_changes() -> None:
    """A new chart version whose CRD gained a printer column: the upgrade render (what `helm
    upgrade` applies) carries it. Under Helm's crds/ folder it would never be applied."""
    with tempfile.TemporaryDirectory() as tmp:
        chart_copy = os.path.join(tmp, "restore-operator")
        shutil.copytree(CHART, chart_copy)
        path = os.path.join(chart_copy, "files", "crds", "restoreruns.tenantatlas.io.yaml")
        with open(path) as f:
            crd = yaml.safe_load(f)
        column = {"name": "Approver", "type": "string", "jsonPath": ".status.confirmation.approvedBy"}
        crd["spec"]["versions"][0]["additionalPrinterColumns"].append(column)
        with open(path, "w") as f:
            yaml.safe_dump(crd, f)
        upgraded = helm.Chart.load(chart_copy)
        objects = docs(upgraded.render(name="restore-operator", namespace="restore-operator",
                                       revision=2, is_upgrade=True, is_install=False))
        crds = {d["metadata"]["name"]: d for d in kinds(objects, "CustomResourceDefinition")}
        columns = crds["restoreruns.tenantatlas.io"]["spec"]["versions"][0]["additionalPrinterColumns"]
        if column not in columns:
            raise Failure("the upgrade render does not carry the changed CRD")
        # The old layout: the same CRD under crds/ is not part of any render (install-only).
        os.makedirs(os.path.join(chart_copy, "crds"))
        shutil.move(path, os.path.join(chart_copy, "crds", "restoreruns.tenantatlas.io.yaml"))
        old_layout = docs(helm.Chart.load(chart_copy).render(
            name="restore-operator", namespace="restore-operator", revision=2, is_upgrade=True, is_install=False))
        if any(d["metadata"]["name"] == "restoreruns.tenantatlas.io" for d in kinds(old_layout, "CustomResourceDefinition")):
            raise Failure("expected Helm to leave crds/ out of the upgrade render")
    print("UPGRADE the upgrade render applies a changed CRD (new printer column Approver); crds/ would not")


def check_shards(chart) -> None:
    """sharding.shards: one Deployment per shard besides the main one, each with its own Lease and
    label selector, and no Deployment selecting another's pods."""
    manifests = chart.render(values={"sharding": {"key": "sharding.tenantatlas.io/key", "shards": ["shard1", "shard2"]}},
                             name="restore-operator", namespace="restore-operator", is_install=True)
    validate("shards", manifests)
    deployments = kinds(docs(manifests), "Deployment")
    if len(deployments) != 3:
        raise Failure(f"two shards rendered {len(deployments)} Deployments")
    leases, selectors = set(), []
    for doc in deployments:
        args = doc["spec"]["template"]["spec"]["containers"][0]["args"]
        print("SHARDARGS " + json.dumps(args))
        leases.update(a for a in args if a.startswith("--lease-name="))
        selectors.append(doc["spec"]["selector"]["matchLabels"])
        watch = [a for a in args if a.startswith("--watch-label-selector=")]
        if len(watch) != 1:
            raise Failure(f"{doc['metadata']['name']} has no single --watch-label-selector: {args}")
    if len(leases) != 3:
        raise Failure(f"shards share a Lease: {sorted(leases)}")
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in deployments]
    for i, selector in enumerate(selectors):
        for j, labels in enumerate(pods):
            if i != j and all(labels.get(k) == v for k, v in selector.items()):
                raise Failure(f"Deployment {i} selects the pods of Deployment {j}")
    print("SHARDS two shards: 3 Deployments, 3 Leases, disjoint selectors")


def main() -> int:
    with open(FULL_VALUES) as f:
        full = yaml.safe_load(f)
    for label, values in [("defaults", None), ("full-values", full)]:
        report = helm.lint(CHART, values=values, strict=True, kube_version="v1.32.0")
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
        if problems:
            print(f"helm lint ({label}):", json.dumps(problems, indent=2))
            return 1
    chart = helm.Chart.load(CHART)
    kinds_by_values = {}
    try:
        for name, values in [("defaults", None), ("full-values", full)]:
            manifests = chart.render(values=copy.deepcopy(values), name="restore-operator",
                                     namespace="restore-operator", is_install=True)
            objects = docs(manifests)
            kinds_by_values[name] = sorted(d["kind"] for d in objects)
            count = validate(name, manifests)
            for doc in kinds(objects, "Deployment"):
                print(f"ARGS {name}: " + json.dumps(doc["spec"]["template"]["spec"]["containers"][0]["args"]))
            for doc in kinds(objects, "PrometheusRule"):
                for group in doc["spec"]["groups"]:
                    for rule in group["rules"]:
                        print("EXPR " + " ".join(rule["expr"].split()))
            check_crds(chart, objects, keep=(values or {}).get("crds", {}).get("keep", True))
            print(f"{name}: {count} manifests valid (kubernetes-validate --strict 1.32), "
                  f"{check_cel(objects)} CEL expressions parse")
            notes = manifests.get("restore-operator/templates/NOTES.txt", "")
            if "kubectl restorerun approve" not in notes:
                raise Failure(f"NOTES.txt lacks the next commands ({name})")
        check_schema_refusals(chart)
        check_service_monitor_switch(chart)
        check_two_releases(chart)
        check_secret_scope(chart)
        check_shards(chart)
        check_upgrade_carries_crd_changes()
    except Failure as e:
        print(f"FAILED: {e}")
        return 1
    print(json.dumps(kinds_by_values, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
