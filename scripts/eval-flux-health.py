#!/usr/bin/env python3
"""Evaluates the healthCheckExprs of deploy/flux/kustomization.yaml with cel-python on the
objects given as JSON on stdin ([{"kind", "object"}]) and prints one JSON list of results:
{"inProgress": bool, "failed": bool, "current": bool} per object (tests/flux_health_cel.rs)."""
import json
import os
import sys

import celpy
import yaml

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "flux", "kustomization.yaml")


def main() -> int:
    with open(HERE) as f:
        kustomization = yaml.safe_load(f)
    exprs = {e["kind"]: e for e in kustomization["spec"]["healthCheckExprs"]}
    env = celpy.Environment()
    programs = {kind: {key: env.program(env.compile(e[key])) for key in ("inProgress", "failed", "current") if key in e}
                for kind, e in exprs.items()}
    results = []
    for item in json.load(sys.stdin):
        obj = item["object"]
        # Flux binds the object's top-level fields as variables (metadata, spec, status).
        activation = {k: celpy.json_to_cel(v) for k, v in obj.items()}
        results.append({key: bool(program.evaluate(activation)) for key, program in programs[item["kind"]].items()})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
