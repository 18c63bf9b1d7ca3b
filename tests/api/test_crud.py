"""Create, read, vread, update, delete, conditional create and the Prefer header (FHIR R4 http.html)."""

import re
from datetime import datetime
from email.utils import parsedate_to_datetime, parsedate_tz

import pytest

from .helpers import (
    BASE,
    FHIR_JSON,
    MRN_SYSTEM,
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
    total_of,
)

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# create ----------


def test_create_assigns_id_version_and_returns_location_and_etag(client):
    # R4 http.html#create: the server SHALL ignore a client id and meta.versionId/lastUpdated,
    # return 201 with Location [base]/[type]/[id]/_history/[vid], and SHOULD return an ETag.
    body = observation("p1", when="2026-11-20T10:00:00Z", value=71)
    body["id"] = "client-chosen"
    body["meta"] = {"versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z"}
    response = client.post("/fhir/Observation", json=body)

    assert response.status_code == 201
    stored = response.get_json()
    assert stored["id"] and stored["id"] != "client-chosen"
    assert stored["meta"]["versionId"] == "1"
    assert INSTANT.match(stored["meta"]["lastUpdated"])
    assert _instant(stored["meta"]["lastUpdated"]).year > 2001
    assert response.headers["Location"] == f"{BASE}/Observation/{stored['id']}/_history/1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.mimetype == FHIR_JSON
    # The submitted content is kept as it was sent.
    assert stored["valueQuantity"] == body["valueQuantity"]
    assert stored["code"] == body["code"] and stored["subject"] == body["subject"]
    # The client id names nothing; the server id does.
    assert client.get("/fhir/Observation/client-chosen").status_code == 404
    assert read(client, "Observation", stored["id"]) == stored


def test_two_creates_get_distinct_ids(client):
    first = create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    second = create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    assert first["id"] != second["id"]
    assert total_of(client, "Observation") == 2


# read / vread ----------


def test_read_returns_the_current_version_with_etag(client):
    stored = create(client, patient("Holt", ["Eve"], mrn="m1"))
    response = client.get(f"/fhir/Patient/{stored['id']}")
    assert response.status_code == 200
    assert response.get_json() == stored
    assert response.headers["ETag"] == 'W/"1"'


def test_last_modified_is_an_http_date_of_meta_last_updated(client):
    # R4 http.html#versioning: meta.lastUpdated is carried in the HTTP Last-Modified header, which is
    # an HTTP-date (RFC 7232 section 2.2, e.g. "Sat, 02 Feb 2013 12:02:47 GMT" in the R4 example).
    stored = create(client, patient("Holt", ["Eve"]))
    response = client.get(f"/fhir/Patient/{stored['id']}")
    header = response.headers["Last-Modified"]
    assert parsedate_tz(header) is not None and header.endswith(" GMT"), f"not an HTTP-date: {header!r}"
    assert parsedate_to_datetime(header) == _instant(stored["meta"]["lastUpdated"]).replace(microsecond=0)


def test_vread_returns_each_version(client):
    first = create(client, patient("Holt", ["Eve"], mrn="m1"))
    second = put(client, dict(first, gender="female")).get_json()

    old = client.get(f"/fhir/Patient/{first['id']}/_history/1")
    assert old.status_code == 200
    assert old.headers["ETag"] == 'W/"1"'
    assert old.get_json() == first and "gender" not in old.get_json()
    new = client.get(f"/fhir/Patient/{first['id']}/_history/2")
    assert new.status_code == 200
    assert new.get_json() == second and new.get_json()["gender"] == "female"


@pytest.mark.parametrize("version", ["3", "0", "x"])
def test_vread_of_unknown_version_is_404(client, version):
    stored = create(client, patient("Holt"))
    issues(client.get(f"/fhir/Patient/{stored['id']}/_history/{version}"), 404)


def test_read_of_unknown_id_is_404(client):
    create(client, patient("Holt"))
    issues(client.get("/fhir/Patient/does-not-exist"), 404)


# update ----------


def test_update_makes_a_new_version(client):
    # R4 http.html#update: 200 for an update, with ETag and meta of the new version.
    stored = create(client, observation("p1", when="2026-11-20T10:00:00Z", value=70))
    changed = dict(stored, valueQuantity=dict(stored["valueQuantity"], value=75), status="amended")
    response = put(client, changed)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == stored["id"]
    assert body["meta"]["versionId"] == "2"
    assert response.headers["ETag"] == 'W/"2"'
    assert _instant(body["meta"]["lastUpdated"]) >= _instant(stored["meta"]["lastUpdated"])
    current = read(client, "Observation", stored["id"])
    assert current["valueQuantity"]["value"] == 75 and current["status"] == "amended"
    assert total_of(client, "Observation") == 1


def test_update_ignores_client_meta_version(client):
    stored = create(client, patient("Holt"))
    response = put(client, dict(stored, meta={"versionId": "42"}, gender="other"))
    assert response.status_code == 200
    assert response.get_json()["meta"]["versionId"] == "2"


def test_update_of_unknown_id_creates_it_with_the_client_id(client):
    # R4 http.html#upsert: update on a new id creates the resource (201) with that id.
    body = dict(observation("p1", when="2026-11-20T10:00:00Z"), id="hr-2026-11-20")
    response = put(client, body)

    assert response.status_code == 201
    stored = response.get_json()
    assert stored["id"] == "hr-2026-11-20"
    assert stored["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{BASE}/Observation/hr-2026-11-20/_history/1"
    assert read(client, "Observation", "hr-2026-11-20") == stored


def test_if_match_with_the_current_version_updates(client):
    stored = create(client, patient("Holt"))
    response = put(client, dict(stored, gender="male"), headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'


def test_stale_if_match_is_412_and_changes_nothing(client):
    # R4 http.html#concurrency: a version that does not match gives 412 Precondition Failed.
    stored = create(client, patient("Holt"))
    second = put(client, dict(stored, gender="male"), headers={"If-Match": 'W/"1"'}).get_json()
    before = stored_state(client, "Patient")

    response = put(client, dict(stored, gender="female"), headers={"If-Match": 'W/"1"'})

    issues(response, 412)
    assert read(client, "Patient", stored["id"]) == second
    assert stored_state(client, "Patient") == before


@pytest.mark.parametrize("if_match", ["garbage", 'W/"abc"', 'W/""'])
def test_malformed_if_match_is_400_and_changes_nothing(client, if_match):
    stored = create(client, patient("Holt"))
    before = stored_state(client, "Patient")

    issues(put(client, dict(stored, gender="female"), headers={"If-Match": if_match}), 400)

    assert read(client, "Patient", stored["id"]) == stored
    assert stored_state(client, "Patient") == before


# delete ----------


def test_delete_then_read_is_gone_and_history_is_kept(client):
    # R4 http.html#delete and #read: reads of a deleted resource give 410; #vread: the version that is
    # a deletion gives 410; earlier versions stay readable; search no longer finds it.
    stored = create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    kept = create(client, observation("p1", when="2026-11-21T10:00:00Z"))

    response = client.delete(f"/fhir/Observation/{stored['id']}")
    assert response.status_code in (200, 204)

    issues(client.get(f"/fhir/Observation/{stored['id']}"), 410)
    issues(client.get(f"/fhir/Observation/{stored['id']}/_history/2"), 410)
    old = client.get(f"/fhir/Observation/{stored['id']}/_history/1")
    assert old.status_code == 200 and old.get_json() == stored
    assert match_ids(search(client, "Observation", {"patient": "p1"})) == [kept["id"]]


def test_delete_of_unknown_id_is_404(client):
    # The brief asks for 404 here (R5 http.html#delete); R4 also allows 200/204 for a missing resource.
    create(client, patient("Holt"))
    before = stored_state(client, "Patient")
    issues(client.delete("/fhir/Patient/never-existed"), 404)
    assert stored_state(client, "Patient") == before


def test_delete_of_a_deleted_resource_has_no_effect(client):
    # R4 http.html#delete: deleting an already deleted resource has no effect (200 or 204).
    stored = create(client, patient("Holt"))
    assert client.delete(f"/fhir/Patient/{stored['id']}").status_code in (200, 204)
    assert client.delete(f"/fhir/Patient/{stored['id']}").status_code in (200, 204)
    assert history_bundle(client, "Patient", stored["id"])["total"] == 2


def test_update_after_delete_brings_the_resource_back_with_the_next_version(client):
    stored = create(client, patient("Holt"))
    client.delete(f"/fhir/Patient/{stored['id']}")
    response = put(client, dict(stored, gender="female"))
    assert response.status_code == 201
    assert response.get_json()["meta"]["versionId"] == "3"
    assert read(client, "Patient", stored["id"])["gender"] == "female"


# conditional create ----------


def test_if_none_exist_without_match_creates(client):
    # R4 http.html#ccreate: no match -> the create is processed as usual.
    create(client, patient("Other", mrn="m0"))
    response = client.post(
        "/fhir/Patient",
        json=patient("Holt", mrn="m1"),
        headers={"If-None-Exist": f"identifier={MRN_SYSTEM}|m1"},
    )
    assert response.status_code == 201
    assert response.headers["ETag"] == 'W/"1"'
    assert total_of(client, "Patient", {"identifier": f"{MRN_SYSTEM}|m1"}) == 1
    assert total_of(client, "Patient") == 2


def test_if_none_exist_with_one_match_returns_it_and_creates_nothing(client):
    # R4 http.html#ccreate: one match -> the server ignores the post and returns 200 OK.
    existing = create(client, patient("Holt", mrn="m1"))
    before = stored_state(client, "Patient")

    response = client.post(
        "/fhir/Patient",
        json=patient("Holt-Again", mrn="m1"),
        headers={"If-None-Exist": f"identifier={MRN_SYSTEM}|m1"},
    )

    assert response.status_code == 200
    assert response.get_json() == existing
    assert response.headers["ETag"] == 'W/"1"'
    assert stored_state(client, "Patient") == before


def test_if_none_exist_with_two_matches_is_412_and_creates_nothing(client):
    # R4 http.html#ccreate: multiple matches -> 412 Precondition Failed.
    create(client, patient("Holt", mrn="m1"))
    create(client, patient("Holt", mrn="m1"))
    before = stored_state(client, "Patient")

    response = client.post(
        "/fhir/Patient", json=patient("Holt", mrn="m1"), headers={"If-None-Exist": "identifier=m1"}
    )

    issues(response, 412)
    assert stored_state(client, "Patient") == before


def test_if_none_exist_with_an_unknown_parameter_is_rejected(client):
    # R4 http.html#ccreate runs the condition as a search; a condition with a parameter the server
    # cannot evaluate must not be silently dropped (that would match everything or nothing), so the
    # server evaluates it strictly (search.html#errors, handling=strict): 400 and nothing created.
    create(client, patient("Holt", mrn="m1"))
    before = stored_state(client, "Patient")
    response = client.post(
        "/fhir/Patient", json=patient("Holt", mrn="m1"), headers={"If-None-Exist": "not-a-parameter=m1"}
    )
    issues(response, 400)
    assert stored_state(client, "Patient") == before


# Prefer: return ---------------------------------------------------------------------------------------


def test_prefer_return_minimal_on_create_has_no_body_but_headers(client):
    # R4 http.html#prefer: return=minimal asks for no body.
    response = client.post(
        "/fhir/Observation",
        json=observation("p1", when="2026-11-20T10:00:00Z"),
        headers={"Prefer": "return=minimal"},
    )
    assert response.status_code == 201
    assert response.get_data() == b""
    assert response.headers["ETag"] == 'W/"1"'
    location = response.headers["Location"]
    assert re.fullmatch(rf"{re.escape(BASE)}/Observation/[A-Za-z0-9\-.]{{1,64}}/_history/1", location)
    stored = client.get(location)
    assert stored.status_code == 200 and stored.get_json()["meta"]["versionId"] == "1"


def test_prefer_return_minimal_on_update(client):
    stored = create(client, patient("Holt"))
    response = put(client, dict(stored, gender="male"), headers={"Prefer": "return=minimal"})
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["ETag"] == 'W/"2"'
    assert read(client, "Patient", stored["id"])["gender"] == "male"


def test_prefer_return_representation_returns_the_resource(client):
    response = client.post("/fhir/Patient", json=patient("Holt"), headers={"Prefer": "return=representation"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["resourceType"] == "Patient" and body["name"] == [{"family": "Holt"}]
    assert read(client, "Patient", body["id"]) == body


def test_prefer_return_operation_outcome(client):
    # R4 http.html#prefer: return=OperationOutcome returns an OperationOutcome instead of the resource.
    response = client.post(
        "/fhir/Patient", json=patient("Holt"), headers={"Prefer": "return=OperationOutcome"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert all(i["severity"] in ("information", "warning") for i in body["issue"])
    location = response.headers["Location"]
    assert response.headers["ETag"] == 'W/"1"'
    assert client.get(location).status_code == 200
    assert total_of(client, "Patient") == 1


def test_conditional_create_from_eight_threads_at_once_creates_one_resource(app, client):
    import threading

    body = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "MRN-RACE"}]}
    statuses, barrier = [], threading.Barrier(8)

    def send():
        own = app.test_client()
        own.environ_base.update(client.environ_base)
        barrier.wait()
        response = own.post("/fhir/Patient", json=body, headers={"If-None-Exist": "identifier=urn:mrn|MRN-RACE"})
        statuses.append((response.status_code, response.get_json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(code for code, _ in statuses) == [200] * 7 + [201]
    assert len({rid for _, rid in statuses}) == 1
    total = client.get("/fhir/Patient?identifier=urn:mrn|MRN-RACE&_summary=count").get_json()["total"]
    assert total == 1


def test_conditional_create_after_the_match_was_deleted_creates_again(client):
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "MRN-GONE"}]}
    headers = {"If-None-Exist": "identifier=urn:mrn|MRN-GONE"}
    first = client.post("/fhir/Patient", json=body, headers=headers)
    assert first.status_code == 201
    assert client.delete(f"/fhir/Patient/{first.get_json()['id']}").status_code == 204
    second = client.post("/fhir/Patient", json=body, headers=headers)
    assert second.status_code == 201 and second.get_json()["id"] != first.get_json()["id"]
    assert client.post("/fhir/Patient", json=body, headers=headers).status_code == 200
