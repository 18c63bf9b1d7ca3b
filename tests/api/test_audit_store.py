"""The audit trail over the real embedded database: recorded events are read, versioned and searched
through the generic services, and never written through the resource service."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fhir_iomt.domain.errors import FhirError, NotFound
from fhir_iomt.fhir.audit import AuditRecord, audit_event

START = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def recorded(services, audit_record):
    """Record an event and wait until the background writer stored it."""
    event_id = services.audit.record(audit_record)
    assert services.audit.flush()
    return event_id


def record(minute=0, **changes):
    """A successful read of an Observation, `minute` minutes after START."""
    base = AuditRecord(
        interaction="read", action="R", method="GET", path="/fhir/Observation/o1", status=200,
        recorded=START + timedelta(minutes=minute), resource_type="Observation", resource_id="o1",
        client_id="app-1", client_name="Ward app", username="alice", fhir_user="Practitioner/pr1",
        patient_id="p1", address="10.0.0.7",
    )
    return replace(base, **changes)


@pytest.fixture()
def services(app):
    return app.extensions["fhir_iomt"]


@pytest.fixture()
def trail(services):
    """Five events: two clients, two users, two patients, one refusal and one anonymous refusal."""
    records = {
        "alice-p1": record(0),
        "alice-p2": record(1, patient_id="p2", resource_id="o2", path="/fhir/Observation/o2"),
        "bob-p1": record(2, client_id="app-2", client_name="Lab", username="bob", fhir_user="Practitioner/pr2",
                         address="10.0.0.8"),
        "refused": record(3, status=403, username="bob", fhir_user="Practitioner/pr2", patient_id=None,
                          outcome_desc="insufficient scope"),
        "anonymous": record(4, status=401, client_id=None, client_name=None, username=None, fhir_user=None,
                            patient_id=None, outcome_desc="No bearer token"),
    }
    return {name: recorded(services, r) for name, r in records.items()}


def search_ids(services, items):
    return [r["id"] for r in services.search.search(services.search.parse("AuditEvent", items, strict=True)).resources]


def test_a_recorded_event_reads_back_as_version_1(services):
    event_id = recorded(services, record())
    stored = services.resources.read("AuditEvent", event_id)
    expected = audit_event(record(), event_id)
    assert {k: v for k, v in stored.items() if k != "meta"} == expected
    assert stored["meta"] == {"versionId": "1", "lastUpdated": "2026-05-01T10:00:00.000Z"}
    assert services.resources.vread("AuditEvent", event_id, "1") == stored
    with pytest.raises(NotFound):
        services.resources.vread("AuditEvent", event_id, "2")


def test_the_id_is_a_fresh_uuid(services):
    first, second = recorded(services, record()), recorded(services, record())
    assert first != second and len(first) == 36 and first.count("-") == 4


def test_instance_history_holds_the_one_version(services):
    event_id = recorded(services, record())
    page = services.search.history("AuditEvent", event_id, [])
    assert page.total == 1
    (entry,) = page.entries
    assert entry["v"] == 1 and entry["method"] == "POST" and entry["resource"]["id"] == event_id


def test_search_by_date(services, trail):
    assert search_ids(services, [("date", "ge2026-05-01T10:02:00Z"), ("_sort", "date")]) == [
        trail["bob-p1"], trail["refused"], trail["anonymous"]]
    assert search_ids(services, [("date", "lt2026-05-01T10:01:00Z")]) == [trail["alice-p1"]]
    assert search_ids(services, [("date", "2026-05-01T10:01")]) == [trail["alice-p2"]]
    assert search_ids(services, [("date", "2026-04-30")]) == []


def test_newest_first_with_sort_minus_date_and_oldest_first_by_default(services, trail):
    in_order = [trail[n] for n in ("alice-p1", "alice-p2", "bob-p1", "refused", "anonymous")]
    assert search_ids(services, [("_sort", "-date")]) == in_order[::-1]
    assert search_ids(services, []) == in_order
    assert search_ids(services, [("_sort", "-_lastUpdated")]) == in_order[::-1]


def test_pages_of_the_newest_first_search_follow_on(services, trail):
    request = services.search.parse("AuditEvent", [("_sort", "-date"), ("_count", "2")])
    seen = []
    while True:
        page = services.search.search(request)
        seen += [r["id"] for r in page.resources]
        if not page.next_cursor:
            break
        request = services.search.parse("AuditEvent", [("_sort", "-date"), ("_count", "2"),
                                                        ("_page", page.next_cursor)])
    assert seen == search_ids(services, [("_sort", "-date")])


def test_search_by_client(services, trail):
    app_1 = [trail["alice-p1"], trail["alice-p2"], trail["refused"]]
    assert search_ids(services, [("client", "app-1")]) == app_1
    assert search_ids(services, [("client", "urn:fhir-iomt:client|app-1")]) == app_1
    assert search_ids(services, [("client", "app-2"), ("_sort", "-date")]) == [trail["bob-p1"]]
    assert search_ids(services, [("client", "nobody")]) == []


def test_search_by_patient(services, trail):
    assert search_ids(services, [("patient", "p1")]) == [trail["alice-p1"], trail["bob-p1"]]
    assert search_ids(services, [("patient", "Patient/p2")]) == [trail["alice-p2"]]
    assert search_ids(services, [("patient", "p1"), ("date", "gt2026-05-01T10:01:00Z")]) == [trail["bob-p1"]]


def test_search_by_outcome(services, trail):
    assert search_ids(services, [("outcome", "4")]) == [trail["refused"], trail["anonymous"]]
    assert len(search_ids(services, [("outcome", "0")])) == 3
    assert search_ids(services, [("outcome", "8")]) == []


def test_search_by_user(services, trail):
    assert search_ids(services, [("altid", "bob")]) == [trail["bob-p1"], trail["refused"]]
    assert search_ids(services, [("agent", "Practitioner/pr1")]) == [trail["alice-p1"], trail["alice-p2"]]
    assert search_ids(services, [("agent:Practitioner", "pr2"), ("_sort", "-date")]) == [
        trail["refused"], trail["bob-p1"]]


def test_search_by_entity_address_action_type_and_subtype(services, trail):
    assert search_ids(services, [("entity", "Observation/o2")]) == [trail["alice-p2"]]
    assert search_ids(services, [("address", "10.0.0.8")]) == [trail["bob-p1"]]
    assert len(search_ids(services, [("action", "R"), ("type", "rest"),
                                     ("subtype", "http://hl7.org/fhir/restful-interaction|read")])) == 5
    assert search_ids(services, [("subtype", "search-type")]) == []


def test_count_of_a_search(services, trail):
    request = services.search.parse("AuditEvent", [("outcome", "4"), ("_summary", "count")])
    assert services.search.search(request).total == 2


def test_the_type_history_lists_every_event(services, trail):
    assert services.search.history("AuditEvent", None, []).total == 5


@pytest.mark.parametrize("write", [
    lambda s, e: s.create("AuditEvent", {k: v for k, v in e.items() if k != "id"}),
    lambda s, e: s.create_with_id("AuditEvent", dict(e, id="new-one")),
    lambda s, e: s.update("AuditEvent", e["id"], e),
    lambda s, e: s.delete("AuditEvent", e["id"]),
], ids=["create", "create_with_id", "update", "delete"])
def test_audit_events_cannot_be_written_through_the_resource_service(services, write):
    event_id = recorded(services, record())
    before = services.resources.read("AuditEvent", event_id)
    event = {k: v for k, v in before.items() if k != "meta"}
    with pytest.raises(FhirError) as raised:
        write(services.resources, dict(event, outcome="8"))
    assert raised.value.status == 405 and raised.value.code == "not-supported"
    assert services.resources.read("AuditEvent", event_id) == before
    assert services.search.history("AuditEvent", None, []).total == 1


def test_a_retried_batch_stores_each_event_once(services):
    event_id = recorded(services, record())
    stored = services.store.get("AuditEvent", event_id)
    entry = services.store.version("AuditEvent", event_id, 1)
    entry = {k: v for k, v in entry.items() if k not in ("_id", "t", "hk")}
    services.store.insert_all_with_history("AuditEvent", [(stored, entry)])
    assert services.search.history("AuditEvent", event_id, []).total == 1
    assert services.store.count("AuditEvent", None) == 1


def test_a_failed_write_is_retried_until_the_event_is_stored(services, monkeypatch):
    real, failures = services.store.insert_all_with_history, []

    def flaky(resource_type, pairs):
        if len(failures) < 2:
            failures.append(len(pairs))
            raise ConnectionError("database briefly away")
        return real(resource_type, pairs)

    monkeypatch.setattr(services.store, "insert_all_with_history", flaky)
    event_id = recorded(services, record())
    assert len(failures) == 2
    assert services.resources.read("AuditEvent", event_id)["id"] == event_id


def test_events_are_written_in_batches_off_the_request_path(services):
    ids = [services.audit.record(record(minute)) for minute in range(120)]
    assert services.audit.flush()
    assert services.store.count("AuditEvent", None) == 120
    entries = services.search.history("AuditEvent", None, [("_count", "1000")]).entries
    assert {entry["resource"]["id"] for entry in entries} == set(ids)


def test_the_capability_statement_lists_audit_events_read_only(app):
    statement = app.test_client().get("/fhir/metadata").get_json()
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert {i["code"] for i in entry["interaction"]} == {
        "read", "vread", "search-type", "history-instance", "history-type"}
