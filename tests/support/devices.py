"""The device fixtures (fixtures/devices/<kind>/) and the mapping pipeline run over them."""

import json
from functools import cache
from pathlib import Path

from fhir_iomt.domain.measurement import NOT_JSON, MappingError
from fhir_iomt.mapping.device_templates import load_device_templates
from fhir_iomt.mapping.fhir_templates import load_fhir_templates
from fhir_iomt.mapping.group import group_measurements
from fhir_iomt.mapping.to_fhir import build_observation

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "devices"
BAD = FIXTURES / "bad"
DEVICE_TEMPLATE = "device-template.json"
FHIR_TEMPLATE = "fhir-template.json"


def kinds():
    """The device kinds: folders holding both templates."""
    return sorted(p.name for p in FIXTURES.iterdir() if (p / DEVICE_TEMPLATE).is_file())


def payloads(kind):
    """The sample messages of a kind (every JSON file but the templates), by name."""
    folder = FIXTURES / kind
    return sorted(p.name for p in folder.glob("*.json") if p.name not in (DEVICE_TEMPLATE, FHIR_TEMPLATE))


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def template_documents(kind):
    """(device mapping document, FHIR mapping document) of a kind."""
    return read_json(FIXTURES / kind / DEVICE_TEMPLATE), read_json(FIXTURES / kind / FHIR_TEMPLATE)


@cache
def templates(kind):
    """(DeviceTemplates, FhirTemplates) of a kind, loaded as the service loads them."""
    device_doc, fhir_doc = template_documents(kind)
    device = load_device_templates(device_doc)
    return device, load_fhir_templates(fhir_doc, device)


def read_message(path):
    """A message file parsed as the ingest API parses a body; MappingError(not-json) when it is not JSON."""
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError as error:
        raise MappingError(NOT_JSON, f"not valid JSON: {error}") from error


def message(kind, name):
    """One sample message of a kind."""
    return read_message(FIXTURES / kind / name)


def observations(kind, msg, issued, patient_ref="Patient/p-test", device_ref="Device/d-test"):
    """(measurements, [(group, Observation)]) of a message: normalize -> group -> build_observation."""
    device, fhir = templates(kind)
    measurements = device.normalize(msg)
    groups, unmapped = group_measurements(measurements, fhir)
    if unmapped:
        raise AssertionError(f"{kind}: measurements left unmapped: {unmapped}")
    built = []
    for group in groups:
        template = fhir.for_type(group.type_name)
        built.append((group, build_observation(group, template, patient_ref, device_ref, issued)))
    return measurements, built


def bad_cases():
    """The entries of fixtures/devices/bad/cases.json."""
    return read_json(BAD / "cases.json")
