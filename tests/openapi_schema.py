"""Validate JSON against the schemas of OpenAI's own spec (the 3.1-nullable copy in shared/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "openapi"
    / "assistants-runs.openapi.3.1-nullable.yaml"
)
URI = "urn:openai-assistants-spec"


@cache
def _spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text(encoding="utf-8")))


def validator(schema_name: str, *, relax: tuple[str, ...] = ()) -> Draft202012Validator:
    """A validator for `#/components/schemas/<schema_name>`; `relax` drops required fields."""
    spec = _spec()
    registry = Registry().with_resource(URI, Resource(contents=spec, specification=DRAFT202012))
    schema: dict[str, Any] = {"$ref": f"{URI}#/components/schemas/{schema_name}"}
    if relax:
        base = dict(spec["components"]["schemas"][schema_name])
        base["required"] = [r for r in base.get("required", []) if r not in relax]
        props = dict(base.get("properties", {}))
        for name in relax:
            props.pop(name, None)
        base["properties"] = props
        schema = {"$ref": f"{URI}#/relaxed", "$defs": {}}
        spec_copy = dict(spec)
        spec_copy["relaxed"] = base
        registry = Registry().with_resource(
            URI, Resource(contents=spec_copy, specification=DRAFT202012)
        )
    return Draft202012Validator(schema, registry=registry)


def errors(instance: Any, schema_name: str, *, relax: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(schema_name, relax=relax).iter_errors(instance)
    ]
