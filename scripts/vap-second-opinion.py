#!/usr/bin/env python3
"""A second opinion on ValidatingAdmissionPolicy decisions, written independently of the emulator:
cel-python evaluates a policy's matchConstraints, variables and validations on admission requests.

stdin: {"policy": <ValidatingAdmissionPolicy>, "scenarios": [{"id", "object", "oldObject",
        "request", "authorizer": {"<verb> <group>/<resource> <namespace>/<name>": bool}}]}
stdout: [{"id", "allowed", "message", "error"}] (message: the first failing validation's message).
The authorizer's answers are given per scenario (RBAC is not re-implemented here)."""
import json
import sys

import celpy
import celpy.celtypes as ct


class Check:
    """authorizer.group(g).resource(r).namespace(n).name(x).check(verb) — collects the attributes."""

    def __init__(self, answers, **attributes):
        self.answers = answers
        self.attributes = attributes

    def with_(self, **more):
        return Check(self.answers, **{**self.attributes, **more})


def key_of(attributes, verb):
    a = attributes
    return f"{verb} {a.get('group', '')}/{a.get('resource', '')} {a.get('namespace', '')}/{a.get('name', '')}"


FUNCTIONS = {
    "group": lambda target, g: Check(target.answers, group=str(g)),
    "resource": lambda target, r: target.with_(resource=str(r)),
    "namespace": lambda target, n: target.with_(namespace=str(n)),
    "name": lambda target, n: target.with_(name=str(n)),
    "check": lambda target, verb: ct.BoolType(target.answers[key_of(target.attributes, str(verb))]),
    "allowed": lambda target: target,
}


def rule_matches(rule, request):
    def has(key, value):
        values = rule.get(key, [])
        return "*" in values or value in values
    resource = request["resource"]
    plural = resource["resource"] + ("/" + request["subResource"] if request["subResource"] else "")
    return (has("operations", request["operation"]) and has("apiGroups", resource["group"])
            and has("apiVersions", resource["version"]) and has("resources", plural))


PROGRAMS = {}


def evaluate(env, source, activation):
    if source not in PROGRAMS:
        PROGRAMS[source] = env.program(env.compile(source), functions=FUNCTIONS)
    return PROGRAMS[source].evaluate(activation)


ENV = celpy.Environment()


def decide(policy, scenario):
    spec = policy["spec"]
    request = scenario["request"]
    if not any(rule_matches(r, request) for r in spec["matchConstraints"]["resourceRules"]):
        return {"allowed": True, "message": None, "error": None}
    env = ENV
    activation = {
        "object": celpy.json_to_cel(scenario["object"]),
        "oldObject": celpy.json_to_cel(scenario["oldObject"]),
        "request": celpy.json_to_cel(request),
        "authorizer": Check(scenario["authorizer"]),
    }
    variables = {}
    for variable in spec.get("variables", []):
        activation["variables"] = ct.MapType(variables)
        variables[ct.StringType(variable["name"])] = evaluate(env, variable["expression"], activation)
    activation["variables"] = ct.MapType(variables)
    for validation in spec["validations"]:
        try:
            result = evaluate(env, validation["expression"], activation)
        except Exception as error:  # an evaluation error under failurePolicy Fail denies
            return {"allowed": False, "message": None, "error": str(error)}
        if isinstance(result, celpy.CELEvalError):
            return {"allowed": False, "message": None, "error": str(result)}
        if not bool(result):
            message = validation.get("message") or f"failed expression: {validation['expression']}"
            if "messageExpression" in validation:
                try:
                    text = evaluate(env, validation["messageExpression"], activation)
                    if isinstance(text, str) and text.strip():
                        message = str(text)
                except Exception:
                    pass
            return {"allowed": False, "message": message, "error": None}
    return {"allowed": True, "message": None, "error": None}


def main() -> int:
    data = json.load(sys.stdin)
    answers = [{"id": s["id"], **decide(data["policy"], s)} for s in data["scenarios"]]
    json.dump(answers, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
