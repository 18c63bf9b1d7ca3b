"""Instance and type history (FHIR R4 http.html#history)."""

import time

from .helpers import (
    BASE,
    create,
    follow,
    history_bundle,
    issues,
    link,
    observation,
    patient,
    put,
)


def _pause():
    time.sleep(0.003)  # distinct meta.lastUpdated between writes, so "newest first" is well defined


def _versions(bundle):
    return [e["response"]["etag"] for e in bundle["entry"]]


def _one_patient_lifecycle(client):
    """Create, update twice, delete: four versions of one Patient."""
    first = create(client, patient("Holt", ["Eve"]))
    _pause()
    second = put(client, dict(first, gender="female")).get_json()
    _pause()
    third = put(client, dict(second, birthDate="1990-01-01")).get_json()
    _pause()
    assert client.delete(f"/fhir/Patient/{first['id']}").status_code in (200, 204)
    return first, second, third


def test_instance_history_lists_every_version_newest_first(client):
    first, second, third = _one_patient_lifecycle(client)
    create(client, patient("Other"))  # another resource's history stays out

    bundle = history_bundle(client, "Patient", first["id"])

    assert bundle["total"] == 4
    assert _versions(bundle) == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in bundle["entry"]] == ["DELETE", "PUT", "PUT", "POST"]
    assert bundle["entry"][0]["request"]["url"] == f"Patient/{first['id']}"
    assert bundle["entry"][3]["request"]["url"] == "Patient"
    assert [e["response"]["status"].split()[0] for e in bundle["entry"][1:]] == ["200", "200", "201"]
    # R4 http.html#history: a deletion is an entry with request.method DELETE and no resource.
    assert "resource" not in bundle["entry"][0]
    assert [e["resource"] for e in bundle["entry"][1:]] == [third, second, first]
    assert all(e["fullUrl"] == f"{BASE}/Patient/{first['id']}" for e in bundle["entry"])
    for entry in bundle["entry"][1:]:
        assert entry["response"]["etag"] == f'W/"{entry["resource"]["meta"]["versionId"]}"'
        assert entry["response"]["lastModified"] == entry["resource"]["meta"]["lastUpdated"]


def test_type_history_covers_every_resource_of_the_type_newest_first(client):
    a = create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    _pause()
    create(client, patient("Holt"))  # another type stays out
    _pause()
    b = create(client, observation("p2", when="2026-11-20T10:00:00Z"))
    _pause()
    a2 = put(client, dict(a, status="amended")).get_json()
    _pause()
    client.delete(f"/fhir/Observation/{b['id']}")

    bundle = history_bundle(client, "Observation")

    assert bundle["total"] == 4
    rows = [
        (e["fullUrl"].rsplit("/", 1)[-1], e["request"]["method"], e["response"]["etag"])
        for e in bundle["entry"]
    ]
    assert rows == [
        (b["id"], "DELETE", 'W/"2"'),
        (a["id"], "PUT", 'W/"2"'),
        (b["id"], "POST", 'W/"1"'),
        (a["id"], "POST", 'W/"1"'),
    ]
    assert bundle["entry"][1]["resource"] == a2
    assert history_bundle(client, "Patient")["total"] == 1


def test_history_pages_follow_next_links(client):
    stored = create(client, patient("Holt"))
    for gender in ("male", "female", "other", "unknown", "female"):
        _pause()
        stored = put(client, dict(stored, gender=gender)).get_json()

    first = history_bundle(client, "Patient", stored["id"], {"_count": "2"})
    pages = [first]
    while link(pages[-1], "next"):
        assert len(pages) < 20
        pages.append(follow(client, link(pages[-1], "next")))

    assert [len(p["entry"]) for p in pages] == [2, 2, 2]
    assert [v for p in pages for v in _versions(p)] == [f'W/"{n}"' for n in range(6, 0, -1)]
    assert all(p["total"] == 6 for p in pages)


def test_history_since(client):
    stored = create(client, patient("Holt"))
    _pause()
    second = put(client, dict(stored, gender="male")).get_json()
    _pause()
    put(client, dict(second, gender="female"))
    bundle = history_bundle(client, "Patient", stored["id"], {"_since": second["meta"]["lastUpdated"]})
    assert _versions(bundle) == ['W/"3"', 'W/"2"']
    assert bundle["total"] == 2


def test_history_of_a_resource_brought_back_by_update_reports_its_creation(client):
    # Bundle.entry.response.status is the status of that interaction: the PUT that re-created the
    # deleted resource answered 201 Created (R4 http.html#update), so its history entry says 201.
    stored = create(client, patient("Holt"))
    client.delete(f"/fhir/Patient/{stored['id']}")
    revived = put(client, dict(stored, gender="female"))
    assert revived.status_code == 201
    entry = history_bundle(client, "Patient", stored["id"])["entry"][0]
    assert entry["response"]["etag"] == 'W/"3"'
    assert entry["response"]["status"].split()[0] == "201"


def test_bad_history_parameters_are_400(client):
    stored = create(client, patient("Holt"))
    issues(client.get(f"/fhir/Patient/{stored['id']}/_history", query_string={"_count": "many"}), 400)
    issues(client.get("/fhir/Patient/_history", query_string={"_since": "last tuesday"}), 400)
    issues(client.get("/fhir/Patient/_history", query_string={"_page": "forged"}), 400)
