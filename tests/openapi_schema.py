"""Validate JSON against the schemas of OpenAI's own spec (3.1-nullable, copied from shared/).

The whole spec document sits in a `referencing` Registry, so the spec's own
`$ref: '#/components/schemas/...'` resolve inside it.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_NAME = "assistants-runs.openapi.3.1-nullable.yaml"
SPEC = Path(__file__).resolve().parent / "openapi" / SPEC_NAME  # a copy of shared/'s
SHARED_SPEC = Path(__file__).resolve().parents[2] / "shared" / "openapi" / SPEC_NAME
URI = "urn:openai-assistants-spec"


@cache
def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text(encoding="utf-8")))


@cache
def validator(schema_name: str, *, nullable: tuple[str, ...] = ()) -> Draft202012Validator:
    """A validator for `#/components/schemas/<schema_name>`; `nullable` also lets those
    properties of it be null (for gaps in the spec)."""
    document = spec()
    if nullable:
        document = copy.deepcopy(document)
        props = document["components"]["schemas"][schema_name]["properties"]
        for name in nullable:
            props[name] = {"anyOf": [props[name], {"type": "null"}]}
    registry = Registry().with_resource(URI, DRAFT202012.create_resource(document))
    ref = {"$ref": f"{URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(ref, registry=registry)


def errors(instance: Any, schema_name: str, *, nullable: tuple[str, ...] = ()) -> list[str]:
    """Every way `instance` breaks the schema, as `path: message`; [] when it validates."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(schema_name, nullable=nullable).iter_errors(instance)
    ]
