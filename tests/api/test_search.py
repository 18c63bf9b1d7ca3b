"""Search on Observation, Device and Patient (FHIR R4 search.html)."""

import time
from urllib.parse import urlencode

import pytest

from .helpers import (
    BASE,
    BODY_TEMPERATURE,
    CATEGORY_SYSTEM,
    HEART_RATE,
    LOINC,
    MRN_SYSTEM,
    RESPIRATORY_RATE,
    SERIAL_SYSTEM,
    create,
    device,
    issues,
    link,
    match_ids,
    matches,
    observation,
    patient,
    search,
)

VENDOR = "urn:example:vendor-codes"
SNOMED = "http://snomed.info/sct"

# Observations of p1 at known moments (the server reads dates without a zone as UTC).
DATED = {
    "d19": "2026-11-19T12:00:00Z",
    "d20_plus5": "2026-11-20T10:00:00+05:00",  # 2026-11-20T05:00:00Z
    "d20": "2026-11-20T10:00:00Z",
    "d21": "2026-11-21T08:00:00Z",
    "month": "2026-11",  # the whole of November
    "period": ("2026-11-20T09:00:00Z", "2026-11-20T11:00:00Z"),
    "open": ("2026-11-22T00:00:00Z", None),  # still going on
    "none": None,  # no effective[x]
}


def _seed_dates(client):
    return {name: create(client, observation("p1", when=when))["id"] for name, when in DATED.items()}


def _names(bundle, ids_by_name):
    by_id = {v: k for k, v in ids_by_name.items()}
    return sorted(by_id[i] for i in match_ids(bundle))


# References ----------


@pytest.fixture()
def people(client):
    """Observations of p1 and p2, one with a Group subject of id p1 and one on a device subject."""
    return {
        "p1a": create(client, observation("p1", when="2026-11-20T10:00:00Z"))["id"],
        "p1b": create(client, observation("p1", when="2026-11-20T11:00:00Z", subject=f"{BASE}/Patient/p1"))[
            "id"
        ],
        "p2": create(client, observation("p2", when="2026-11-20T10:00:00Z"))["id"],
        "group": create(client, observation(subject="Group/p1", when="2026-11-20T10:00:00Z"))["id"],
        "dev": create(client, observation(subject="Device/d1", when="2026-11-20T10:00:00Z"))["id"],
    }


@pytest.mark.parametrize("value", ["p1", "Patient/p1", f"{BASE}/Patient/p1", "Patient/p1/_history/2"])
def test_patient_accepts_id_relative_and_absolute_references(client, people, value):
    # R4 search.html#reference: [id], [type]/[id] and the absolute URL name the same resource;
    # relative and absolute references stored in the resource both match.
    assert sorted(match_ids(search(client, "Observation", {"patient": value}))) == sorted(
        [people["p1a"], people["p1b"]]
    )


OTHER_SERVER = "https://other-hospital.example/fhir"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": "p1"}, "local"),
        ({"patient": "Patient/p1"}, "local"),
        ({"patient": f"{BASE}/Patient/p1"}, "local"),
        ({"subject": f"{OTHER_SERVER}/Patient/p1"}, "foreign"),
    ],
    ids=["id", "type-and-id", "own-absolute-url", "other-server-url"],
)
def test_a_reference_to_another_server_is_not_a_local_reference(client, params, expected):
    # R4 search.html#reference: [id] and [type]/[id] name a *local* reference; a relative reference
    # and an absolute URL match each other only when the URL resolves against this server's base.
    # Patient/p1 on another hospital's server is another person: mixing the two is a safety issue.
    ids = {
        "local": create(client, observation("p1", when="2026-11-20T10:00:00Z"))["id"],
        "foreign": create(
            client, observation(subject=f"{OTHER_SERVER}/Patient/p1", when="2026-11-20T10:00:00Z")
        )["id"],
    }
    assert match_ids(search(client, "Observation", params)) == [ids[expected]]


def test_search_entries_carry_full_url_and_match_mode(client, people):
    bundle = search(client, "Observation", {"patient": "p2"})
    assert bundle["entry"] == [
        {
            "fullUrl": f"{BASE}/Observation/{people['p2']}",
            "resource": bundle["entry"][0]["resource"],
            "search": {"mode": "match"},
        }
    ]
    assert bundle["entry"][0]["resource"]["id"] == people["p2"]


def test_patient_never_matches_other_subject_types(client, people):
    assert people["group"] not in match_ids(search(client, "Observation", {"patient": "p1"}))
    assert match_ids(search(client, "Observation", {"patient": "d1"})) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"subject": "Patient/p1"}, ["p1a", "p1b"]),
        ({"subject": "p1"}, ["p1a", "p1b", "group"]),
        ({"subject:Patient": "p1"}, ["p1a", "p1b"]),
        ({"subject:Group": "p1"}, ["group"]),
        ({"subject": "Device/d1"}, ["dev"]),
        ({"subject": f"{BASE}/Patient/p2"}, ["p2"]),
        ({"patient": "p1,p2"}, ["p1a", "p1b", "p2"]),
    ],
)
def test_subject_reference_forms(client, people, params, expected):
    assert sorted(match_ids(search(client, "Observation", params))) == sorted(people[n] for n in expected)


# Tokens ----------


@pytest.fixture()
def coded(client):
    return {
        "hr": create(client, observation("p1", HEART_RATE, "2026-11-20T10:00:00Z"))["id"],
        "hr_vendor": create(
            client,
            observation(
                "p1", HEART_RATE, "2026-11-20T10:01:00Z", extra_codings=[{"system": VENDOR, "code": "HR"}]
            ),
        )["id"],
        "rr": create(client, observation("p1", RESPIRATORY_RATE, "2026-11-20T10:00:00Z", 16))["id"],
        "temp": create(
            client,
            observation(
                "p1",
                BODY_TEMPERATURE,
                "2026-11-20T10:00:00Z",
                37.1,
                category="laboratory",
                status="preliminary",
            ),
        )["id"],
        "no_system": create(client, observation("p1", (None, "8867-4", "/min"), "2026-11-20T10:00:00Z"))[
            "id"
        ],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{LOINC}|8867-4", ["hr", "hr_vendor"]),
        ("8867-4", ["hr", "hr_vendor", "no_system"]),
        ("|8867-4", ["no_system"]),
        (f"{LOINC}|", ["hr", "hr_vendor", "rr", "temp"]),
        (f"{VENDOR}|HR", ["hr_vendor"]),
        (f"{LOINC}|9279-1,{LOINC}|8310-5", ["rr", "temp"]),
        ("9279-1,8310-5", ["rr", "temp"]),
        (f"{SNOMED}|8867-4", []),
        (f"{LOINC}|0000-0", []),
    ],
)
def test_code_token_forms(client, coded, value, expected):
    # R4 search.html#token: [system]|[code], [code], |[code] (no system), [system]| ; comma is OR.
    assert sorted(match_ids(search(client, "Observation", {"code": value}))) == sorted(
        coded[n] for n in expected
    )


def test_repeated_parameters_are_and(client, coded):
    # R4 search.html#combining: a repeated parameter is AND, a comma inside one value is OR.
    found = search(client, "Observation", [("code", f"{LOINC}|8867-4"), ("code", f"{VENDOR}|HR")])
    assert match_ids(found) == [coded["hr_vendor"]]
    found = search(client, "Observation", [("code", f"{LOINC}|9279-1"), ("code", f"{LOINC}|8310-5")])
    assert match_ids(found) == []
    found = search(client, "Observation", [("code", "8867-4"), ("date", "2026-11-20T10:01:00Z")])
    assert match_ids(found) == [coded["hr_vendor"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": f"{CATEGORY_SYSTEM}|vital-signs"}, ["hr", "hr_vendor", "rr", "no_system"]),
        ({"category": "laboratory"}, ["temp"]),
        ({"status": "final"}, ["hr", "hr_vendor", "rr", "no_system"]),
        ({"status": "preliminary,amended"}, ["temp"]),
        ({"status": "amended"}, []),
    ],
)
def test_category_and_status(client, coded, params, expected):
    assert sorted(match_ids(search(client, "Observation", params))) == sorted(coded[n] for n in expected)


def test_id_parameter(client, coded):
    found = search(client, "Observation", {"_id": f"{coded['rr']},{coded['temp']},not-there"})
    assert sorted(match_ids(found)) == sorted([coded["rr"], coded["temp"]])
    assert match_ids(search(client, "Observation", {"_id": coded["hr"]})) == [coded["hr"]]


def test_device_reference(client):
    on_d1 = create(client, observation("p1", when="2026-11-20T10:00:00Z", device="d1"))["id"]
    create(client, observation("p1", when="2026-11-20T10:00:00Z", device="d2"))
    create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    for value in ("d1", "Device/d1", f"{BASE}/Device/d1"):
        assert match_ids(search(client, "Observation", {"device": value})) == [on_d1]


# Dates ----------


DATE_CASES = [
    # R4 search.html#prefix: the search value and the resource value are both ranges.
    ("2026-11-20", ["d20_plus5", "d20", "period"]),
    ("eq2026-11-20", ["d20_plus5", "d20", "period"]),
    ("ne2026-11-20", ["d19", "d21", "month", "open"]),
    ("lt2026-11-20", ["d19", "month"]),
    ("le2026-11-20", ["d19", "d20_plus5", "d20", "month", "period"]),
    ("gt2026-11-20", ["d21", "month", "open"]),
    ("ge2026-11-20", ["d20_plus5", "d20", "d21", "month", "period", "open"]),
    ("sa2026-11-20", ["d21", "open"]),
    ("eb2026-11-20", ["d19"]),
    ("2026-11", ["d19", "d20_plus5", "d20", "d21", "month", "period"]),
    ("2026", ["d19", "d20_plus5", "d20", "d21", "month", "period"]),
    ("2025", []),
    ("ne2025", ["d19", "d20_plus5", "d20", "d21", "month", "period", "open"]),
    ("2026-11-20T05:00:00Z", ["d20_plus5"]),
    ("2026-11-20T10:00:00+05:00", ["d20_plus5"]),
    ("2026-11-20T10:00:00Z", ["d20"]),
    ("2026-11-20T15:00:00+05:00", ["d20"]),
    ("2026-11-20T10:00Z", ["d20"]),
    ("ge2026-11-20T10:00:00Z", ["d20", "d21", "month", "period", "open"]),
    ("lt2026-11-20T10:00:00+05:00", ["d19", "month"]),
    ("gt2026-11-20T10:30:00Z", ["d21", "month", "period", "open"]),
    ("sa2026-11-20T10:30:00Z", ["d21", "open"]),
    ("eb2026-11-20T10:30:00Z", ["d19", "d20_plus5", "d20"]),
    ("2026-11-19,2026-11-21", ["d19", "d21"]),
]


@pytest.mark.parametrize(("value", "expected"), DATE_CASES, ids=[v for v, _ in DATE_CASES])
def test_date_prefixes_and_precisions(client, value, expected):
    ids = _seed_dates(client)
    found = search(client, "Observation", {"date": value})
    assert _names(found, ids) == sorted(expected)
    # A resource without a date never matches a date criterion.
    assert ids["none"] not in match_ids(found)


def test_date_range_with_two_parameters_is_and(client):
    ids = _seed_dates(client)
    found = search(client, "Observation", [("date", "ge2026-11-20"), ("date", "lt2026-11-21")])
    assert _names(found, ids) == sorted(["d20_plus5", "d20", "month", "period"])


def test_undated_observations_appear_without_a_date_criterion(client):
    ids = _seed_dates(client)
    assert _names(search(client, "Observation", {"patient": "p1"}), ids) == sorted(DATED)
    assert _names(search(client, "Observation", {"_sort": "date"}), ids) == sorted(DATED)


@pytest.mark.parametrize(
    "value",
    [
        "2026-13-01",
        "2026-02-30",
        "yesterday",
        "ge",
        "2026-11-20T25:00:00Z",
        "2026-11-20T10:00:00+5",
        "xx2026-11-20",
        "20261120",
    ],
)
def test_bad_date_value_is_400(client, value):
    create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    issues(client.get("/fhir/Observation", query_string={"date": value}), 400)


def test_last_updated(client):
    first = create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    time.sleep(0.005)  # distinct milliseconds for meta.lastUpdated
    second = create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    time.sleep(0.005)
    third = create(client, observation("p1", when="2026-11-20T10:00:00Z"))

    def found(value):
        return sorted(match_ids(search(client, "Observation", {"_lastUpdated": value})))

    assert found(f"ge{second['meta']['lastUpdated']}") == sorted([second["id"], third["id"]])
    assert found(f"lt{second['meta']['lastUpdated']}") == [first["id"]]
    assert found(second["meta"]["lastUpdated"]) == [second["id"]]
    assert found(f"gt{third['meta']['lastUpdated']}") == []
    assert found(third["meta"]["lastUpdated"][:4]) == sorted([first["id"], second["id"], third["id"]])


# Device and Patient ----------


@pytest.fixture()
def devices(client):
    oximeter = (SNOMED, "284030009")
    return {
        "ox": create(
            client,
            device("SN-001", patient_id="p1", type_code=oximeter, manufacturer="Nonin Medical", model="3150"),
        )["id"],
        "cuff": create(
            client,
            device(
                "SN-002",
                patient_id="p2",
                type_code=(SNOMED, "70665002"),
                manufacturer="Omron Healthcare",
                model="HEM-9210T",
            ),
        )["id"],
        "ox2": create(
            client, device("AB-003", type_code=oximeter, manufacturer="Masimo", model="MightySat 9900")
        )["id"],
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"identifier": f"{SERIAL_SYSTEM}|SN-001"}, ["ox"]),
        ({"identifier": "SN-002"}, ["cuff"]),
        ({"identifier": "urn:other|SN-001"}, []),
        ({"identifier": f"{SERIAL_SYSTEM}|"}, ["ox", "cuff", "ox2"]),
        ({"patient": "p1"}, ["ox"]),
        ({"patient": "Patient/p2"}, ["cuff"]),
        ({"type": f"{SNOMED}|284030009"}, ["ox", "ox2"]),
        ({"type": "70665002"}, ["cuff"]),
        ({"manufacturer": "omron"}, ["cuff"]),
        ({"manufacturer": "NONIN med"}, ["ox"]),
        ({"manufacturer": "Medical"}, []),
        ({"manufacturer:contains": "medic"}, ["ox"]),
        ({"model": "hem"}, ["cuff"]),
        ({"model": "mightysat"}, ["ox2"]),
        ({"model": "3150"}, ["ox"]),
        ({"model:exact": "hem-9210t"}, []),
        ({"model:exact": "HEM-9210T"}, ["cuff"]),
    ],
)
def test_device_search(client, devices, params, expected):
    assert sorted(match_ids(search(client, "Device", params))) == sorted(devices[n] for n in expected)


@pytest.fixture()
def people_records(client):
    return {
        "muller": create(
            client,
            patient("Müller", ["Jean-Pierre", "Ève"], mrn="m1", gender="male", birth_date="1980-05-02"),
        )["id"],
        "mull": create(
            client,
            patient("Mull", ["Anna"], mrn="m2", gender="female", birth_date="1980-11-30", text="Anna Mull"),
        )["id"],
        "holt": create(client, patient("Holt", ["Eve"], mrn="m3", gender="female", birth_date="1992"))["id"],
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"identifier": f"{MRN_SYSTEM}|m1"}, ["muller"]),
        ({"identifier": "m2"}, ["mull"]),
        ({"identifier": "urn:other|m1"}, []),
        # R4 search.html#string: case- and accent-insensitive match on the start of any name part.
        ({"name": "mul"}, ["muller", "mull"]),
        ({"name": "MÜLL"}, ["muller", "mull"]),
        ({"name": "muller"}, ["muller"]),
        ({"name": "eve"}, ["muller", "holt"]),
        ({"name": "EVE"}, ["muller", "holt"]),
        ({"name": "ull"}, []),
        ({"name": "anna mu"}, ["mull"]),
        ({"name:exact": "Mull"}, ["mull"]),
        ({"name:exact": "mull"}, []),
        ({"name:exact": "Müller"}, ["muller"]),
        ({"name:exact": "Muller"}, []),
        ({"name:contains": "ll"}, ["muller", "mull"]),
        ({"name:contains": "PIER"}, ["muller"]),
        ({"family": "mull"}, ["muller", "mull"]),
        ({"family": "anna"}, []),
        ({"family": "holt,mull"}, ["holt", "muller", "mull"]),
        ({"given": "jean-p"}, ["muller"]),
        ({"given": "eve"}, ["muller", "holt"]),
        ({"given": "holt"}, []),
        ({"birthdate": "1980"}, ["muller", "mull"]),
        ({"birthdate": "1980-05"}, ["muller"]),
        ({"birthdate": "1980-05-02"}, ["muller"]),
        ({"birthdate": "lt1985"}, ["muller", "mull"]),
        ({"birthdate": "ge1992-06-01"}, ["holt"]),
        ({"birthdate": "1992-06-01"}, []),
        ({"gender": "female"}, ["mull", "holt"]),
        ({"gender": "male"}, ["muller"]),
        ({"gender": "other"}, []),
    ],
)
def test_patient_search(client, people_records, params, expected):
    found = sorted(match_ids(search(client, "Patient", params)))
    assert found == sorted(people_records[n] for n in expected)


def test_patient_repeated_parameters_are_and(client, people_records):
    found = search(client, "Patient", [("name", "mul"), ("gender", "female")])
    assert match_ids(found) == [people_records["mull"]]
    found = search(client, "Patient", [("given", "eve"), ("given", "jean")])
    assert match_ids(found) == [people_records["muller"]]


# Result parameters ----------


def _seed_sortable(client):
    """Observations created in an order different from their effective dates."""
    order = ["2026-11-03T08:00:00Z", "2026-11-01T08:00:00Z", "2026-11-04T08:00:00Z", "2026-11-02T08:00:00Z"]
    created = []
    for when in order:
        created.append(create(client, observation("p1", when=when)))
        time.sleep(0.003)  # distinct meta.lastUpdated
    return created


@pytest.mark.parametrize(("sort", "reverse"), [("date", False), ("-date", True)])
def test_sort_by_date(client, sort, reverse):
    created = _seed_sortable(client)
    expected = [r["id"] for r in sorted(created, key=lambda r: r["effectiveDateTime"], reverse=reverse)]
    assert match_ids(search(client, "Observation", {"_sort": sort})) == expected


@pytest.mark.parametrize(("sort", "reverse"), [("_lastUpdated", False), ("-_lastUpdated", True)])
def test_sort_by_last_updated(client, sort, reverse):
    created = _seed_sortable(client)
    expected = [r["id"] for r in (reversed(created) if reverse else created)]
    assert match_ids(search(client, "Observation", {"_sort": sort})) == expected


@pytest.mark.parametrize(
    ("resource_type", "sort"),
    [
        ("Observation", "code"),
        ("Observation", "--date"),
        ("Observation", "date,_lastUpdated"),
        ("Patient", "date"),
        ("Observation", ""),
    ],
)
def test_unsupported_sort_is_400(client, resource_type, sort):
    create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    issues(client.get(f"/fhir/{resource_type}", query_string={"_sort": sort}), 400)


def test_summary_count_gives_the_total_and_no_entries(client):
    for day in (1, 2, 3):
        create(client, observation("p1", when=f"2026-11-0{day}T08:00:00Z"))
    create(client, observation("p2", when="2026-11-01T08:00:00Z"))
    bundle = search(client, "Observation", {"patient": "p1", "_summary": "count"})
    assert bundle["total"] == 3
    assert not matches(bundle)
    assert search(client, "Observation", {"_summary": "count"})["total"] == 4


def test_total_accurate_counts_every_match_beyond_the_page(client):
    for day in (1, 2, 3, 4, 5):
        create(client, observation("p1", when=f"2026-11-0{day}T08:00:00Z"))
    bundle = search(client, "Observation", {"patient": "p1", "_total": "accurate", "_count": "2"})
    assert bundle["total"] == 5
    assert len(matches(bundle)) == 2


def test_unknown_parameter_is_ignored_and_reported(client):
    # R4 search.html#errors: in lenient handling an unknown parameter is ignored, reported in an
    # OperationOutcome entry (search.mode 'outcome') and left out of the self link.
    kept = [create(client, observation(p, when="2026-11-20T10:00:00Z"))["id"] for p in ("p1", "p2")]
    bundle = search(client, "Observation", [("colour", "blue"), ("patient", "p1")])

    assert match_ids(bundle) == [kept[0]]
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1 and outcomes[0]["resourceType"] == "OperationOutcome"
    assert "colour" in " ".join(i.get("diagnostics", "") for i in outcomes[0]["issue"])
    self_link = link(bundle, "self")
    assert "colour" not in self_link and "patient=p1" in self_link


def test_strict_handling_rejects_an_unknown_parameter(client):
    create(client, observation("p1", when="2026-11-20T10:00:00Z"))
    response = client.get(
        "/fhir/Observation", query_string={"colour": "blue"}, headers={"Prefer": "handling=strict"}
    )
    issues(response, 400)
    lenient = client.get(
        "/fhir/Observation", query_string={"colour": "blue"}, headers={"Prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200


@pytest.mark.parametrize("count", ["abc", "-1", "1.5", ""])
def test_bad_count_is_400(client, count):
    issues(client.get("/fhir/Observation", query_string={"_count": count}), 400)


@pytest.mark.parametrize(
    ("resource_type", "name"),
    [
        ("Observation", "code:text"),
        ("Observation", "code:not"),
        ("Observation", "status:missing"),
        ("Observation", "date:missing"),
        ("Observation", "patient:Device"),
        ("Patient", "name:phonetic"),
        ("Patient", "gender:above"),
    ],
)
def test_unsupported_modifier_is_400(client, resource_type, name):
    issues(client.get(f"/fhir/{resource_type}", query_string={name: "x"}), 400)


@pytest.mark.parametrize("name", ["patient.name", "subject:Patient.name", "device.manufacturer"])
def test_chained_parameter_is_400(client, name):
    issues(client.get("/fhir/Observation", query_string={name: "Holt"}), 400)


@pytest.mark.parametrize("resource_type", ["Observation", "Patient"])
def test_post_search_with_a_form_body_gives_the_same_results_as_get(client, resource_type):
    # R4 http.html#search: POST [base]/[type]/_search has exactly the same semantics as the GET.
    _seed_dates(client)
    for name in ("Holt", "Hole", "Mull"):
        create(client, patient(name, gender="female"))
    params = {
        "Observation": [("date", "ge2026-11-20"), ("patient", "p1"), ("_sort", "-date"), ("_count", "3")],
        "Patient": [("name", "hol"), ("gender", "female")],
    }[resource_type]

    got = search(client, resource_type, params)
    posted = client.post(
        f"/fhir/{resource_type}/_search",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
    )
    assert posted.status_code == 200
    assert match_ids(posted.get_json()) == match_ids(got) and match_ids(got)
    assert posted.get_json().get("total") == got.get("total")
    assert link(posted.get_json(), "next") == link(got, "next")
