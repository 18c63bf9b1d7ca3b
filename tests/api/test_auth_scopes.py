"""Scope enforcement at the resource server: interactions, the patient compartment, query-restricted
scopes, v1 scopes, _include, ingestion scopes and the audit trail.

Every refused write is followed by a check, through an unrestricted client, that nothing stored changed.
"""

import orjson
import pytest

from tests.support.oauth import system_client

from .auth_helpers import (
    as_bearer,
    backend_access,
    backend_request,
    bearer_refusal,
    build_world,
    post_login,
    register_app,
    register_key_backend,
    start,
    tokens,
)
from .helpers import (
    create,
    history_bundle,
    issues,
    match_ids,
    observation,
    patient,
    put,
    read,
    search,
    stored_state,
)
from .ingest_helpers import heart_rate, post, put_templates

TYPES = ("Patient", "Observation", "Device")


@pytest.fixture()
def world(app, client):
    return build_world(app, client)


def _refused(response, scope=None):
    """403 OperationOutcome (forbidden) with an insufficient_scope challenge (naming `scope` when given)."""
    challenge = bearer_refusal(response, 403, "insufficient_scope")
    if scope:
        assert f'scope="{scope}"' in challenge
    return challenge


def _patient_reader(app, username="alice", scope="patient/*.rs"):
    return as_bearer(app, tokens(app, register_app(app, scope), username, scope)["access_token"])


def _clinician_for(app, patient_id, scope="launch/patient patient/*.cruds"):
    body = tokens(app, register_app(app, scope), "dr.who", scope, patient=patient_id)
    assert body["patient"] == patient_id
    return as_bearer(app, body["access_token"])


def _system(app, backend_key, scope):
    return system_client(app, backend_key, scope)


# Insufficient scope, interaction by interaction ----------


def _obs_request(name, world):
    """(method, path, request keywords) of one interaction on Observations."""
    own = world.alice_obs
    method, path, body = {
        "read": ("GET", f"/fhir/Observation/{own}", None),
        "vread": ("GET", f"/fhir/Observation/{own}/_history/1", None),
        "search": ("GET", "/fhir/Observation", None),
        "search-post": ("POST", "/fhir/Observation/_search", None),
        "create": ("POST", "/fhir/Observation", observation(world.alice, when="2026-11-21T10:00:00Z")),
        "update": ("PUT", f"/fhir/Observation/{own}", dict(observation(world.alice, value=99), id=own)),
        "update-create": ("PUT", "/fhir/Observation/new-one", dict(observation(world.alice), id="new-one")),
        "delete": ("DELETE", f"/fhir/Observation/{own}", None),
        "history-instance": ("GET", f"/fhir/Observation/{own}/_history", None),
        "history-type": ("GET", "/fhir/Observation/_history", None),
    }[name]
    if name == "search-post":
        return method, path, {"data": {"patient": world.alice}}
    return method, path, ({"json": body} if body is not None else {})


# interaction -> the SMART v2 letter it needs
INTERACTION_LETTERS = {
    "read": "r", "vread": "r", "search": "s", "search-post": "s", "create": "c", "update": "u",
    "update-create": "u", "delete": "d", "history-instance": "r", "history-type": "s",
}


@pytest.mark.parametrize("interaction", sorted(INTERACTION_LETTERS))
def test_insufficient_scope_is_403_for_each_interaction(app, client, world, backend_key, interaction):
    letter = INTERACTION_LETTERS[interaction]
    held = "".join(c for c in "cruds" if c != letter)
    limited = _system(app, backend_key, f"system/Observation.{held} system/Patient.cruds system/Device.cruds")
    before = stored_state(client, *TYPES)
    method, path, kwargs = _obs_request(interaction, world)
    response = limited.open(path, method=method, **kwargs)
    _refused(response, f"system/Observation.{letter}")
    assert stored_state(client, *TYPES) == before


@pytest.mark.parametrize("interaction", sorted(INTERACTION_LETTERS))
def test_a_scope_for_another_type_grants_nothing_on_observations(app, client, world, backend_key, interaction):
    other_types = _system(app, backend_key, "system/Patient.cruds system/Device.cruds")
    before = stored_state(client, *TYPES)
    method, path, kwargs = _obs_request(interaction, world)
    response = other_types.open(path, method=method, **kwargs)
    _refused(response, f"system/Observation.{INTERACTION_LETTERS[interaction]}")
    assert stored_state(client, *TYPES) == before


def test_insufficient_scope_is_decided_before_looking_the_resource_up(app, world, backend_key):
    """A 403, not a 404: a token without read learns nothing about which ids exist."""
    limited = _system(app, backend_key, "system/Observation.s")
    _refused(limited.get("/fhir/Observation/no-such-id"), "system/Observation.r")
    _refused(limited.get(f"/fhir/Observation/{world.alice_obs}"), "system/Observation.r")


def test_the_letters_held_do_work(app, world, backend_key):
    reader = _system(app, backend_key, "system/Observation.rs")
    assert read(reader, "Observation", world.alice_obs)["id"] == world.alice_obs
    assert len(match_ids(search(reader, "Observation"))) == 3


# Patient compartment ----------


def test_a_patient_reads_their_own_resources(app, world):
    reader = _patient_reader(app)
    assert read(reader, "Patient", world.alice)["id"] == world.alice
    assert read(reader, "Observation", world.alice_obs)["id"] == world.alice_obs
    assert read(reader, "Device", world.alice_device)["id"] == world.alice_device
    assert reader.get(f"/fhir/Observation/{world.alice_obs}/_history/1").status_code == 200


@pytest.mark.parametrize("target", ["Patient/bob", "Observation/bob_obs", "Device/bob_device"])
def test_another_patients_resource_is_403_through_read(app, world, target):
    resource_type, attribute = target.split("/")
    reader = _patient_reader(app)
    challenge = _refused(reader.get(f"/fhir/{resource_type}/{getattr(world, attribute)}"))
    assert "outside what this token may read" in challenge


@pytest.mark.parametrize("target", ["Patient/bob", "Observation/bob_obs", "Device/bob_device"])
def test_another_patients_resource_is_403_through_vread(app, world, target):
    resource_type, attribute = target.split("/")
    reader = _patient_reader(app)
    _refused(reader.get(f"/fhir/{resource_type}/{getattr(world, attribute)}/_history/1"))


def test_an_absolute_reference_on_the_requests_own_base_is_in_the_compartment(app, client, world):
    # No PUBLIC_BASE_URL: the request's base (http://localhost/fhir) is this server, as it is for search.
    absolute = create(client, observation(world.alice, when="2026-11-21T10:00:00Z"))
    absolute["subject"]["reference"] = f"http://localhost/fhir/Patient/{world.alice}"
    assert client.put(f"/fhir/Observation/{absolute['id']}", json=absolute).status_code == 200
    reader = _patient_reader(app)
    assert absolute["id"] in match_ids(search(reader, "Observation"))
    assert read(reader, "Observation", absolute["id"])["id"] == absolute["id"]
    elsewhere = dict(absolute, subject={"reference": f"http://other.example/fhir/Patient/{world.alice}"})
    assert client.put(f"/fhir/Observation/{absolute['id']}", json=elsewhere).status_code == 200
    _refused(reader.get(f"/fhir/Observation/{absolute['id']}"))


def test_search_for_another_patient_gives_an_empty_bundle(app, world):
    reader = _patient_reader(app)
    for resource_type, params in (
        ("Observation", {"patient": world.bob}),
        ("Observation", {"subject": f"Patient/{world.bob}"}),
        ("Observation", {"patient": world.bob, "_summary": "count"}),
        ("Patient", {"_id": world.bob}),
        ("Patient", {"family": "Bobsworth"}),
        ("Device", {"patient": world.bob}),
        ("Device", {"identifier": "DEV-B"}),
    ):
        bundle = search(reader, resource_type, params)
        assert match_ids(bundle) == [], (resource_type, params)
        assert bundle["total"] == 0


def test_search_for_both_patients_gives_only_their_own(app, world):
    reader = _patient_reader(app)
    bundle = search(reader, "Observation", {"patient": f"{world.bob},{world.alice}", "code": "8867-4"})
    assert match_ids(bundle) == [world.alice_obs]


def test_search_without_a_patient_parameter_gives_only_their_own(app, world):
    reader = _patient_reader(app)
    assert sorted(match_ids(search(reader, "Observation"))) == sorted([world.alice_obs, world.alice_lab])
    assert match_ids(search(reader, "Patient")) == [world.alice]
    assert match_ids(search(reader, "Device")) == [world.alice_device]
    assert search(reader, "Observation", {"_summary": "count"})["total"] == 2


def test_search_by_post_is_confined_too(app, world):
    reader = _patient_reader(app)
    response = reader.post("/fhir/Observation/_search", data={"patient": world.bob})
    assert response.status_code == 200 and match_ids(response.get_json()) == []
    response = reader.post("/fhir/Observation/_search", data={"_count": "50"})
    assert sorted(match_ids(response.get_json())) == sorted([world.alice_obs, world.alice_lab])


def test_a_next_link_cannot_be_used_to_leave_the_compartment(app, world):
    reader = _patient_reader(app)
    bundle = search(reader, "Observation", {"_count": "1"})
    following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    assert following
    second = reader.get(following[0].replace("http://localhost", "")).get_json()
    assert set(match_ids(bundle) + match_ids(second)) == {world.alice_obs, world.alice_lab}


def test_instance_history_of_another_patients_resource_is_403(app, client, world):
    put(client, dict(read(client, "Observation", world.bob_obs), valueQuantity={"value": 90}))
    reader = _patient_reader(app)
    for resource_type, resource_id in (("Observation", world.bob_obs), ("Patient", world.bob),
                                       ("Device", world.bob_device)):
        _refused(reader.get(f"/fhir/{resource_type}/{resource_id}/_history"))
    own = history_bundle(reader, "Observation", world.alice_obs)
    assert [e["resource"]["id"] for e in own["entry"]] == [world.alice_obs]


def test_type_history_shows_only_their_own_entries(app, client, world):
    put(client, dict(read(client, "Observation", world.bob_obs), valueQuantity={"value": 90}))
    assert client.delete(f"/fhir/Device/{world.bob_device}").status_code == 204
    reader = _patient_reader(app)
    observations = history_bundle(reader, "Observation")
    assert sorted(e["resource"]["id"] for e in observations["entry"]) == sorted([world.alice_obs, world.alice_lab])
    assert "total" not in observations
    assert [e["resource"]["id"] for e in history_bundle(reader, "Patient")["entry"]] == [world.alice]
    devices = history_bundle(reader, "Device")["entry"]
    assert [e["resource"]["id"] for e in devices] == [world.alice_device]
    assert "Bobsworth" not in orjson.dumps(observations).decode()


def test_history_of_a_resource_that_moved_to_another_patient_shows_only_the_versions_in_the_compartment(
        app, client, world):
    moved = create(client, observation(world.alice, when="2026-11-22T10:00:00Z"))
    put(client, dict(moved, subject={"reference": f"Patient/{world.bob}"}))
    reader = _patient_reader(app)
    _refused(reader.get(f"/fhir/Observation/{moved['id']}"))
    entries = history_bundle(reader, "Observation", moved["id"])["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in entries] == ["1"]
    _refused(reader.get(f"/fhir/Observation/{moved['id']}/_history/2"))


def test_a_patient_token_cannot_write_even_its_own_data(app, client, world):
    reader = _patient_reader(app, scope="patient/*.rs")
    before = stored_state(client, *TYPES)
    own = read(client, "Observation", world.alice_obs)
    _refused(reader.post("/fhir/Observation", json=observation(world.alice)), "patient/Observation.c")
    _refused(put(reader, dict(own, valueQuantity={"value": 1})), "patient/Observation.u")
    _refused(reader.delete(f"/fhir/Observation/{world.alice_obs}"), "patient/Observation.d")
    _refused(put(reader, dict(read(client, "Patient", world.alice), gender="other")), "patient/Patient.u")
    assert stored_state(client, *TYPES) == before


def test_a_clinician_in_a_patient_context_cannot_write_outside_it(app, client, world):
    writer = _clinician_for(app, world.alice)
    before = stored_state(client, *TYPES)
    bob_obs = read(client, "Observation", world.bob_obs)
    own_obs = read(client, "Observation", world.alice_obs)
    refusals = [
        writer.post("/fhir/Observation", json=observation(world.bob)),
        writer.post("/fhir/Patient", json=patient("Newcomer")),
        put(writer, dict(bob_obs, valueQuantity={"value": 1})),
        put(writer, dict(own_obs, subject={"reference": f"Patient/{world.bob}"})),
        put(writer, dict(observation(world.bob), id="made-up-for-bob")),
        writer.delete(f"/fhir/Observation/{world.bob_obs}"),
        writer.delete(f"/fhir/Patient/{world.bob}"),
        writer.post("/fhir/Observation", json=observation(world.alice),
                    headers={"If-None-Exist": f"_id={world.bob_obs}"}),
    ]
    for response in refusals:
        assert "outside what this token may" in _refused(response)
    assert stored_state(client, *TYPES) == before
    # In the compartment the same token writes.
    created = create(writer, observation(world.alice, when="2026-11-22T09:00:00Z"))
    assert created["subject"]["reference"] == f"Patient/{world.alice}"
    assert writer.delete(f"/fhir/Observation/{created['id']}").status_code == 204


def test_a_user_level_clinician_is_not_confined(app, world):
    scope = "user/*.rs"
    reader = as_bearer(app, tokens(app, register_app(app, scope), "dr.who", scope)["access_token"])
    assert len(match_ids(search(reader, "Observation"))) == 3
    assert read(reader, "Patient", world.bob)["id"] == world.bob
    _refused(reader.post("/fhir/Patient", json=patient("Newcomer")), "user/Patient.c")


# Query-restricted scopes ----------


def test_query_restricted_scope_hides_other_categories(app, client, world):
    scope = "patient/Observation.rs?category=vital-signs patient/Patient.rs"
    body = tokens(app, register_app(app, scope), "alice", scope)
    assert body["scope"] == scope
    reader = as_bearer(app, body["access_token"])
    assert read(reader, "Observation", world.alice_obs)["id"] == world.alice_obs
    assert "outside what this token may read" in _refused(reader.get(f"/fhir/Observation/{world.alice_lab}"))
    _refused(reader.get(f"/fhir/Observation/{world.alice_lab}/_history/1"))
    _refused(reader.get(f"/fhir/Observation/{world.alice_lab}/_history"))
    assert match_ids(search(reader, "Observation")) == [world.alice_obs]
    assert match_ids(search(reader, "Observation", {"category": "laboratory"})) == []
    assert match_ids(search(reader, "Observation", {"code": "2339-0"})) == []
    assert match_ids(search(reader, "Observation", {"patient": world.bob})) == []
    assert [e["resource"]["id"] for e in history_bundle(reader, "Observation")["entry"]] == [world.alice_obs]
    _refused(reader.get(f"/fhir/Observation/{world.bob_obs}"))


def test_query_restricted_system_scope(app, world, backend_key):
    reader = _system(app, backend_key, "system/Observation.rs?category=laboratory")
    assert match_ids(search(reader, "Observation")) == [world.alice_lab]
    _refused(reader.get(f"/fhir/Observation/{world.alice_obs}"))


def test_a_restricted_write_scope_refuses_other_categories(app, client, world, backend_key):
    writer = _system(app, backend_key, "system/Observation.cruds?category=vital-signs")
    before = stored_state(client, *TYPES)
    lab = observation(world.alice, ("http://loinc.org", "2339-0", "mg/dL"), "2026-11-22T10:00:00Z",
                      category="laboratory")
    _refused(writer.post("/fhir/Observation", json=lab))
    _refused(put(writer, dict(read(client, "Observation", world.alice_obs), category=lab["category"])))
    _refused(writer.delete(f"/fhir/Observation/{world.alice_lab}"))
    assert stored_state(client, *TYPES) == before


# SMART v1 scopes ----------


def test_v1_patient_read_scope_reads_and_searches_but_cannot_create(app, client, world):
    scope = "launch/patient patient/*.read"
    reader = _clinician_for(app, world.alice, scope)
    assert read(reader, "Observation", world.alice_obs)["id"] == world.alice_obs
    assert sorted(match_ids(search(reader, "Observation"))) == sorted([world.alice_obs, world.alice_lab])
    _refused(reader.get(f"/fhir/Observation/{world.bob_obs}"))
    before = stored_state(client, *TYPES)
    _refused(reader.post("/fhir/Observation", json=observation(world.alice)), "patient/Observation.c")
    _refused(reader.delete(f"/fhir/Observation/{world.alice_obs}"), "patient/Observation.d")
    assert stored_state(client, *TYPES) == before


def test_v1_patient_read_scope_for_a_patient_user(app, world):
    reader = _patient_reader(app, scope="patient/*.read")
    assert read(reader, "Patient", world.alice)["id"] == world.alice
    assert match_ids(search(reader, "Patient")) == [world.alice]
    _refused(reader.post("/fhir/Observation", json=observation(world.alice)), "patient/Observation.c")


def test_v1_write_scope_does_not_read(app, client, world):
    writer = _clinician_for(app, world.alice, "launch/patient patient/Observation.write")
    _refused(writer.get(f"/fhir/Observation/{world.alice_obs}"), "patient/Observation.r")
    _refused(writer.get("/fhir/Observation"), "patient/Observation.s")
    created = writer.post("/fhir/Observation", json=observation(world.alice, when="2026-11-22T08:00:00Z"))
    assert created.status_code == 201


# _include ----------


def _include_supported(admin):
    bundle = search(admin, "Observation", {"_include": "Observation:patient"})
    return any(e.get("search", {}).get("mode") == "include" for e in bundle.get("entry", []))


def _included(bundle, resource_type):
    return sorted(e["resource"]["id"] for e in bundle.get("entry", [])
                  if e.get("search", {}).get("mode") == "include" and e["resource"]["resourceType"] == resource_type)


def test_include_never_gives_a_patient_token_another_patients_data(app, client, world):
    if not _include_supported(client):
        pytest.skip("needs _include (GET /fhir/Observation?_include=Observation:patient returns no included entry)")
    # An Observation of Alice measured with Bob's device: including the device must not reveal it.
    odd = create(client, observation(world.alice, when="2026-11-22T10:00:00Z", device=world.bob_device))
    reader = _patient_reader(app)
    bundle = search(reader, "Observation", {"_include": "Observation:patient"})
    assert _included(bundle, "Patient") == [world.alice]
    for include in ("Observation:device", "Observation:subject", "*"):
        bundle = search(reader, "Observation", {"_include": include})
        assert sorted(match_ids(bundle)) == sorted([world.alice_obs, world.alice_lab, odd["id"]])
        assert _included(bundle, "Device") == [], include
        assert set(_included(bundle, "Patient")) <= {world.alice}, include
        assert "DEV-B" not in orjson.dumps(bundle).decode() and "Bobsworth" not in orjson.dumps(bundle).decode()
    bundle = search(reader, "Device", {"_include": "Device:patient"})
    assert match_ids(bundle) == [world.alice_device] and _included(bundle, "Patient") == [world.alice]


def test_include_is_confined_to_the_patient_in_context_for_user_level_searches(app, client, world):
    if not _include_supported(client):
        pytest.skip("needs _include (GET /fhir/Observation?_include=Observation:patient returns no included entry)")
    scope = "launch/patient user/Observation.rs patient/Patient.rs"
    reader = _clinician_for(app, world.alice, scope)
    bundle = search(reader, "Observation", {"_include": "Observation:patient"})
    assert sorted(match_ids(bundle)) == sorted([world.alice_obs, world.alice_lab, world.bob_obs])
    assert _included(bundle, "Patient") == [world.alice]
    assert "Bobsworth" not in orjson.dumps(bundle).decode()


# Ingestion scopes ----------


@pytest.fixture()
def vendors(app, client):
    """Two device vendors holding ingest:write only; templates loaded by the admin (ingest:admin)."""
    put_templates(client)
    first = register_key_backend(app, "ingest:write", name="vendor A")
    second = register_key_backend(app, "ingest:write", name="vendor B")
    return (as_bearer(app, backend_access(app.test_client(), first, "ingest:write")),
            as_bearer(app, backend_access(app.test_client(), second, "ingest:write")))


def _dead_letter(vendor, body):
    response = post(vendor, body)
    assert response.status_code == 200, response.get_json()
    [result] = response.get_json()["results"]
    assert result["status"] == "rejected"
    return result["deadLetter"]


def test_a_vendor_posts_messages_and_sees_only_its_own_dead_letters(app, client, vendors):
    vendor_a, vendor_b = vendors
    accepted = post(vendor_a, heart_rate(72))
    assert accepted.status_code == 200 and accepted.get_json()["accepted"] == 1
    own = _dead_letter(vendor_a, {"unrelated": True})
    theirs = _dead_letter(vendor_b, {"unrelated": "b"})
    listed = vendor_a.get("/ingest/dead-letters")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.get_json()["items"]] == [own]
    assert vendor_a.get(f"/ingest/dead-letters/{own}").get_json()["payload"] == '{"unrelated":true}'
    for response in (vendor_a.get(f"/ingest/dead-letters/{theirs}"),
                     vendor_a.delete(f"/ingest/dead-letters/{theirs}"),
                     vendor_a.post(f"/ingest/dead-letters/{theirs}/$replay")):
        assert issues(response, 404)[0]["code"] == "not-found"
    assert vendor_b.get(f"/ingest/dead-letters/{theirs}").status_code == 200, "still there"
    admin_view = client.get("/ingest/dead-letters").get_json()["items"]
    assert sorted(item["id"] for item in admin_view) == sorted([own, theirs])


def test_a_vendor_cannot_change_templates(app, client, vendors):
    vendor_a, _ = vendors
    version = client.get("/ingest/templates").get_json()["version"]
    response = vendor_a.put("/ingest/templates", json=client.get("/ingest/templates").get_json())
    _refused(response, "ingest:admin")
    assert vendor_a.get("/ingest/templates").status_code == 200
    assert client.get("/ingest/templates").get_json()["version"] == version


@pytest.mark.parametrize("path", ["/fhir/Observation", "/fhir/Patient", "/fhir/Device", "/fhir/Patient/_history"])
def test_a_vendor_cannot_read_fhir_data(app, client, vendors, path):
    vendor_a, _ = vendors
    post(vendor_a, heart_rate(72))
    _refused(vendor_a.get(path))


def test_a_vendor_cannot_read_a_resource_it_sent(app, client, vendors):
    vendor_a, _ = vendors
    [reference] = post(vendor_a, heart_rate(72)).get_json()["results"][0]["observations"]
    _refused(vendor_a.get(f"/fhir/{reference}"))


def test_without_ingest_write_messages_are_refused_and_nothing_is_stored(app, client, world, backend_key):
    put_templates(client)
    reader = _system(app, backend_key, "system/*.rs")
    before = stored_state(client, *TYPES)
    _refused(post(reader, heart_rate(72)), "ingest:write")
    _refused(reader.get("/ingest/dead-letters"), "ingest:write")
    _refused(reader.get("/ingest/templates"), "ingest:write")
    assert stored_state(client, *TYPES) == before
    assert client.get("/ingest/dead-letters").get_json()["items"] == []


# The audit trail ----------


def test_system_wildcard_without_the_audit_scope_is_403_on_audit_events(app, world, backend_key):
    reader = _system(app, backend_key, "system/*.rs")
    _refused(reader.get("/fhir/AuditEvent"), "system/AuditEvent.s")
    _refused(reader.get("/fhir/AuditEvent/some-id"), "system/AuditEvent.r")
    _refused(reader.get("/fhir/AuditEvent/_history"), "system/AuditEvent.s")
    wide = _system(app, backend_key, "system/*.cruds")
    _refused(wide.get("/fhir/AuditEvent"), "system/AuditEvent.s")


def test_a_wildcard_request_does_not_get_the_audit_scope(app, world, backend_key):
    """A client registered for the audit trail still has to name it when it asks for a token."""
    backend = register_key_backend(app, "system/*.rs system/AuditEvent.rs", backend_key)
    response = backend_request(app.test_client(), backend, "system/*.rs")
    assert response.get_json()["scope"] == "system/*.rs"
    reader = as_bearer(app, response.get_json()["access_token"])
    _refused(reader.get("/fhir/AuditEvent"), "system/AuditEvent.s")


def test_a_patient_token_cannot_read_the_audit_trail(app, world):
    scope = "patient/*.rs"
    reader = _patient_reader(app, scope=scope)
    _refused(reader.get("/fhir/AuditEvent"))


def _audit_recorded(app):
    return hasattr(app.extensions["fhir_iomt"], "audit")


def _audit_events(auditor):
    bundle = search(auditor, "AuditEvent", {"_count": "1000"})
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def _mentions(event, *texts):
    serialized = orjson.dumps(event).decode()
    return all(text in serialized for text in texts)


def _clients(event):
    return {a["who"]["identifier"]["value"] for a in event["agent"]
            if a["who"].get("identifier", {}).get("system") == "urn:fhir-iomt:client"}


def _references(event):
    return {e["what"]["reference"] for e in event.get("entity", []) if "reference" in e["what"]}


def _events_of(events, interaction, outcome):
    return [e for e in events if e["subtype"][0]["code"] == interaction and e["outcome"] == outcome]


def test_accesses_and_refusals_are_audited_without_content(app, client, world, backend_key, anonymous):
    if not _audit_recorded(app):
        pytest.skip("needs AuditEvent recording (services.audit is not in the tree yet)")
    auditor = _system(app, backend_key, "system/AuditEvent.rs")
    observer = register_key_backend(app, "system/Observation.rs", name="observer only")
    observer_token = backend_access(app.test_client(), observer, "system/Observation.rs")
    reader = register_key_backend(app, "system/Patient.rs", name="patient reader")
    reader_token = backend_access(app.test_client(), reader, "system/Patient.rs")
    alice = f"Patient/{world.alice}"

    assert anonymous.get(f"/fhir/{alice}").status_code == 401
    assert as_bearer(app, observer_token).get(f"/fhir/{alice}").status_code == 403
    assert as_bearer(app, reader_token).get(f"/fhir/{alice}").status_code == 200

    events = _audit_events(auditor)
    refused = [e for e in _events_of(events, "read", "4") if alice in _references(e)]
    unauthenticated = [e for e in refused if not _clients(e)]
    assert len(unauthenticated) == 1 and unauthenticated[0]["outcomeDesc"].startswith("HTTP 401")
    forbidden = [e for e in refused if _clients(e) == {observer.client_id}]
    assert len(forbidden) == 1 and forbidden[0]["outcomeDesc"].startswith("HTTP 403")
    [granted] = [e for e in _events_of(events, "read", "0") if _clients(e) == {reader.client_id}]
    assert alice in _references(granted)
    for event in events:
        assert event["resourceType"] == "AuditEvent"
        for secret in (*world.names.values(), observer_token, reader_token):
            assert not _mentions(event, secret), f"an AuditEvent holds content or a secret ({secret[:12]})"


def test_a_failed_login_is_audited_without_the_password(app, world, backend_key):
    if not _audit_recorded(app):
        pytest.skip("needs AuditEvent recording (services.audit is not in the tree yet)")
    flow = start(app, register_app(app, "patient/*.rs"), "patient/*.rs")
    assert post_login(flow, "alice", "Wrong-Password-123").status_code == 403
    events = _audit_events(_system(app, backend_key, "system/AuditEvent.rs"))
    failed = [e for e in events if e["outcome"] == "4" and _mentions(e, "alice")]
    assert failed, "the failed login was not recorded"
    assert not any(_mentions(e, "Wrong-Password-123") for e in events)


def test_the_audit_trail_is_readable_with_the_audit_scope(app, world, backend_key):
    if not _audit_recorded(app):
        pytest.skip("needs AuditEvent recording (services.audit is not in the tree yet)")
    auditor = _system(app, backend_key, "system/AuditEvent.rs")
    assert search(auditor, "AuditEvent")["resourceType"] == "Bundle"
    _refused(auditor.get("/fhir/Patient"), "system/Patient.s")
    before = len(_audit_events(auditor))
    refused = auditor.post("/fhir/AuditEvent", json={"resourceType": "AuditEvent"})
    assert refused.status_code in (403, 405), refused.get_data(as_text=True)
    after = _audit_events(auditor)
    assert len(after) == before + 2, "only the audit records of the two requests were added"
    assert all(e.get("agent") and e.get("recorded") for e in after), "the posted AuditEvent was not stored"

