"""Media types in and out, _format, _pretty, UTF-8, the CapabilityStatement and the health probes."""

import orjson
import pytest

from .helpers import FHIR_JSON, create, observation, patient, read, total_of


@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "application/fhir+json; charset=utf-8",
        "application/json; charset=UTF-8",
        "application/fhir+json; fhirVersion=4.0",
    ],
)
def test_json_media_types_are_accepted_on_input(client, content_type):
    # R4 http.html#mime-type: application/fhir+json is the FHIR JSON type; application/json is the
    # generic one a server SHOULD treat as JSON.
    raw = orjson.dumps(observation("p1", when="2026-11-20T10:00:00Z"))
    response = client.post("/fhir/Observation", data=raw, content_type=content_type)
    assert response.status_code == 201, response.get_data(as_text=True)
    stored = response.get_json()
    assert read(client, "Observation", stored["id"]) == stored
    assert total_of(client, "Observation") == 1


def test_update_accepts_application_json(client):
    stored = create(client, patient("Holt"))
    raw = orjson.dumps(dict(stored, gender="male"))
    response = client.put(f"/fhir/Patient/{stored['id']}", data=raw, content_type="application/json")
    assert response.status_code == 200
    assert read(client, "Patient", stored["id"])["gender"] == "male"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, FHIR_JSON),
        ("application/fhir+json", FHIR_JSON),
        ("application/json", "application/json"),
        ("*/*", FHIR_JSON),
        # R4 http.html#version-parameter: the FHIR version may be named as a MIME-type parameter.
        ("application/fhir+json; fhirVersion=4.0", FHIR_JSON),
        ("application/*", FHIR_JSON),
        ("application/json;q=0.9, application/fhir+json", FHIR_JSON),
        ("application/fhir+json;q=0.5, application/json", "application/json"),
        ("text/html;q=0.9, application/fhir+xml, application/json;q=0.8", "application/json"),
    ],
)
def test_response_type_follows_accept(client, accept, expected):
    stored = create(client, patient("Holt"))
    headers = {"Accept": accept} if accept else {}
    for path in (f"/fhir/Patient/{stored['id']}", "/fhir/Patient", "/fhir/metadata"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert response.mimetype == expected
        # R4 http.html#mime-type: responses SHALL state charset=utf-8.
        assert response.mimetype_params.get("charset", "").lower() == "utf-8"
        assert orjson.loads(response.get_data())["resourceType"] in (
            "Patient",
            "Bundle",
            "CapabilityStatement",
        )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("json", FHIR_JSON), ("application/fhir+json", FHIR_JSON), ("application/json", "application/json")],
)
def test_format_parameter_sets_the_response_type_and_overrides_accept(client, fmt, expected):
    # R4 http.html#mime-type: _format overrides the Accept header.
    stored = create(client, patient("Holt"))
    accept = "application/json" if expected == FHIR_JSON else FHIR_JSON
    response = client.get(
        f"/fhir/Patient/{stored['id']}", query_string={"_format": fmt}, headers={"Accept": accept}
    )
    assert response.status_code == 200
    assert response.mimetype == expected
    assert response.get_json()["id"] == stored["id"]


def test_format_parameter_on_create(client):
    response = client.post(
        "/fhir/Patient", json=patient("Holt"), query_string={"_format": "application/json"}
    )
    assert response.status_code == 201
    assert response.mimetype == "application/json"


def test_errors_are_fhir_json_whatever_was_accepted(client):
    response = client.get("/fhir/Patient/missing", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert response.mimetype in (FHIR_JSON, "application/json")


def test_pretty_indents_and_keeps_the_same_content(client):
    stored = create(client, patient("Holt", ["Eve"]))
    compact = client.get(f"/fhir/Patient/{stored['id']}")
    pretty = client.get(f"/fhir/Patient/{stored['id']}", query_string={"_pretty": "true"})
    assert b"\n" not in compact.get_data().strip()
    text = pretty.get_data(as_text=True)
    assert "\n" in text and "\n  " in text
    assert orjson.loads(pretty.get_data()) == orjson.loads(compact.get_data()) == stored
    not_pretty = client.get(f"/fhir/Patient/{stored['id']}", query_string={"_pretty": "false"})
    assert not_pretty.get_data() == compact.get_data()


def test_pretty_applies_to_search_bundles(client):
    create(client, patient("Holt"))
    bundle = client.get("/fhir/Patient", query_string={"_pretty": "true"})
    assert bundle.status_code == 200
    assert "\n  " in bundle.get_data(as_text=True)
    assert orjson.loads(bundle.get_data())["type"] == "searchset"


def test_non_ascii_text_round_trips_as_utf8(client):
    stored = create(client, patient("Müller-Łukasiewicz", ["Zoë", "李"]))
    response = client.get(f"/fhir/Patient/{stored['id']}")
    assert "Müller-Łukasiewicz".encode() in response.get_data()
    assert response.get_json()["name"][0]["given"] == ["Zoë", "李"]


def test_capability_statement(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.get_json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    served = {r["type"] for rest in statement["rest"] for r in rest["resource"]}
    assert {"Observation", "Patient", "Device"} <= served


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.get_json()["status"] in ("ok", "ready")


def test_database_down_gives_503(mongo_server):
    # Readiness fails and FHIR interactions answer 503 with an OperationOutcome, not a 500.
    from pymongo import MongoClient

    from fhir_iomt import create_app
    from fhir_iomt.store.embedded import free_port
    from fhir_iomt.store.mongo import MongoStore

    uri = f"mongodb://127.0.0.1:{free_port()}/"
    down = MongoStore(
        uri, "down", client=MongoClient(uri, serverSelectionTimeoutMS=200, connectTimeoutMS=200)
    )
    app = create_app({"MONGODB_URI": uri, "TESTING": True}, store=down)
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        # The token cannot be checked without the database: 503, not 401.
        response = client.get("/fhir/Patient/p1", headers={"Authorization": "Bearer some-token"})
        assert response.status_code == 503
        assert response.get_json()["resourceType"] == "OperationOutcome"
        assert "Retry-After" in response.headers
    finally:
        # The refusal's AuditEvent cannot be stored while the database is down: close says so.
        assert app.extensions["fhir_iomt"].audit.close(timeout=0.5) is False
        down.close()
