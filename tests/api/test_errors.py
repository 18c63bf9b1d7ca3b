"""Rejected requests: an OperationOutcome with the right status, and nothing stored changes."""

import copy

import pytest

from tests.support.oauth import system_client

from .helpers import (
    INVALID_CONTENT_CODES,
    app_with,
    create,
    expressions,
    issues,
    observation,
    patient,
    put,
    read,
    stored_state,
)

TYPES = ("Observation", "Patient", "Device")


@pytest.fixture()
def seeded(client):
    """One Observation and one Patient already stored, and the stored state before the test acts."""
    obs = create(client, observation("p1", when="2026-11-20T10:00:00Z", value=70))
    pat = create(client, patient("Holt", ["Eve"], mrn="m1"))
    return {"observation": obs, "patient": pat, "before": stored_state(client, *TYPES)}


def _unchanged(client, seeded):
    assert stored_state(client, *TYPES) == seeded["before"]
    assert read(client, "Observation", seeded["observation"]["id"]) == seeded["observation"]
    assert read(client, "Patient", seeded["patient"]["id"]) == seeded["patient"]


# Bodies that are not a FHIR resource ----------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"resourceType": "Observation", "status": ',
        b"not json",
        b"",
        b"[1, 2]",
        b'[{"resourceType": "Patient"}]',
        b'"Observation"',
        b"42",
    ],
    ids=["truncated", "text", "empty", "array", "array-of-resource", "string", "number"],
)
def test_body_that_is_not_a_json_object_is_400(client, seeded, raw):
    # R4 http.html#create: a body that cannot be parsed as a resource is 400 Bad Request.
    response = client.post("/fhir/Observation", data=raw, content_type="application/fhir+json")
    issues(response, 400)
    _unchanged(client, seeded)


def test_malformed_json_on_update_is_400(client, seeded):
    obs_id = seeded["observation"]["id"]
    response = client.put(
        f"/fhir/Observation/{obs_id}", data=b'{"resourceType": "Obs', content_type="application/fhir+json"
    )
    issues(response, 400)
    _unchanged(client, seeded)


# Invalid resources ----------


def _without(resource, key):
    return {k: v for k, v in resource.items() if k != key}


INVALID_OBSERVATIONS = [
    (
        "quantity-value-not-a-number",
        lambda o: dict(o, valueQuantity={"value": "abc", "unit": "/min"}),
        "Observation.valueQuantity.value",
    ),
    ("status-outside-required-binding", lambda o: dict(o, status="bogus"), "Observation.status"),
    ("missing-code", lambda o: _without(o, "code"), "Observation.code"),
    ("missing-status", lambda o: _without(o, "status"), "Observation.status"),
    (
        "coding-system-not-a-string",
        lambda o: dict(o, category=[{"coding": [{"system": 5, "code": "vital-signs"}]}]),
        "Observation.category[0].coding[0].system",
    ),
    (
        "impossible-date",
        lambda o: dict(o, effectiveDateTime="2026-02-30T10:00:00Z"),
        "Observation.effectiveDateTime",
    ),
    ("unknown-element", lambda o: dict(o, heartRate=72), "Observation.heartRate"),
    (
        "datetime-without-zone",
        lambda o: dict(o, effectiveDateTime="2026-11-20T10:00:00"),
        "Observation.effectiveDateTime",
    ),
    # R4 json.html: a decimal is a JSON number, never a string ("72" is not valid FHIR JSON).
    (
        "quantity-value-as-string",
        lambda o: dict(o, valueQuantity={"value": "72", "unit": "/min"}),
        "Observation.valueQuantity.value",
    ),
    # R4 json.html: arrays SHALL NOT be empty and properties SHALL NOT be null (ele-1 in XML).
    ("empty-array", lambda o: dict(o, code={"coding": []}), "Observation.code.coding"),
    ("null-element", lambda o: dict(o, issued=None), "Observation.issued"),
]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [(m, p) for _, m, p in INVALID_OBSERVATIONS],
    ids=[name for name, _, _ in INVALID_OBSERVATIONS],
)
def test_invalid_observation_is_400_with_the_element_path(client, seeded, mutate, path):
    # R4 http.html#create: a resource failing FHIR validation is 400 with an OperationOutcome;
    # operationoutcome.html: issue.expression is the FHIRPath of the element at fault.
    body = mutate(observation("p1", when="2026-11-20T10:00:00Z"))
    found = issues(client.post("/fhir/Observation", json=body), 400)
    assert path in expressions(found)
    assert {i["code"] for i in found} <= INVALID_CONTENT_CODES
    _unchanged(client, seeded)


def test_invalid_update_is_400_and_keeps_the_current_version(client, seeded):
    stored = seeded["observation"]
    body = dict(copy.deepcopy(stored), status="bogus")
    found = issues(put(client, body), 400)
    assert "Observation.status" in expressions(found)
    _unchanged(client, seeded)


def test_every_problem_is_reported(client, seeded):
    body = dict(observation("p1"), status="bogus", valueQuantity={"value": "abc"})
    found = issues(client.post("/fhir/Observation", json=body), 400)
    assert {"Observation.status", "Observation.valueQuantity.value"} <= expressions(found)
    _unchanged(client, seeded)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"gender": "man"}, "Patient.gender"),
        ({"birthDate": "1980-01-01T10:00:00Z"}, "Patient.birthDate"),
        # R4 json.html: a boolean is a JSON true/false, never the string "true".
        ({"active": "true"}, "Patient.active"),
    ],
    ids=["gender-outside-required-binding", "birthdate-with-time", "boolean-as-string"],
)
def test_invalid_patient_is_400_with_the_element_path(client, seeded, changes, path):
    found = issues(client.post("/fhir/Patient", json=dict(patient("Holt"), **changes)), 400)
    assert path in expressions(found)
    _unchanged(client, seeded)


def test_put_of_another_resource_type_is_400(client, seeded):
    stored = seeded["patient"]
    body = dict(observation("p1", when="2026-11-20T10:00:00Z"), id=stored["id"])
    issues(client.put(f"/fhir/Patient/{stored['id']}", json=body), 400)
    _unchanged(client, seeded)


def test_errors_keep_their_operation_outcome_when_minimal_is_preferred(client, seeded):
    # R4 http.html#prefer: the return preference applies to successes only; a failure SHOULD always
    # carry an OperationOutcome.
    body = dict(observation("p1"), status="bogus")
    found = issues(client.post("/fhir/Observation", json=body, headers={"Prefer": "return=minimal"}), 400)
    assert "Observation.status" in expressions(found)
    _unchanged(client, seeded)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/fhir/Observation", patient("Holt")),
        ("/fhir/Patient", observation("p1")),
        ("/fhir/Observation", {"status": "final"}),
    ],
    ids=["patient-to-observation", "observation-to-patient", "no-resource-type"],
)
def test_resource_type_of_the_body_must_match_the_url(client, seeded, path, body):
    issues(client.post(path, json=body), 400)
    _unchanged(client, seeded)


def test_put_with_an_id_that_differs_from_the_url_is_400(client, seeded):
    # R4 http.html#update: an id element that is missing or differs from the URL id is 400.
    stored = seeded["patient"]
    issues(client.put(f"/fhir/Patient/{stored['id']}", json=dict(stored, id="someone-else")), 400)
    issues(client.put(f"/fhir/Patient/{stored['id']}", json=_without(stored, "id")), 400)
    _unchanged(client, seeded)
    assert client.get("/fhir/Patient/someone-else").status_code == 404


@pytest.mark.parametrize("bad_id", ["a" * 65, "has_underscore", "spaces%20here"])
def test_put_with_an_invalid_id_is_400(client, seeded, bad_id):
    # R4 datatypes.html#id: [A-Za-z0-9\-\.]{1,64}.
    issues(client.put(f"/fhir/Patient/{bad_id}", json=dict(patient("Holt"), id=bad_id)), 400)
    _unchanged(client, seeded)


# Unknown types, ids and routes ----------


ENCOUNTER = {
    "resourceType": "Encounter",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/fhir/Encounter", None),
        ("get", "/fhir/Encounter/e1", None),
        ("get", "/fhir/Encounter/e1/_history/1", None),
        ("get", "/fhir/Encounter/_history", None),
        ("get", "/fhir/Encounter/e1/_history", None),
        ("post", "/fhir/Encounter", ENCOUNTER),
        ("put", "/fhir/Encounter/e1", dict(ENCOUNTER, id="e1")),
        ("delete", "/fhir/Encounter/e1", None),
    ],
)
def test_unknown_resource_type_is_404(client, seeded, method, path, body):
    # R4 http.html#create/#update: 404 Not Found - resource type not supported.
    kwargs = {"json": body} if body is not None else {}
    issues(getattr(client, method)(path, **kwargs), 404)
    _unchanged(client, seeded)


def test_unknown_id_is_404(client, seeded):
    issues(client.get("/fhir/Observation/unknown-id"), 404)
    issues(client.get("/fhir/Observation/unknown-id/_history/1"), 404)


@pytest.mark.parametrize(
    "path", ["/nothing-here", "/fhir", "/fhir/Observation/x/_history/1/more", "/fhir/Observation/x/y/z/w"]
)
def test_unknown_route_is_404_operation_outcome(client, path):
    issues(client.get(path), 404)


# Methods, media types, sizes ----------


@pytest.mark.parametrize("method", ["patch", "post"])
def test_patch_or_post_on_an_instance_is_405(client, seeded, method):
    stored = seeded["observation"]
    changed = dict(stored, status="amended")
    response = getattr(client, method)(f"/fhir/Observation/{stored['id']}", json=changed)
    issues(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed and method.upper() not in allowed
    _unchanged(client, seeded)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/fhir+xml", "application/x-www-form-urlencoded"],
)
def test_create_with_a_non_json_content_type_is_415(client, seeded, content_type):
    # R4 http.html#mime-type: this server reads FHIR JSON only; another body format is 415.
    import orjson

    raw = orjson.dumps(observation("p1", when="2026-11-20T10:00:00Z"))
    issues(client.post("/fhir/Observation", data=raw, content_type=content_type), 415)
    _unchanged(client, seeded)


def test_post_search_with_a_json_body_is_415(client, seeded):
    # R4 http.html#search: POST _search takes application/x-www-form-urlencoded.
    response = client.post("/fhir/Observation/_search", json={"patient": "p1"})
    issues(response, 415)


def test_update_with_a_non_json_content_type_is_415(client, seeded):
    import orjson

    stored = seeded["patient"]
    raw = orjson.dumps(dict(stored, gender="male"))
    issues(client.put(f"/fhir/Patient/{stored['id']}", data=raw, content_type="text/plain"), 415)
    _unchanged(client, seeded)


def test_body_over_max_content_length_is_413(mongo_server, backend_key):
    with app_with(mongo_server, MAX_CONTENT_LENGTH=1024) as small:
        client = system_client(small, backend_key)
        small_body = observation("p1", when="2026-11-20T10:00:00Z")
        kept = create(client, small_body)
        before = stored_state(client, "Observation")

        big = dict(small_body, note=[{"text": "x" * 4096}])
        found = issues(client.post("/fhir/Observation", json=big), 413)
        assert found[0]["code"] in ("too-long", "too-costly", "processing")
        issues(
            client.put(f"/fhir/Observation/{kept['id']}", json=dict(kept, note=[{"text": "y" * 4096}])), 413
        )

        assert stored_state(client, "Observation") == before
        assert read(client, "Observation", kept["id"]) == kept


@pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "text/xml", "ttl"])
def test_format_other_than_json_is_406(client, seeded, fmt):
    # R4 http.html#mime-type: _format=xml names the XML format, which this server cannot produce.
    issues(client.get("/fhir/Observation", query_string={"_format": fmt}), 406)
    issues(client.get(f"/fhir/Patient/{seeded['patient']['id']}", query_string={"_format": fmt}), 406)


def test_write_with_an_unsupported_format_is_406_and_stores_nothing(client, seeded):
    response = client.post(
        "/fhir/Observation",
        query_string={"_format": "xml"},
        json=observation("p1", when="2026-11-21T10:00:00Z"),
    )
    issues(response, 406)
    _unchanged(client, seeded)


def test_accept_of_xml_only_is_406(client, seeded):
    # R4 http.html#mime-type: servers SHALL support server-driven content negotiation (RFC 7231
    # section 5.3.2 / 6.5.6): a client accepting only FHIR XML gets 406, as _format=xml does here,
    # not a JSON body it said it cannot read.
    response = client.get(
        f"/fhir/Patient/{seeded['patient']['id']}", headers={"Accept": "application/fhir+xml"}
    )
    issues(response, 406)
