"""Small MedTech-format templates and vendor messages for the ingest API tests."""

import copy

import orjson

HEART_RATE_DEVICE = {
    "templateType": "CollectionContent",
    "template": [{
        "templateType": "JsonPathContent",
        "template": {
            "typeName": "heartrate",
            "typeMatchExpression": "$..[?(@heartRate)]",
            "deviceIdExpression": "$.deviceId",
            "patientIdExpression": "$.patientId",
            "timestampExpression": "$.endDate",
            "values": [{"required": "true", "valueExpression": "$.heartRate", "valueName": "hr"}],
        },
    }],
}

HEART_RATE_FHIR = {
    "templateType": "CollectionFhir",
    "template": [{
        "templateType": "CodeValueFhir",
        "template": {
            "typeName": "heartrate",
            "periodInterval": 0,
            "codes": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
            "value": {"valueName": "hr", "valueType": "Quantity", "unit": "/min",
                      "system": "http://unitsofmeasure.org", "code": "/min"},
        },
    }],
}


def templates(identity="create", limits=None, device=None, fhir=None):
    """A PUT /ingest/templates body."""
    body = {"deviceTemplate": copy.deepcopy(device or HEART_RATE_DEVICE),
            "fhirTemplate": copy.deepcopy(fhir or HEART_RATE_FHIR), "identityMode": identity}
    if limits is not None:
        body["limits"] = limits
    return body


def heart_rate(value=72, device="HR-001", patient="MRN-1", when="2026-11-23T10:00:00+01:00"):
    """A vendor's heart-rate message."""
    message = {"deviceId": device, "endDate": when, "heartRate": value}
    if patient is not None:
        message["patientId"] = patient
    return message


def put_templates(client, **options):
    """Load templates and return the response JSON."""
    response = client.put("/ingest/templates", json=templates(**options))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def post(client, body, content_type="application/json"):
    """POST /ingest/messages with a JSON value (or raw bytes/str) and return the response."""
    data = body if isinstance(body, bytes | str) else orjson.dumps(body)
    return client.post("/ingest/messages", data=data, content_type=content_type)


def search(client, query):
    """Entries of a FHIR search."""
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.get_json()
    return [e["resource"] for e in response.get_json().get("entry", []) if e["search"]["mode"] == "match"]
