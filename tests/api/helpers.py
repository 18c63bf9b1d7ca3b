"""Shared builders and request helpers for the API tests (resources, bundles, outcomes, apps)."""

import base64
import contextlib
import uuid
from datetime import UTC, datetime

import orjson

from fhir_iomt import create_app
from fhir_iomt.services.resources import stored_document

FHIR_JSON = "application/fhir+json"
BASE = "http://localhost/fhir"

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
HEART_RATE = (LOINC, "8867-4", "/min")
RESPIRATORY_RATE = (LOINC, "9279-1", "/min")
BODY_TEMPERATURE = (LOINC, "8310-5", "Cel")
SERIAL_SYSTEM = "urn:ietf:rfc:3986"
MRN_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"

# Issue codes of the OperationOutcome IssueType value set that describe invalid content.
INVALID_CONTENT_CODES = {"invalid", "structure", "required", "value", "invariant", "code-invalid"}


# Resource builders ----------


def observation(
    patient="p1",
    code=HEART_RATE,
    when=None,
    value=72,
    *,
    device=None,
    status="final",
    category="vital-signs",
    subject=None,
    extra_codings=(),
):
    """An R4 Observation of `patient` (an id) measured `when`.

    `when` is a dateTime string (effectiveDateTime), a (start, end) tuple (effectivePeriod, either
    end may be None) or None (no effective[x] at all). `code` is (system, code, ucum unit); a
    system of None makes a coding without system.
    """
    system, code_value, unit = code
    coding = {"code": code_value}
    if system:
        coding["system"] = system
    resource = {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [coding, *extra_codings]},
        "subject": {"reference": subject or f"Patient/{patient}"},
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if category:
        resource["category"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": category}]}]
    if isinstance(when, tuple):
        start, end = when
        resource["effectivePeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    elif when is not None:
        resource["effectiveDateTime"] = when
    if device:
        resource["device"] = {"reference": f"Device/{device}"}
    return resource


def patient(family, given=(), *, mrn=None, gender=None, birth_date=None, text=None):
    """An R4 Patient with one HumanName."""
    name = {"family": family}
    if given:
        name["given"] = list(given)
    if text:
        name["text"] = text
    resource = {"resourceType": "Patient", "name": [name]}
    if mrn:
        resource["identifier"] = [{"system": MRN_SYSTEM, "value": mrn}]
    if gender:
        resource["gender"] = gender
    if birth_date:
        resource["birthDate"] = birth_date
    return resource


def device(serial, *, patient_id=None, type_code=None, manufacturer=None, model=None):
    """An R4 Device identified by a serial number."""
    resource = {
        "resourceType": "Device",
        "identifier": [{"system": SERIAL_SYSTEM, "value": serial}],
        "status": "active",
    }
    if patient_id:
        resource["patient"] = {"reference": f"Patient/{patient_id}"}
    if type_code:
        system, code = type_code
        resource["type"] = {"coding": [{"system": system, "code": code}]}
    if manufacturer:
        resource["manufacturer"] = manufacturer
    if model:
        resource["modelNumber"] = model
    return resource


# Requests ----------


def create(client, resource, **kwargs):
    """POST a resource, assert 201 and return the stored resource."""
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource, **kwargs)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def put(client, resource, **kwargs):
    """PUT a resource to its id and return the response."""
    return client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, **kwargs)


def read(client, resource_type, resource_id):
    """GET a resource, assert 200 and return it."""
    response = client.get(f"/fhir/{resource_type}/{resource_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def search(client, resource_type, params=(), **kwargs):
    """GET a search (params as a list of pairs or a dict), assert 200 and return the Bundle."""
    response = client.get(f"/fhir/{resource_type}", query_string=params, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = response.get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def follow(client, url):
    """GET an absolute link of a Bundle, assert 200 and return the Bundle."""
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def matches(bundle):
    """The resources of the entries with search.mode 'match'."""
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def match_ids(bundle):
    return [r["id"] for r in matches(bundle)]


def link(bundle, relation):
    """The url of the Bundle link with this relation, or None."""
    found = [item["url"] for item in bundle.get("link", []) if item["relation"] == relation]
    assert len(found) <= 1, f"several '{relation}' links"
    return found[0] if found else None


def total_of(client, resource_type, params=()):
    """Bundle.total of a _summary=count search."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    bundle = search(client, resource_type, [*pairs, ("_summary", "count")])
    return bundle["total"]


def history_bundle(client, resource_type, resource_id=None, params=()):
    path = (
        f"/fhir/{resource_type}/{resource_id}/_history" if resource_id else f"/fhir/{resource_type}/_history"
    )
    response = client.get(path, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = response.get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    return bundle


def stored_state(client, *resource_types):
    """What is stored, seen through the API: per type, the current (id, versionId)s and history size."""
    state = {}
    for resource_type in resource_types:
        bundle = search(client, resource_type, [("_count", "1000")])
        current = sorted((r["id"], r["meta"]["versionId"]) for r in matches(bundle))
        state[resource_type] = (current, history_bundle(client, resource_type)["total"])
    return state


def issues(response, status):
    """Assert an OperationOutcome error response with `status`; return its issues."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"], "an OperationOutcome needs at least one issue"
    assert any(i["severity"] in ("error", "fatal") for i in body["issue"])
    return body["issue"]


def expressions(issue_list):
    return {path for item in issue_list for path in item.get("expression", [])}


# Page tokens ----------


def page_token(url):
    """The _page value of a paging link."""
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["_page"][0]


def decode_token(token):
    return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def encode_token(data):
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


# Apps and data ----------


@contextlib.contextmanager
def app_with(mongo_server, **overrides):
    """An app over a fresh database of the session's server, with config overrides."""
    config = {"MONGODB_URI": mongo_server.uri, "MONGODB_DB": f"t{uuid.uuid4().hex[:12]}", "TESTING": True}
    application = create_app({**config, **overrides})
    services = application.extensions["fhir_iomt"]
    services.store.ensure_indexes()
    try:
        yield application
    finally:
        services.close()


def bulk_observations(app, count, patient_id="bulk"):
    """Store `count` Observations directly (exactly the documents the service stores), for big sets."""
    store = app.extensions["fhir_iomt"].store
    millis = int(datetime.now(UTC).timestamp() * 1000)
    instant = datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")
    documents = []
    for index in range(count):
        minute = index % 60
        resource = dict(
            observation(patient_id, when=f"2026-11-20T10:{minute:02d}:00Z", value=60 + index % 50),
            id=f"bulk-{index:05d}",
        )
        documents.append(stored_document("Observation", resource, 1, instant.replace("+00:00", "Z"), millis))
    store.db["Observation"].insert_many(documents)
    return [d["_id"] for d in documents]
