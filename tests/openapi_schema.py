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
LONG_RUNNING_NAME = "long-running.openapi.3.1-nullable.yaml"
HERE = Path(__file__).resolve().parent / "openapi"  # copies of shared/'s
SHARED = Path(__file__).resolve().parents[2] / "shared" / "openapi"
SPEC, SHARED_SPEC = HERE / SPEC_NAME, SHARED / SPEC_NAME
URI = "urn:openai-spec"


@cache
def spec(name: str = SPEC_NAME) -> dict[str, Any]:
    return dict(yaml.safe_load((HERE / name).read_text(encoding="utf-8")))


@cache
def validator(
    schema_name: str, *, nullable: tuple[str, ...] = (), name: str = SPEC_NAME
) -> Draft202012Validator:
    """A validator for `#/components/schemas/<schema_name>` of spec `name`; `nullable` also
    lets those properties of it be null (for gaps in the spec)."""
    document = spec(name)
    if nullable:
        document = copy.deepcopy(document)
        props = document["components"]["schemas"][schema_name]["properties"]
        for prop in nullable:
            props[prop] = {"anyOf": [props[prop], {"type": "null"}]}
    registry = Registry().with_resource(URI, DRAFT202012.create_resource(document))
    ref = {"$ref": f"{URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(ref, registry=registry)


def errors(
    instance: Any, schema_name: str, *, nullable: tuple[str, ...] = (), name: str = SPEC_NAME
) -> list[str]:
    """Every way `instance` breaks the schema, as `path: message`; [] when it validates."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(schema_name, nullable=nullable, name=name).iter_errors(instance)
    ]


def long_running_errors(instance: Any, schema_name: str) -> list[str]:
    """`errors` against the long-running spec (responses, batches, jobs, file batches)."""
    return errors(instance, schema_name, name=LONG_RUNNING_NAME)
