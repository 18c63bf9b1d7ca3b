"""The R4 JSON schema checker, on the official R4 examples and on broken copies of them."""

import copy
import json

import pytest
from jsonschema import Draft6Validator
from jsonschema.validators import validator_for

from tests.support import r4schema

NAMED_EXAMPLES = [
    "Observation-heart-rate.json",
    "Observation-blood-pressure.json",
    "Observation-example.json",  # the body weight example
]


@pytest.fixture()
def fresh_cache():
    """Forget the loaded schema before and after (the test points FHIR_IOMT_R4_DIR elsewhere)."""
    r4schema.load_schema.cache_clear()
    r4schema._validator.cache_clear()
    yield
    r4schema.load_schema.cache_clear()
    r4schema._validator.cache_clear()


def test_the_schema_is_the_r4_json_schema():
    schema = r4schema.load_schema()
    assert validator_for(schema) is Draft6Validator  # it declares draft-06
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    types = r4schema.resource_types()
    assert {"Observation", "Device", "Patient", "Bundle", "OperationOutcome"} <= types
    # Only R4 has these (R4B and R5 dropped them); R5's new resources are absent.
    assert {"EffectEvidenceSynthesis", "MedicinalProduct", "SubstanceNucleicAcid"} <= types
    assert not {"SubscriptionTopic", "Citation", "ActorDefinition"} & types
    observation = schema["definitions"]["Observation"]
    assert observation["properties"]["status"]["enum"] == [
        "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
        "unknown",
    ]
    elements = set(observation["properties"])
    assert {"valueQuantity", "valueSampledData", "effectivePeriod", "component"} <= elements
    versions = schema["definitions"]["CapabilityStatement"]["properties"]["fhirVersion"]["enum"]
    assert versions[-1] == "4.0.0"  # the build published with R4 (4.0.1 added only its own version code)


@pytest.mark.parametrize("name", NAMED_EXAMPLES)
def test_the_official_vital_signs_examples_are_valid(name):
    example = r4schema.load_example(name)
    assert r4schema.validate(example) == []
    r4schema.assert_valid(example)


def test_every_official_observation_example_is_valid():
    folder = r4schema.examples_dir()
    names = sorted(path.name for path in folder.glob("Observation-*.json"))
    assert len(names) > 50
    invalid = {}
    for name in names:
        problems = r4schema.validate(json.loads((folder / name).read_text(encoding="utf-8")))
        if problems:
            invalid[name] = problems
    assert invalid == {}


def _heart_rate():
    return copy.deepcopy(r4schema.load_example("Observation-heart-rate.json"))


def _set(path, value):
    def mutate(resource):
        node = resource
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _drop(key):
    return lambda resource: resource.pop(key)


BROKEN = [
    ("status not in the value set", _set(["status"], "done"), "Observation.status: 'done' is not one of"),
    ("value as a string", _set(["valueQuantity", "value"], "44"),
     "Observation.valueQuantity.value: '44' is not of type 'number'"),
    ("unknown element", _set(["colour"], "red"), "Observation: unknown element(s) ('colour' was unexpected)"),
    ("no code", _drop("code"), "Observation: 'code' is a required property"),
    ("impossible date", _set(["effectiveDateTime"], "1999-13-02"),
     "Observation.effectiveDateTime: '1999-13-02' does not match"),
    ("reference as a number", _set(["subject", "reference"], 7),
     "Observation.subject.reference: 7 is not of type 'string'"),
    ("a FHIR decimal cannot be NaN text", _set(["valueQuantity", "value"], "NaN"),
     "Observation.valueQuantity.value: 'NaN' is not of type 'number'"),
    ("category not an array", _set(["category"], {"text": "Vital Signs"}), "Observation.category: "),
    ("component without code", _set(["component"], [{"valueQuantity": {"value": 1}}]),
     "Observation.component[0]: 'code' is a required property"),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_a_broken_copy_fails_with_a_readable_message(mutate, expected):
    resource = _heart_rate()
    mutate(resource)
    problems = r4schema.validate(resource)
    assert any(problem.startswith(expected) for problem in problems), problems
    with pytest.raises(AssertionError, match="is not valid R4 JSON"):
        r4schema.assert_valid(resource)


def test_not_a_resource():
    problems = r4schema.validate({"resourceType": "Vitals"})
    assert problems == ["resourceType: 'Vitals' is not an R4 resource type"]
    assert r4schema.validate([]) == ["a resource must be a JSON object, not list"]


def test_a_missing_schema_fails_and_says_how_to_get_it(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("FHIR_IOMT_R4_DIR", str(tmp_path))
    with pytest.raises(r4schema.R4DefinitionsMissing, match="run `make r4-schema`"):
        r4schema.validate(_minimal_observation())
    with pytest.raises(AssertionError, match="make r4-schema"):
        r4schema.examples_dir()


def test_a_wrong_schema_file_fails(tmp_path, monkeypatch, fresh_cache):
    (tmp_path / r4schema.SCHEMA_FILE).write_text(json.dumps({"id": "http://example.org/other"}))
    monkeypatch.setenv("FHIR_IOMT_R4_DIR", str(tmp_path))
    with pytest.raises(r4schema.R4DefinitionsMissing, match="is not the FHIR R4 JSON schema"):
        r4schema.load_schema()


def _minimal_observation():
    return {"resourceType": "Observation", "status": "final", "code": {"text": "Heart rate"}}
