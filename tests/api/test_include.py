"""_include in searches (FHIR R4 search.html#include): referenced resources beside the matches."""

import time

import pytest

from fhir_iomt.fhir.query import Include, parse_include

from .helpers import (
    BASE,
    create,
    device,
    follow,
    issues,
    link,
    match_ids,
    matches,
    observation,
    patient,
    put,
    search,
)

OTHER_SERVER = "https://other-hospital.example/fhir"


def _put(client, resource, resource_id):
    response = put(client, dict(resource, id=resource_id))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _included(bundle):
    """('Type/id') of the entries with search.mode 'include', in Bundle order."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode") == "include"]


def _modes(bundle):
    return [e["search"]["mode"] for e in bundle.get("entry", [])]


def _outcomes(bundle):
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]


@pytest.fixture()
def ward(client):
    """Patients p1 and p2, device d1 (of p1), and an Observation of each patient (p1's measured by d1)."""
    _put(client, patient("Holt", ["Eve"]), "p1")
    _put(client, patient("Mull", ["Anna"]), "p2")
    _put(client, device("SN-001", patient_id="p1"), "d1")
    return {
        "o1": create(client, observation("p1", when="2026-11-20T10:00:00Z", device="d1"))["id"],
        "o2": create(client, observation("p2", when="2026-11-20T11:00:00Z"))["id"],
    }


# Following references ----------


def test_patient_include_adds_each_referenced_patient_after_the_matches(client, ward):
    bundle = search(client, "Observation", {"_include": "Observation:patient"})

    assert sorted(match_ids(bundle)) == sorted(ward.values())
    assert sorted(_included(bundle)) == ["Patient/p1", "Patient/p2"]
    assert _modes(bundle) == ["match", "match", "include", "include"]
    entry = next(e for e in bundle["entry"] if e["search"]["mode"] == "include" and e["resource"]["id"] == "p1")
    assert entry["fullUrl"] == f"{BASE}/Patient/p1"
    assert entry["resource"]["name"][0]["family"] == "Holt"
    assert bundle["total"] == 2  # matches only


def test_device_include_and_device_patient_include(client, ward):
    bundle = search(client, "Observation", {"_include": "Observation:device"})
    assert _included(bundle) == ["Device/d1"]

    devices = search(client, "Device", {"_include": "Device:patient"})
    assert match_ids(devices) == ["d1"]
    assert _included(devices) == ["Patient/p1"]


def test_several_includes_and_the_wildcard(client, ward):
    both = search(client, "Observation", [("_include", "Observation:patient"), ("_include", "Observation:device")])
    assert sorted(_included(both)) == ["Device/d1", "Patient/p1", "Patient/p2"]
    for wildcard in ("*", "Observation:*"):
        assert sorted(_included(search(client, "Observation", {"_include": wildcard}))) == sorted(_included(both))


def test_subject_include_with_a_target_type(client, ward):
    by_device = create(client, observation(subject="Device/d1", when="2026-11-20T12:00:00Z"))["id"]
    params = {"_id": by_device}

    assert _included(search(client, "Observation", {**params, "_include": "Observation:subject"})) == ["Device/d1"]
    assert _included(search(client, "Observation", {**params, "_include": "Observation:subject:Patient"})) == []
    assert _included(search(client, "Observation", {**params, "_include": "Observation:subject:Device"})) == [
        "Device/d1"
    ]
    everyone = search(client, "Observation", {"_include": "Observation:subject:Patient"})
    assert sorted(_included(everyone)) == ["Patient/p1", "Patient/p2"]


def test_include_goes_with_the_other_parameters(client, ward):
    bundle = search(client, "Observation", {"patient": "p2", "_include": "Observation:patient"})
    assert match_ids(bundle) == [ward["o2"]]
    assert _included(bundle) == ["Patient/p2"]


def test_an_absolute_reference_on_this_server_is_included(client, ward):
    own = create(client, observation(subject=f"{BASE}/Patient/p2", when="2026-11-20T12:00:00Z"))["id"]
    bundle = search(client, "Observation", {"_id": own, "_include": "Observation:patient"})
    assert _included(bundle) == ["Patient/p2"]


def test_a_patient_referenced_many_times_is_included_once(client, ward):
    for hour in range(10, 15):
        create(client, observation("p1", when=f"2026-11-21T{hour}:00:00Z"))
    params = [("patient", "p1"), ("_include", "Observation:patient"), ("_include", "Observation:subject"),
              ("_include", "Observation:patient")]
    bundle = search(client, "Observation", params)

    assert len(matches(bundle)) == 6
    assert _included(bundle) == ["Patient/p1"]
    assert link(bundle, "self").count("_include=Observation%3Apatient") == 1


def test_post_search_takes_include(client, ward):
    response = client.post("/fhir/Observation/_search", data={"_include": "Observation:patient", "patient": "p1"},
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert _included(response.get_json()) == ["Patient/p1"]


# References that lead nowhere ----------


def test_missing_deleted_foreign_and_contained_targets_are_skipped(client):
    _put(client, patient("Gone"), "gone")
    assert client.delete("/fhir/Patient/gone").status_code == 204
    contained = dict(
        observation(subject="#pat", when="2026-11-20T10:00:00Z"),
        contained=[{"resourceType": "Patient", "id": "pat"}],
    )
    created = [
        create(client, observation("ghost", when="2026-11-20T10:00:00Z")),
        create(client, observation("gone", when="2026-11-20T10:00:00Z")),
        create(client, observation(subject=f"{OTHER_SERVER}/Patient/p1", when="2026-11-20T10:00:00Z")),
        create(client, contained),
        create(client, observation("p1", when="2026-11-20T10:00:00Z", device="nowhere")),
    ]
    _put(client, patient("Holt"), "p1")  # shares its id with the other server's patient: never included for it

    bundle = search(client, "Observation", {"_include": "*"})

    assert sorted(match_ids(bundle)) == sorted(r["id"] for r in created)
    assert _included(bundle) == ["Patient/p1"]
    foreign = search(client, "Observation", {"_id": created[2]["id"], "_include": "Observation:subject"})
    assert _included(foreign) == []


# Paging and totals ----------


def test_every_page_includes_the_targets_of_its_own_matches(client):
    for index in range(5):
        _put(client, patient(f"Person{index}"), f"p{index}")
        create(client, observation(f"p{index}", when="2026-11-20T10:00:00Z"))
        time.sleep(0.002)  # distinct meta.lastUpdated: the default order is the creation order
    params = [("_include", "Observation:patient"), ("_count", "2"), ("_total", "accurate")]

    pages = [search(client, "Observation", params)]
    while link(pages[-1], "next"):
        assert "_include=Observation%3Apatient" in link(pages[-1], "next")
        pages.append(follow(client, link(pages[-1], "next")))

    assert [len(matches(p)) for p in pages] == [2, 2, 1]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert all("_include=Observation%3Apatient" in link(p, "self") for p in pages)
    for page in pages:
        referenced = [m["subject"]["reference"] for m in matches(page)]
        assert _included(page) == referenced
    assert [i for p in pages for i in _included(p)] == [f"Patient/p{i}" for i in range(5)]


def test_summary_count_with_include_gives_the_match_count_only(client, ward):
    bundle = search(client, "Observation", {"_include": "Observation:patient", "_summary": "count"})
    assert bundle["total"] == 2
    assert bundle.get("entry", []) == []


def test_count_zero_includes_nothing(client, ward):
    bundle = search(client, "Observation", {"_include": "Observation:patient", "_count": "0", "_total": "accurate"})
    assert bundle["total"] == 2
    assert _included(bundle) == []


# The include filter (the access check on included resources) ----------


def test_include_filter_leaves_out_the_resources_it_refuses(app, client, ward):
    service = app.extensions["fhir_iomt"].search
    request = service.parse("Observation", [("_include", "*")], base=BASE)
    asked = []

    def only_p2(resource_type, resource):
        asked.append(f"{resource_type}/{resource['id']}")
        return resource_type == "Patient" and resource["id"] == "p2"

    page = service.search(request, include_filter=only_p2)

    assert sorted(r["id"] for r in page.resources) == sorted(ward.values())
    assert [(r["resourceType"], r["id"]) for r in page.included] == [("Patient", "p2")]
    assert sorted(asked) == ["Device/d1", "Patient/p1", "Patient/p2"]
    unfiltered = service.search(service.parse("Observation", [("_include", "*")], base=BASE))
    assert len(unfiltered.included) == 3


# Bad input ----------


BAD_INCLUDES = [
    ("_include", "Observation:code"),  # not a reference parameter
    ("_include", "Foo:bar"),
    ("_include", "Observation"),
    ("_include", ""),
    ("_include", "Device:patient"),  # another source type than the one searched
    ("_include", "Observation:subject:Observation"),  # not a target of the parameter
    ("_include", "Observation:device:Patient"),
    ("_include", "Observation:patient:Patient:x"),
    ("_include:iterate", "Observation:patient"),
]


@pytest.mark.parametrize(("name", "value"), BAD_INCLUDES, ids=[f"{n}={v}" for n, v in BAD_INCLUDES])
def test_a_bad_include_is_refused_under_strict_handling(client, ward, name, value):
    response = client.get("/fhir/Observation", query_string={name: value}, headers={"Prefer": "handling=strict"})
    found = issues(response, 400)
    assert found[0]["code"] == "not-supported"


@pytest.mark.parametrize(("name", "value"), BAD_INCLUDES, ids=[f"{n}={v}" for n, v in BAD_INCLUDES])
def test_a_bad_include_is_ignored_and_reported_otherwise(client, ward, name, value):
    bundle = search(client, "Observation", [(name, value), ("patient", "p1")])

    assert match_ids(bundle) == [ward["o1"]]
    assert _included(bundle) == []
    [outcome] = _outcomes(bundle)
    assert outcome["issue"][0]["severity"] == "warning" and outcome["issue"][0]["code"] == "not-supported"
    assert f"{name}={value}" in outcome["issue"][0]["diagnostics"]
    assert "_include" not in link(bundle, "self")


def test_include_on_a_type_without_includes_is_refused(client):
    issues(client.get("/fhir/Patient", query_string={"_include": "*"}, headers={"Prefer": "handling=strict"}), 400)


def test_parse_include_forms():
    assert parse_include("Observation", "Observation:patient") == [Include("patient", ("Patient",))]
    assert parse_include("Observation", "Observation:subject") == [Include("subject", ("Patient", "Device"))]
    assert parse_include("Observation", "Observation:subject:Group") == [Include("subject", ())]
    assert parse_include("Observation", "Observation:*:Device") == [
        Include("subject", ("Device",)), Include("device", ("Device",))
    ]
    assert parse_include("Device", "*") == [Include("patient", ("Patient",))]


# CapabilityStatement ----------


def test_capability_statement_declares_search_include(client):
    statement = client.get("/fhir/metadata").get_json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert resources["Observation"]["searchInclude"] == [
        "*", "Observation:patient", "Observation:subject", "Observation:device"
    ]
    assert resources["Device"]["searchInclude"] == ["*", "Device:patient"]
    assert "searchInclude" not in resources["Patient"]
