#!/usr/bin/env python3
"""Generates crates/graph-sim/model/graph-model.json: the part of Microsoft's published Graph beta
model the catalogue (crates/core/src/catalog.rs) uses, from Microsoft's own packages, offline.

Sources (fetched once by scripts/install-test-deps.sh into $GRAPH_MODEL_SOURCES, default
~/.cache/restore-operator/graph-model):
  * npm  @microsoft/microsoft-graph-types-beta  (TypeScript definitions of every beta type)
  * PyPI msgraph-beta-sdk                       (Kiota request builders: the URL surface, actions)

The model holds, for each covered collection, its element type; for each needed type, its base
type, own structural properties and navigation properties (inheritance is resolved by walking
`base`); for each covered base type, all its derived types; for each covered collection, the
actions bound to its items and whether they answer a body. Every other collection under
deviceManagement / deviceAppManagement is listed by name and element type only, so the simulator
can answer it (empty) instead of "segment not found".

Usage: gen-graph-model.py [--types TGZ] [--sdk WHL] [--out FILE | --check FILE]
"""

import argparse
import io
import json
import os
import re
import sys
import tarfile
import zipfile

TYPES_PACKAGE = "microsoft-microsoft-graph-types-beta-0.44.0-preview.tgz"
SDK_WHEEL = "msgraph_beta_sdk-1.66.0-py3-none-any.whl"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOG = os.path.join(REPO, "crates", "core", "src", "catalog.rs")
DEFAULT_OUT = os.path.join(REPO, "crates", "graph-sim", "model", "graph-model.json")
# The catalogue's view of the same model, as Rust constants (derived types, secrets, certificate links).
DEFAULT_RUST_OUT = os.path.join(REPO, "crates", "core", "src", "catalog_model.rs")

# Properties Graph never returns in clear (write-only secrets): Wi-Fi pre-shared keys, VPN shared
# secrets. Matched by name over every derived type's properties (inheritance resolved), so a new
# published type with such a property is covered without a hand list.
SECRET_PROPERTY = re.compile(r"^(preSharedKey|sharedSecret|password|passphrase|privateKey)$")
# Navigations that point at a certificate profile: the link a backup does not carry.
CERTIFICATE_NAVIGATION_ELEMENT = re.compile(r"(CertificateProfileBase|TrustedRootCertificate|CertificateProfile)$")

# Actions Microsoft documents on a derived type's collection that the Kiota SDK does not generate
# (it only generates actions bound to the collection's declared element type). Each entry names
# the documentation page it comes from.
DOCUMENTED_ACTIONS = {
    "deviceAppManagement/iosManagedAppProtections": [
        {"name": "assign", "returns": None, "parameters": ["assignments"],
         "source": "Microsoft Graph docs: 'assign action' (intune-mam-targetedmanagedappprotection-assign), 204 No Content"},
        {"name": "targetApps", "returns": None, "parameters": ["appGroupType", "apps"],
         "source": "Microsoft Graph docs: 'targetApps action' (intune-mam-managedapppolicy-targetapps), 204 No Content"},
    ],
    "deviceAppManagement/androidManagedAppProtections": [
        {"name": "assign", "returns": None, "parameters": ["assignments"],
         "source": "Microsoft Graph docs: 'assign action' (intune-mam-targetedmanagedappprotection-assign), 204 No Content"},
        {"name": "targetApps", "returns": None, "parameters": ["appGroupType", "apps"],
         "source": "Microsoft Graph docs: 'targetApps action' (intune-mam-managedapppolicy-targetapps), 204 No Content"},
    ],
}

INTERFACE = re.compile(r"^export interface (\w+)(?: extends (\w+))? \{(\})?$")
PROPERTY = re.compile(r"^    (\"?[@\w.]+\"?)\??: (.+);$")
ENUM_START = re.compile(r"^export type (\w+) =(.*)$")


def sources_dir():
    default = os.path.join(os.path.expanduser("~"), ".cache", "restore-operator", "graph-model")
    return os.environ.get("GRAPH_MODEL_SOURCES", default)


def camel(name):
    return name[:1].lower() + name[1:]


def clean_type(text):
    """(element type, is collection, is nullable) of a TypeScript property type."""
    text = text.strip()
    m = re.fullmatch(r"NullableOption<(.+)>", text)
    if m:
        text = m.group(1)
    collection = text.endswith("[]")
    base = text[:-2] if collection else text
    return base, collection, m is not None


def parse_types(tgz_path):
    with tarfile.open(tgz_path, "r:gz") as tar:
        member = tar.getmember("package/microsoft-graph.d.ts")
        text = tar.extractfile(member).read().decode("utf-8")
    interfaces, enums = {}, {}
    current = None
    enum_name, enum_text = None, ""
    for line in text.splitlines():
        if enum_name is not None:
            enum_text += line
            if line.rstrip().endswith(";"):
                enums[enum_name] = re.findall(r'"([^"]+)"', enum_text)
                enum_name = None
            continue
        m = ENUM_START.match(line)
        if m:
            enum_name, enum_text = m.group(1), m.group(2)
            if enum_text.rstrip().endswith(";"):
                enums[enum_name] = re.findall(r'"([^"]+)"', enum_text)
                enum_name = None
            continue
        m = INTERFACE.match(line)
        if m:
            current = {"base": m.group(2), "props": {}}
            interfaces[m.group(1)] = current
            if m.group(3):  # `{}`: no own properties
                current = None
            continue
        if line == "}":
            current = None
            continue
        if current is not None:
            m = PROPERTY.match(line)
            if m:
                current["props"][m.group(1).strip('"')] = clean_type(m.group(2))
    return interfaces, enums


def is_entity(name, interfaces):
    while name in interfaces:
        if name == "Entity":
            return True
        name = interfaces[name]["base"]
    return False


def derived_map(interfaces):
    children = {}
    for name, iface in interfaces.items():
        if iface["base"]:
            children.setdefault(iface["base"], []).append(name)
    return children


def all_derived(name, children):
    out, stack = [], list(children.get(name, []))
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(children.get(child, []))
    return sorted(out)


def catalogue():
    """(collection, [sub-resource names]) for each catalogue type, read from catalog.rs."""
    text = open(CATALOG, encoding="utf-8").read()
    entries = []
    for block in re.split(r"\n    ItemType \{", text)[1:]:
        collection = re.search(r'collection: "([^"]+)"', block).group(1)
        subs = re.findall(r'SubResource \{ name: "(\w+)"', block)
        entries.append((collection, subs))
    return entries


# The type of each root singleton a catalogue collection starts from (Graph's `identity` is an
# `identityContainer`); the others are named after the root.
ROOT_TYPES = {"identity": "IdentityContainer"}

# Types the simulator needs beyond the catalogue collections' closure: the named locations
# Conditional Access conditions reference (served by the simulator, not restored); the ADMX
# definitions and presentations Administrative Templates' definition values reference, and the
# presentation values (every published subtype) a definition value carries; the Apple
# enrollment-program tokens (`depOnboardingSetting`) enrollment profiles live under (read, never written).
EXTRA_TYPES = [
    "NamedLocation",
    "GroupPolicyDefinition",
    "GroupPolicyPresentation",
    "GroupPolicyPresentationValue",
    "DepOnboardingSetting",
]

# A catalogue collection may live under one item of another collection, `{id}` marking the parent's
# id: Apple automated device enrollment profiles are under their enrollment-program token
# (Microsoft Graph docs: 'Create depIOSEnrollmentProfile', POST
# /deviceManagement/depOnboardingSettings/{depOnboardingSettingId}/enrollmentProfiles).
PARENT_ID = "{id}"


def collection_element(collection, interfaces):
    """The element type of a collection path such as deviceManagement/x or identity/conditionalAccess/policies."""
    segments = [s for s in collection.split("/") if s != PARENT_ID]
    current = ROOT_TYPES.get(segments[0], segments[0][:1].upper() + segments[0][1:])
    for segment in segments[1:]:
        prop = interfaces.get(current, {"props": {}})["props"].get(segment)
        if prop is None:
            raise SystemExit(f"collection {collection} is not in the published model")
        current = prop[0]
    return current


def nested_sdk_actions(whl_path, nested):
    """Item-bound actions of a nested collection (`root/parents/{id}/children`) in the SDK's builders."""
    root, parents, _, children = nested.split("/")
    snake = lambda name: re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
    prefix = f"msgraph_beta/generated/{snake(root)}/{snake(parents)}/item/{snake(children)}/item/"
    wanted = re.compile("^" + re.escape(prefix) + r"(\w+)/\1_request_builder\.py$")
    found = []
    with zipfile.ZipFile(whl_path) as whl:
        for name in sorted(whl.namelist()):
            m = wanted.match(name)
            if not m:
                continue
            source = whl.read(name).decode("utf-8")
            template = re.search(r'"\{\+baseurl\}/[^"]+/(\w+)"', source)
            if not template or "async def post(" not in source or "async def get(" in source:
                continue
            post = re.search(r"async def post\([^)]*\)[^-]*-> ([^:]+):", source)
            returns = post.group(1).strip() if post else "None"
            returns = None if returns == "None" else re.sub(r"Optional\[(.+)\]", r"\1", returns)
            body_file = name.replace("_request_builder.py", "_post_request_body.py")
            parameters = []
            if body_file in whl.namelist():
                parameters = sorted(set(re.findall(r'"(\w+)": lambda n', whl.read(body_file).decode("utf-8"))))
            found.append({"name": template.group(1), "returns": returns, "parameters": parameters})
    return sorted(found, key=lambda a: a["name"])


def sdk_actions(whl_path):
    """{collection: [{"name", "returns"}]} for item-bound actions in the SDK's request builders."""
    actions = {}
    with zipfile.ZipFile(whl_path) as whl:
        names = [n for n in whl.namelist() if n.endswith("_request_builder.py")]
        wanted = re.compile(r"^msgraph_beta/generated/(device_management|device_app_management)/(\w+)/item/(\w+)/\3_request_builder\.py$")
        for name in names:
            m = wanted.match(name)
            if not m:
                continue
            source = whl.read(name).decode("utf-8")
            template = re.search(r'"\{\+baseurl\}/(\w+)/(\w+)/\{[^}]+\}/(\w+)"', source)
            if not template or "async def post(" not in source:
                continue
            collection = f"{template.group(1)}/{template.group(2)}"
            post = re.search(r"async def post\([^)]*\)[^-]*-> ([^:]+):", source)
            returns = post.group(1).strip() if post else "None"
            returns = None if returns == "None" else re.sub(r"Optional\[(.+)\]", r"\1", returns)
            # A POST to a navigation (creating a child) is not an action: its builder has a get too.
            if "async def get(" in source:
                continue
            body_file = name.replace("_request_builder.py", "_post_request_body.py")
            parameters = []
            if body_file in whl.namelist():
                parameters = sorted(set(re.findall(r'"(\w+)": lambda n', whl.read(body_file).decode("utf-8"))))
            actions.setdefault(collection, []).append({"name": template.group(3), "returns": returns, "parameters": parameters})
    for items in actions.values():
        items.sort(key=lambda a: a["name"])
    return actions


def build(types_path, sdk_path):
    interfaces, enums = parse_types(types_path)
    children = derived_map(interfaces)
    actions = sdk_actions(sdk_path)
    needed, queue = set(), []
    enum_needed = set()

    def need(name):
        if name in interfaces and name not in needed:
            needed.add(name)
            queue.append(name)

    collections = {}
    for collection, subs in catalogue():
        element = collection_element(collection, interfaces)
        need(element)
        for d in all_derived(element, children):
            need(d)
        bound = nested_sdk_actions(sdk_path, collection) if PARENT_ID in collection else actions.get(collection, [])
        found = {a["name"]: a for a in bound}
        for extra in DOCUMENTED_ACTIONS.get(collection, []):
            found.setdefault(extra["name"], extra)
        collections[collection] = {
            "type": camel(element),
            "derivedTypes": [camel(d) for d in all_derived(element, children)],
            "subResources": subs,
            "actions": [found[k] for k in sorted(found)],
        }

    for extra in EXTRA_TYPES:
        need(extra)
        for d in all_derived(extra, children):
            need(d)

    # Close over property types: complex types (with their derived types) and the element types of
    # the navigations the catalogue captures (assignments and sub-resources).
    # Compliance rules carry their action configurations inline (a contained navigation).
    captured_navs = {"assignments", "scheduledActionConfigurations"} | {s for _, subs in catalogue() for s in subs}
    while queue:
        name = queue.pop()
        chain = name
        while chain:
            need(chain)
            chain = interfaces[chain]["base"] if chain in interfaces else None
        for prop, (ptype, _, _) in interfaces[name]["props"].items():
            if ptype in enums:
                enum_needed.add(ptype)
            if ptype not in interfaces:
                continue
            if is_entity(ptype, interfaces) and prop not in captured_navs:
                continue
            need(ptype)
            for d in all_derived(ptype, children):
                need(d)

    types = {}
    for name in sorted(needed):
        iface = interfaces[name]
        props, navs = {}, {}
        for prop, (ptype, coll, nullable) in sorted(iface["props"].items()):
            # Types read `string`, `myType`, `Collection(myType)`; a trailing `?` marks nullable.
            rendered = camel(ptype) if ptype in interfaces or ptype in enums else ptype
            rendered = f"Collection({rendered})" if coll else rendered
            rendered += "?" if nullable else ""
            (navs if is_entity(ptype, interfaces) else props)[prop] = rendered
        entry = {"base": camel(iface["base"]) if iface["base"] else None, "entity": is_entity(name, interfaces)}
        if props:
            entry["properties"] = props
        if navs:
            entry["navigations"] = navs
        derived = [camel(d) for d in all_derived(name, children)]
        if derived:
            entry["derivedTypes"] = derived
        types[camel(name)] = entry

    other = {}
    for root in ("DeviceManagement", "DeviceAppManagement"):
        for prop, (ptype, coll, _) in sorted(interfaces[root]["props"].items()):
            path = f"{camel(root)}/{prop}"
            if coll and is_entity(ptype, interfaces) and path not in collections:
                other[path] = camel(ptype)

    return {
        "comment": "Generated by scripts/gen-graph-model.py from Microsoft's published Graph beta types; do not edit.",
        "sources": {"types": TYPES_PACKAGE, "sdk": SDK_WHEEL},
        "collections": collections,
        "readOnlyCollections": other,
        "types": types,
        "enums": {camel(e): enums[e] for e in sorted(enum_needed)},
    }


def props_with_inheritance(name, interfaces):
    """Own and inherited (property, (type, collection, nullable)) of an interface."""
    out = {}
    while name in interfaces:
        for prop, decl in interfaces[name]["props"].items():
            out.setdefault(prop, decl)
        name = interfaces[name]["base"]
    return out


def rust_catalog_model(types_path):
    """Rust source: per catalogue collection its derived types; per derived type the write-only
    secret properties, the certificate-profile navigations, and whether it issues certificates."""
    interfaces, _ = parse_types(types_path)
    children = derived_map(interfaces)
    lines = [
        "//! Generated by scripts/gen-graph-model.py from Microsoft's published Graph beta types; do not edit.",
        "//! Per catalogue collection its derived `@odata.type`s; per type the secrets and certificate links a backup cannot carry.",
        "",
    ]
    secrets, links, issuing = [], [], []
    seen = set()
    for collection, _ in catalogue():
        element = collection_element(collection, interfaces)
        derived = all_derived(element, children)
        const = re.sub(r"(?<!^)(?=[A-Z])", "_", collection.replace("/" + PARENT_ID, "").replace("/", "_")).upper().replace("__", "_")
        lines.append(f"/// Every type derived from `{camel(element)}`, the element type of `{collection}`.")
        if derived:
            lines.append(f"pub const {const}: &[&str] = &[")
            lines.extend(f'    "{camel(d)}",' for d in derived)
            lines.append("];")
        else:
            lines.append(f"pub const {const}: &[&str] = &[];")
        for name in [element] + derived:
            if name in seen:
                continue
            seen.add(name)
            props = props_with_inheritance(name, interfaces)
            secret = sorted(p for p, (t, _, _) in props.items() if SECRET_PROPERTY.match(p) and t == "string")
            link = sorted(
                p for p, (t, _, _) in props.items()
                if t in interfaces and is_entity(t, interfaces) and CERTIFICATE_NAVIGATION_ELEMENT.search(t)
            )
            if secret:
                secrets.append((camel(name), secret))
            if link:
                links.append((camel(name), link))
            if "managedDeviceCertificateStates" in props and not name.endswith("Base"):
                issuing.append(camel(name))

    def table(doc, const, rows):
        lines.append("")
        lines.append(doc)
        lines.append(f"pub const {const}: &[(&str, &[&str])] = &[")
        for name, values in sorted(rows):
            rendered = ", ".join(f'"{v}"' for v in values)
            lines.append(f'    ("{name}", &[{rendered}]),')
        lines.append("];")

    table("/// Write-only secret properties (Graph reads them back as `null`), by `@odata.type`.", "WRITE_ONLY_SECRETS", secrets)
    table("/// Navigations to certificate profiles, which a backup does not carry, by `@odata.type`.", "CERTIFICATE_LINKS", links)
    lines.append("")
    lines.append("/// Types that issue certificates from a certification authority or an imported PFX (SCEP, PKCS, PFX).")
    lines.append("pub const CERTIFICATE_ISSUING: &[&str] = &[")
    lines.extend(f'    "{n}",' for n in sorted(issuing))
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default=os.path.join(sources_dir(), TYPES_PACKAGE))
    parser.add_argument("--sdk", default=os.path.join(sources_dir(), SDK_WHEEL))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", default=None)
    group.add_argument("--check", default=None)
    parser.add_argument("--rust-out", default=DEFAULT_RUST_OUT, help="the catalogue's Rust constants (checked with --check)")
    args = parser.parse_args()
    for path in (args.types, args.sdk):
        if not os.path.exists(path):
            print(f"missing source {path}: run scripts/install-test-deps.sh", file=sys.stderr)
            return 2
    text = json.dumps(build(args.types, args.sdk), indent=1, sort_keys=True) + "\n"
    rust = rust_catalog_model(args.types)
    if args.check:
        for path, wanted in ((args.check, text), (args.rust_out, rust)):
            current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
            if current != wanted:
                print(f"{path} drifted from the generator's output: run scripts/gen-graph-model.py", file=sys.stderr)
                return 1
        return 0
    with open(args.out or DEFAULT_OUT, "w", encoding="utf-8") as out:
        out.write(text)
    with open(args.rust_out, "w", encoding="utf-8") as out:
        out.write(rust)
    return 0


if __name__ == "__main__":
    sys.exit(main())
