"""The AuditEvent builder: R4-valid events naming who, what, when and the outcome, never content."""

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from fhir_iomt.domain.errors import MethodNotAllowed
from fhir_iomt.fhir.audit import (
    CLIENT_SYSTEM,
    RESTFUL_INTERACTION,
    SUBTYPE_SYSTEM,
    USER_SYSTEM,
    AuditRecord,
    audit_event,
)
from fhir_iomt.fhir.capability import capability_statement
from fhir_iomt.fhir.params import extract_search_fields
from fhir_iomt.services.resources import ResourceService
from tests.support.r4schema import assert_valid

WHEN = datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"


def record(**changes):
    """A read of an Observation by a user of a client, in a patient's context."""
    base = AuditRecord(
        interaction="read", action="R", method="GET", path="/fhir/Observation/o1", status=200, recorded=WHEN,
        resource_type="Observation", resource_id="o1", client_id="app-1", client_name="Ward app",
        username="alice", fhir_user="Practitioner/pr1", patient_id="p1", address="10.0.0.7",
    )
    return replace(base, **changes)


ANONYMOUS = dict(client_id=None, client_name=None, username=None, fhir_user=None, patient_id=None)
VARIANTS = {
    "read": record(),
    "vread": record(interaction="vread", path="/fhir/Observation/o1/_history/2"),
    "search": record(interaction="search-type", resource_id=None, path="/fhir/Observation",
                     query="patient=p1&code=http://loinc.org|8867-4"),
    "history-type": record(interaction="history-type", resource_id=None, path="/fhir/Observation/_history"),
    "create": record(interaction="create", action="C", method="POST", status=201, resource_id=None),
    "forbidden": record(status=403, outcome_desc="The token's scopes do not allow read of Observation"),
    "anonymous": record(status=401, outcome_desc="No bearer token", **ANONYMOUS),
    "server error": record(status=500),
    "user without fhirUser": record(fhir_user=None),
    "patient user": record(fhir_user="Patient/p1", username="pat"),
    "client only": record(username=None, fhir_user=None, patient_id=None, address=None),
    "token": record(interaction="token", action="C", method="POST", path="/auth/token", resource_type=None,
                    resource_id=None, username=None, fhir_user=None, patient_id=None),
    "login failed": record(interaction="login", action="C", method="POST", path="/auth/login", status=400,
                           resource_type=None, resource_id=None, client_id=None, client_name=None,
                           fhir_user=None, patient_id=None, outcome_desc="login-failed"),
    "ingest": record(interaction="ingest", action="C", method="POST", path="/ingest/messages", status=202,
                     resource_type=None, resource_id=None, query="source=gw", username=None,
                     fhir_user=None, patient_id=None),
}


def agents_by_role(event):
    return {agent.get("type", {}).get("coding", [{}])[0].get("code", "none"): agent for agent in event["agent"]}


@pytest.mark.parametrize("name", VARIANTS)
def test_every_event_is_valid_r4(name):
    event = audit_event(VARIANTS[name], "e1")
    AuditEvent.model_validate(event)
    assert_valid(event)


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "0"), (201, "0"), (204, "0"), (304, "0"), (399, "0"),
    (400, "4"), (401, "4"), (403, "4"), (404, "4"), (405, "4"), (499, "4"),
    (500, "8"), (503, "8"),
])
def test_outcome_follows_the_http_status(status, outcome):
    assert audit_event(record(status=status), "e1")["outcome"] == outcome


def test_a_refusal_says_why_and_a_success_says_nothing():
    refused = audit_event(record(status=403, outcome_desc="insufficient scope"), "e1")
    assert refused["outcomeDesc"] == "HTTP 403: insufficient scope"
    assert audit_event(record(status=404), "e1")["outcomeDesc"] == "HTTP 404"
    assert "outcomeDesc" not in audit_event(record(), "e1")


def test_the_reason_is_kept_short_and_on_one_line():
    event = audit_event(record(status=401, outcome_desc="bad\ntoken " + "x" * 1000), "e1")
    assert "\n" not in event["outcomeDesc"] and len(event["outcomeDesc"]) <= 220


def test_type_subtype_action_and_recorded():
    event = audit_event(record(recorded=WHEN.astimezone(timezone(timedelta(hours=2)))), "e1")
    assert event["type"] == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                             "code": "rest", "display": "RESTful Operation"}
    assert event["subtype"] == [{"system": RESTFUL_INTERACTION, "code": "read", "display": "read"}]
    assert event["action"] == "R"
    assert event["recorded"] == "2026-05-01T10:00:00.123Z"
    assert event["id"] == "e1" and event["resourceType"] == "AuditEvent"


def test_non_fhir_routes_get_a_subtype_of_our_own():
    event = audit_event(VARIANTS["ingest"], "e1")
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [{"system": SUBTYPE_SYSTEM, "code": "ingest"}]
    assert event["entity"] == [{"what": {"display": "/ingest/messages"}, "type": {
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}}]


@pytest.mark.parametrize("name", ["token", "login failed"])
def test_authorization_server_events_are_user_authentication(name):
    event = audit_event(VARIANTS[name], "e1")
    assert event["type"]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
    assert event["type"]["code"] == "110114"
    assert event["subtype"][0]["system"] == SUBTYPE_SYSTEM


def test_client_and_user_are_both_requestors():
    agents = agents_by_role(audit_event(record(), "e1"))
    client, user = agents["110150"], agents["humanuser"]
    assert client["who"] == {"identifier": {"system": CLIENT_SYSTEM, "value": "app-1"}}
    assert client["name"] == "Ward app" and client["requestor"] is True
    assert client["network"] == {"address": "10.0.0.7", "type": "2"}
    assert user["who"] == {"reference": "Practitioner/pr1"}
    assert user["altId"] == "alice" and user["name"] == "alice" and user["requestor"] is True
    assert "network" not in user


def test_a_user_without_fhir_user_is_named_by_identifier():
    user = agents_by_role(audit_event(record(fhir_user=None), "e1"))["humanuser"]
    assert user["who"] == {"identifier": {"system": USER_SYSTEM, "value": "alice"}}
    assert user["altId"] == "alice"


def test_without_client_the_user_holds_the_address():
    event = audit_event(VARIANTS["login failed"], "e1")
    assert len(event["agent"]) == 1
    assert event["agent"][0]["altId"] == "alice"
    assert event["agent"][0]["network"] == {"address": "10.0.0.7", "type": "2"}


def test_no_token_gives_an_anonymous_requestor():
    event = audit_event(VARIANTS["anonymous"], "e1")
    assert event["agent"] == [{"who": {"display": "anonymous"}, "requestor": True,
                               "network": {"address": "10.0.0.7", "type": "2"}}]
    assert event["outcome"] == "4" and event["outcomeDesc"] == "HTTP 401: No bearer token"


def test_source_is_this_application_server():
    assert audit_event(record(), "e1")["source"] == {
        "observer": {"display": "fhir-iomt"},
        "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                  "display": "Application Server"}],
    }


def test_the_resource_and_its_patient_are_entities():
    resource, patient = audit_event(record(), "e1")["entity"]
    assert resource["what"] == {"reference": "Observation/o1"}
    assert resource["role"]["code"] == "4" and "query" not in resource
    assert patient["what"] == {"reference": "Patient/p1"}
    assert patient["role"] == {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}


def test_reading_the_patient_itself_gives_one_patient_entity():
    entities = audit_event(record(resource_type="Patient", resource_id="p1", path="/fhir/Patient/p1"), "e1")["entity"]
    assert len(entities) == 1
    assert entities[0]["what"] == {"reference": "Patient/p1"} and entities[0]["role"]["code"] == "1"


def test_a_vread_names_the_version():
    assert audit_event(VARIANTS["vread"], "e1")["entity"][0]["what"] == {"reference": "Observation/o1/_history/2"}


def test_a_search_keeps_its_query_in_base64():
    entity = audit_event(VARIANTS["search"], "e1")["entity"][0]
    assert entity["what"] == {"display": "Observation"}
    assert base64.b64decode(entity["query"]).decode() == "patient=p1&code=http://loinc.org|8867-4"
    assert entity["role"]["code"] == "24"


def test_only_type_level_interactions_keep_the_query():
    assert "query" not in audit_event(record(query="_format=json"), "e1")["entity"][0]
    assert all("query" not in e for e in audit_event(VARIANTS["ingest"], "e1")["entity"])


def test_events_do_not_share_mutable_parts():
    first = audit_event(record(), "e1")
    first["source"]["observer"]["display"] = "changed"
    first["type"]["code"] = "changed"
    second = audit_event(record(), "e2")
    assert second["source"]["observer"]["display"] == "fhir-iomt" and second["type"]["code"] == "rest"


def test_search_fields_of_an_event():
    fields = extract_search_fields("AuditEvent", audit_event(record(), "e1"), 0)
    assert fields["lu"] == fields["lu_end"] == int(WHEN.timestamp() * 1000)
    assert fields["client"] == "app-1"
    assert fields["altid"] == "alice"
    assert fields["agent"] == "Practitioner/pr1"
    assert fields["entity"] == "Observation/o1"
    assert fields["patient"] == "Patient/p1"
    assert fields["address"] == "10.0.0.7"
    assert fields["outcome"] == "0" and fields["action"] == "R"
    assert {"rest", "http://terminology.hl7.org/CodeSystem/audit-event-type|rest"} <= set(fields["type"])
    assert {"read", f"{RESTFUL_INTERACTION}|read"} <= set(fields["subtype"])


def test_search_fields_of_an_anonymous_refusal():
    fields = extract_search_fields("AuditEvent", audit_event(VARIANTS["anonymous"], "e1"), 0)
    assert {"client", "altid", "agent", "patient"}.isdisjoint(fields)
    assert fields["outcome"] == "4" and fields["entity"] == "Observation/o1"


def test_a_patient_user_is_the_patient_when_no_entity_names_one():
    event = audit_event(record(fhir_user="Patient/p9", patient_id=None), "e1")
    assert extract_search_fields("AuditEvent", event, 0)["patient"] == "Patient/p9"


def test_an_absolute_fhir_user_on_this_server_is_a_local_reference():
    event = audit_event(record(fhir_user="https://ehr.example/fhir/Practitioner/pr1"), "e1")
    fields = extract_search_fields("AuditEvent", event, 0, ("https://ehr.example/fhir",))
    assert fields["agent"] == "Practitioner/pr1"


def test_capability_statement_serves_audit_events_read_only():
    statement = capability_statement("http://x/fhir", "1", "2026-01-01T00:00:00Z", 1000, 50, 1000)
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert [i["code"] for i in entry["interaction"]] == [
        "read", "vread", "search-type", "history-instance", "history-type"]
    assert entry["updateCreate"] is False and entry["conditionalCreate"] is False
    params = {p["name"]: p for p in entry["searchParam"]}
    assert {"date", "type", "subtype", "action", "outcome", "agent", "altid", "entity", "patient", "address",
            "client", "_id", "_lastUpdated"} == set(params)
    assert params["date"]["definition"] == "http://hl7.org/fhir/SearchParameter/AuditEvent-date"
    assert params["patient"]["definition"] == "http://hl7.org/fhir/SearchParameter/AuditEvent-patient"
    assert "definition" not in params["client"]
    others = [r for r in statement["rest"][0]["resource"] if r["type"] != "AuditEvent"]
    assert all(len(r["interaction"]) == 8 for r in others)


@pytest.mark.parametrize("write", [
    lambda s: s.create("AuditEvent", {"resourceType": "AuditEvent"}),
    lambda s: s.create_with_id("AuditEvent", {"resourceType": "AuditEvent", "id": "a"}),
    lambda s: s.update("AuditEvent", "a", {"resourceType": "AuditEvent", "id": "a"}),
    lambda s: s.delete("AuditEvent", "a"),
], ids=["create", "create_with_id", "update", "delete"])
def test_audit_events_are_not_written_through_the_resource_service(write):
    # Refused before the store is touched (there is none here).
    with pytest.raises(MethodNotAllowed) as raised:
        write(ResourceService(None, None))
    assert raised.value.status == 405 and raised.value.code == "not-supported"
    assert raised.value.headers == {"Allow": "GET, HEAD"}
