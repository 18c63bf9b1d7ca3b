"""Bounds on what one request may ask: sizes, nesting, counts; each refused with a clear 400."""

import json

from .ingest_helpers import post, put_templates


def _patient_with_nested_extensions(depth):
    extension = {"url": "urn:x", "valueString": "leaf"}
    for _ in range(depth):
        extension = {"url": "urn:x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


def test_deeply_nested_resource_is_400_and_not_stored(client):
    response = client.post("/fhir/Patient", json=_patient_with_nested_extensions(200))
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0


def test_too_many_values_in_one_parameter_is_400(client):
    names = ",".join(f"x{i}" for i in range(51))
    response = client.post("/fhir/Patient/_search", data={"family": names})
    assert response.status_code == 400
    assert "at most 50" in response.get_json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient?family=" + ",".join(f"x{i}" for i in range(50))).status_code == 200


def test_too_many_parameters_is_400(client):
    query = "&".join("gender=female" for _ in range(31))
    assert client.get(f"/fhir/Patient?{query}").status_code == 400


def test_non_ascii_digits_in_count_are_400_everywhere(client):
    for path in ("/fhir/Patient?_count=%C2%B2", "/fhir/Patient/_history?_count=%C2%B2",
                 "/ingest/dead-letters?_count=%C2%B2"):
        response = client.get(path)
        assert response.status_code == 400, path
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_dead_letters_with_count_zero_is_an_empty_page(client):
    put_templates(client)
    post(client, b"not json")
    body = client.get("/ingest/dead-letters?_count=0").get_json()
    assert body["items"] == [] and "next" not in body


def test_ndjson_splits_on_newlines_only_not_on_unicode_line_separators(client):
    put_templates(client)
    message = {"deviceId": "HR-001", "patientId": "MRN-1", "endDate": "2026-11-23T10:00:00Z",
               "heartRate": 70, "note": "first\u2028second\u0085third"}
    text = json.dumps(message, ensure_ascii=False) + "\r\n"
    body = post(client, text.encode(), "application/x-ndjson").get_json()
    assert (body["accepted"], body["rejected"]) == (1, 0)
