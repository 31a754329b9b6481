"""Each function as the stack deploys it: handler, memory, timeout and environment read from the template
the CDK app synthesizes (in process, as the infra tier does: the default configuration on x86_64, the
architecture this machine runs). The template is kept in .cache/emulator, keyed by what it is made from.

`environment` resolves the template's references the way CloudFormation would, to the local stand-ins
the tier runs: the bucket, ledger table and secret that moto holds, and the index endpoint."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.layers import ROOT, inputs_digest

CACHE = ROOT / ".cache" / "emulator"
CONTEXT = {"architecture": "x86_64"}  # the default deploy (managed domain, key:secret) on this machine
SOURCES = ("app.py", "cdk.json", "infra")
LAYER_FOLDERS = ("deps", "deps-bytecode", "model-text", "model-image")


@dataclass(frozen=True)
class Deployed:
    name: str  # the handler folder under functions/ (search, ingest, authorizer)
    handler: str
    memory_mb: int
    timeout_s: int
    variables: dict[str, Any]  # as in the template: strings, or CloudFormation intrinsics
    layers: tuple[str, ...]  # the layer folders (layers/build.py) it gets, in the template's order


def _digest(layers: Path) -> str:
    digest = hashlib.sha256(inputs_digest().encode() + json.dumps(CONTEXT).encode())
    digest.update((layers / "build.json").read_bytes())
    for name in SOURCES:
        path = ROOT / name
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def synthesized(layers: Path) -> dict[str, Any]:
    """The stack's template, synthesized from `layers` (cdk-nag included, as every synth is)."""
    path = CACHE / f"template-{_digest(layers)}.json"
    if not path.is_file():
        from tests.infra.conftest import synthesize

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(synthesize("emulator", {**CONTEXT, "layers_dir": str(layers)}).json))
    return json.loads(path.read_text())


def layer_folder(logical_id: str, folders: Iterable[str]) -> str:
    """The layer folder a LayerVersion was made from: infra/layers.py names its construct after it
    ("model-text" -> "ModelText"; CDK appends a hash to the logical id)."""
    for folder in folders:
        if re.fullmatch("Layers" + folder.title().replace("-", "") + "[0-9A-F]{8}", logical_id):
            return folder
    raise ValueError(f"{logical_id}: not one of the layers {sorted(folders)}")


def functions(template: dict[str, Any], folders: Iterable[str] = LAYER_FOLDERS) -> dict[str, Deployed]:
    """The project's functions, by handler folder (named by their Powertools service)."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        variables = (properties.get("Environment") or {}).get("Variables", {})
        service = variables.get("POWERTOOLS_SERVICE_NAME")
        if service:
            name = service.rsplit("-", 1)[-1]
            layers = tuple(layer_folder(ref["Ref"], folders) for ref in properties.get("Layers", []))
            found[name] = Deployed(
                name,
                properties["Handler"],
                properties["MemorySize"],
                properties["Timeout"],
                variables,
                layers,
            )
    return found


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def environment(deployed: Deployed, template: dict[str, Any], stand_ins: dict[str, str]) -> dict[str, str]:
    """The function's variables with every `Ref` / `Fn::GetAtt` resolved through `stand_ins` (logical id,
    or logical id + "." + attribute, -> local value) and every `Fn::Join` joined."""

    def resolve(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return stand_ins[value["Ref"]]
        if "Fn::GetAtt" in value:
            return stand_ins[".".join(value["Fn::GetAtt"])]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(resolve(part) for part in parts)
        raise ValueError(f"{deployed.name}: no stand-in for {value}")

    return {name: resolve(value) for name, value in deployed.variables.items()}
