#!/usr/bin/env python3
"""Renders templates of the restore-operator chart through the Helm engine (helm-python-sdk) and
prints them as one multi-document YAML.
Usage: render-chart.py [--namespace=NS] VALUES_JSON TEMPLATE... (release namespace: restore-operator)"""
import json
import os
import sys

import helm_python as helm

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "charts", "restore-operator")


def main() -> int:
    args = sys.argv[1:]
    namespace = "restore-operator"
    if args and args[0].startswith("--namespace="):
        namespace = args.pop(0).split("=", 1)[1]
    values = json.loads(args[0])
    wanted = args[1:]
    manifests = helm.Chart.load(CHART).render(values=values, name="restore-operator", namespace=namespace)
    documents = [text for path, text in sorted(manifests.items()) if os.path.basename(path) in wanted]
    if len(documents) != len(wanted):
        print(f"templates not rendered: {wanted} from {sorted(manifests)}", file=sys.stderr)
        return 1
    print("\n---\n".join(documents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
