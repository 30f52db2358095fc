#!/usr/bin/env python3
"""Lints the Helm chart and renders it with default and all-on values through the Helm engine
(helm-python-sdk), then validates every rendered manifest with kubernetes-validate (1.32)."""
import json
import os
import subprocess
import sys
import tempfile

import celpy
import helm_python as helm
import yaml

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "charts", "restore-operator")
ALL_ON = {
    "approval": {
        "fourEyes": True,
        "trustedAppliers": ["system:serviceaccount:argocd:argocd-application-controller"],
        "approverGroups": ["intune-approvers"],
        "gitopsApproverGroups": ["intune-gitops-approvers"],
        "delegatedApprovers": ["system:serviceaccount:argocd:argocd-server"],
    }
}


def check_cel(manifests: dict) -> int:
    """Parses every CEL expression of the rendered admission policies (syntax errors fail)."""
    env = celpy.Environment()
    count = 0
    for text in manifests.values():
        for doc in yaml.safe_load_all(text):
            if not doc or doc.get("kind") != "ValidatingAdmissionPolicy":
                continue
            spec = doc["spec"]
            for item in spec.get("variables", []) + spec.get("validations", []):
                for key in ("expression", "messageExpression"):
                    if key in item:
                        env.compile(item[key])
                        count += 1
    if count == 0:
        raise SystemExit("no CEL expression found in the admission policy")
    return count


def main() -> int:
    report = helm.lint(CHART, strict=True, kube_version="v1.32.0")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
    if problems:
        print("helm lint:", json.dumps(problems, indent=2))
        return 1
    chart = helm.Chart.load(CHART)
    kinds = {}
    for name, values in [("defaults", None), ("all-on", ALL_ON)]:
        manifests = chart.render(values=values, name="restore-operator", namespace="restore-operator")
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for path, text in manifests.items():
                if not text.strip() or path.endswith(".txt"):
                    continue
                out = os.path.join(tmp, path.replace("/", "_"))
                with open(out, "w") as f:
                    f.write(text)
                files.append(out)
                for doc in text.split("\n---"):
                    for line in doc.splitlines():
                        if line.startswith("kind:"):
                            kinds.setdefault(name, []).append(line.split(":", 1)[1].strip())
            result = subprocess.run(
                ["kubernetes-validate", "-k", "1.32.0", "--strict", "--quiet", *files],
                capture_output=True, text=True,
            )
            if result.returncode != 0:
                print(f"kubernetes-validate ({name}):", result.stdout, result.stderr)
                return 1
        for text in manifests.values():
            for doc in yaml.safe_load_all(text):
                if doc and doc.get("kind") == "Deployment":
                    args = doc["spec"]["template"]["spec"]["containers"][0]["args"]
                    print(f"ARGS {name}: " + json.dumps(args))
        compiled = check_cel(manifests)
        print(f"{name}: {compiled} CEL expressions parse")
    print(json.dumps(kinds, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
