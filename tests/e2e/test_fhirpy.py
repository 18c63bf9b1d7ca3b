"""fhirpy (beda.software's SyncFHIRClient) against the real server process."""

import math
from datetime import timedelta

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, ResourceNotFound

from .builders import (
    BODY_WEIGHT,
    CATEGORY_SYSTEM,
    HEART_RATE,
    LOINC,
    MRN_SYSTEM,
    SERIAL_SYSTEM,
    UCUM,
    device,
    hours_after_start,
    instant,
    patient,
    vital_sign,
)

pytestmark = pytest.mark.e2e

FHIR_JSON = {"Accept": "application/fhir+json"}


@pytest.fixture()
def client(fhir_base, bearer):
    return SyncFHIRClient(fhir_base, authorization=bearer["Authorization"], requests_config={"timeout": 30})


def _create(client, data):
    resource = client.resource(data["resourceType"], **{k: v for k, v in data.items() if k != "resourceType"})
    resource.save()
    assert resource.id, f"the server gave no id to the created {data['resourceType']}"
    return resource


def _outcome(response):
    assert response.headers["Content-Type"].startswith("application/fhir+json"), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body


def test_patient_create_read_update_delete(client, fhir_base, bearer, tag):
    created = _create(client, patient(tag))
    assert created.meta.versionId == "1"
    assert created.meta.lastUpdated

    read = client.reference("Patient", created.id).to_resource()
    assert read.id == created.id
    assert read.name[0].family == f"E2e{tag}"
    assert read.identifier[0].value == f"MRN-{tag}"
    assert read.meta.versionId == "1"

    found = client.resources("Patient").search(identifier=f"{MRN_SYSTEM}|MRN-{tag}").fetch_all()
    assert [p.id for p in found] == [created.id]

    read["name"][0]["given"] = ["Grace"]
    read.save()
    assert read.meta.versionId == "2"
    again = client.reference("Patient", created.id).to_resource()
    assert again.name[0].given == ["Grace"]
    assert again.meta.versionId == "2"
    response = requests.get(f"{fhir_base}/Patient/{created.id}", headers={**FHIR_JSON, **bearer}, timeout=10)
    assert response.headers["ETag"] == 'W/"2"'
    old = requests.get(f"{fhir_base}/Patient/{created.id}/_history/1", headers={**FHIR_JSON, **bearer},
                       timeout=10)
    assert old.status_code == 200
    assert old.json()["name"][0]["given"] == ["Ada"]

    again.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", created.id).to_resource()
    gone = requests.get(f"{fhir_base}/Patient/{created.id}", headers={**FHIR_JSON, **bearer}, timeout=10)
    assert gone.status_code == 410, gone.text
    assert _outcome(gone)["issue"][0]["code"] == "deleted"
    assert client.resources("Patient").search(identifier=f"{MRN_SYSTEM}|MRN-{tag}").fetch_all() == []


def test_read_of_unknown_id_is_404(client, fhir_base, bearer):
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", "no-such-patient-e2e").to_resource()
    response = requests.get(f"{fhir_base}/Patient/no-such-patient-e2e", headers={**FHIR_JSON, **bearer},
                            timeout=10)
    assert response.status_code == 404
    assert _outcome(response)["issue"][0]["code"] == "not-found"


def test_stale_if_match_is_refused(fhir_base, bearer, tag):
    """Optimistic locking: an update against an old version fails with 412 and keeps the data."""
    token = bearer["Authorization"]
    plain = SyncFHIRClient(fhir_base, authorization=token, requests_config={"timeout": 30})
    created = _create(plain, patient(tag))
    created["gender"] = "other"
    created.save()  # version 2
    stale = SyncFHIRClient(fhir_base, authorization=token, extra_headers={"If-Match": 'W/"1"'},
                           requests_config={"timeout": 30})
    outdated = stale.resource("Patient", **{**patient(tag, given="Stale"), "id": created.id})
    # fhirpy maps every 412 to MultipleResourcesFound (meant for conditional requests).
    with pytest.raises(MultipleResourcesFound):
        outdated.save()
    response = requests.put(
        f"{fhir_base}/Patient/{created.id}", json={**patient(tag, given="Stale"), "id": created.id},
        headers={**FHIR_JSON, **bearer, "Content-Type": "application/fhir+json", "If-Match": 'W/"1"'}, timeout=10,
    )
    assert response.status_code == 412, response.text
    assert _outcome(response)["issue"][0]["code"] == "conflict"
    current = plain.reference("Patient", created.id).to_resource()
    assert current.meta.versionId == "2"
    assert current.name[0].given == ["Ada"]


def test_device_and_observations_read_back_and_update(client, fhir_base, tag):
    subject = _create(client, patient(tag))
    scale = _create(client, device(tag, subject.id))
    assert client.reference("Device", scale.id).to_resource().identifier[0].value == f"SN-{tag}"
    devices = client.resources("Device").search(identifier=f"{SERIAL_SYSTEM}|SN-{tag}").fetch_all()
    assert [d.id for d in devices] == [scale.id]
    devices = client.resources("Device").search(patient=subject).fetch_all()
    assert [d.id for d in devices] == [scale.id]

    weight = _create(client, vital_sign(BODY_WEIGHT, subject.id, hours_after_start(0), 72.4, scale.id))
    pulse = _create(client, vital_sign(HEART_RATE, subject.id, hours_after_start(0), 64, scale.id))

    read = client.reference("Observation", weight.id).to_resource()
    assert read.status == "final"
    assert read.code.coding[0].system == LOINC
    assert read.code.coding[0].code == "29463-7"
    assert read.category[0].coding[0].system == CATEGORY_SYSTEM
    assert read.category[0].coding[0].code == "vital-signs"
    assert read.subject.reference == f"Patient/{subject.id}"
    assert read.device.reference == f"Device/{scale.id}"
    assert read.effectiveDateTime == instant(hours_after_start(0))
    assert read.valueQuantity.value == 72.4
    assert read.valueQuantity.system == UCUM
    assert read.valueQuantity.code == "kg"
    heart = client.reference("Observation", pulse.id).to_resource()
    assert (heart.valueQuantity.value, heart.valueQuantity.code) == (64, "/min")
    assert heart.code.coding[0].code == "8867-4"

    read["status"] = "amended"
    read["valueQuantity"]["value"] = 72.1
    read.save()
    assert read.meta.versionId == "2"
    updated = client.reference("Observation", weight.id).to_resource()
    assert (updated.status, updated.valueQuantity.value) == ("amended", 72.1)

    # The search fields follow the update: the amended status is found, the old one no longer.
    by_status = client.resources("Observation").search(patient=subject.id, status="amended").fetch_all()
    assert [o.id for o in by_status] == [weight.id]
    by_status = client.resources("Observation").search(patient=subject.id, status="final").fetch_all()
    assert [o.id for o in by_status] == [pulse.id]

    pulse.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("Observation", pulse.id).to_resource()
    remaining = client.resources("Observation").search(subject=f"Patient/{subject.id}").fetch_all()
    assert [o.id for o in remaining] == [weight.id]


def _vital_signs_series(client, tag):
    """A patient with a scale, 26 weights (two pairs at the same instant), heart rates, and a neighbour."""
    subject = _create(client, patient(tag))
    scale = _create(client, device(tag, subject.id))
    neighbour = _create(client, patient(f"{tag}n"))
    hours = [6 * i for i in range(24)] + [30, 66]  # 30 h and 66 h appear twice
    weights = []
    for number, hour in enumerate(hours):
        moment = hours_after_start(hour)
        created = _create(client, vital_sign(BODY_WEIGHT, subject.id, moment, 70 + number / 10, scale.id))
        weights.append((created.id, moment))
    for hour in range(0, 144, 12):
        _create(client, vital_sign(HEART_RATE, subject.id, hours_after_start(hour), 60 + hour % 7, scale.id))
        _create(client, vital_sign(BODY_WEIGHT, neighbour.id, hours_after_start(hour), 80, None))
    return subject, weights


def test_search_by_patient_code_and_date_range_pages_in_order(client, tag, monkeypatch):
    subject, weights = _vital_signs_series(client, tag)
    low, high = hours_after_start(24), hours_after_start(96)  # [ge low, lt high)
    expected = sorted(((i, m) for i, m in weights if low <= m < high), key=lambda item: item[1], reverse=True)
    assert len(expected) == 14
    page_size = 4

    search = (
        client.resources("Observation")
        .search(patient=subject.id, code=f"{LOINC}|29463-7", date__ge=instant(low))
        .search(date__lt=instant(high))
        .sort("-date")
        .limit(page_size)
    )
    first = search.fetch_raw()
    assert first.resourceType == "Bundle" and first.type == "searchset"
    assert len(first.entry) == page_size
    next_links = [link.url for link in first.link if link.relation == "next"]
    assert len(next_links) == 1 and "_page=" in next_links[0]

    requests_made = []
    original = client._fetch_resource

    def counting(path, params=None):
        requests_made.append(path)
        return original(path, params)

    monkeypatch.setattr(client, "_fetch_resource", counting)
    found = search.fetch_all()
    monkeypatch.undo()

    ids = [o.id for o in found]
    assert len(ids) == len(set(ids)), f"a resource came more than once: {ids}"
    assert set(ids) == {i for i, _ in expected}
    dates = [o.effectiveDateTime for o in found]
    assert dates == [instant(m) for _, m in expected], "not in descending date order"
    assert all(o.code.coding[0].code == "29463-7" and o.subject.reference == f"Patient/{subject.id}"
               for o in found)
    assert len(requests_made) == math.ceil(len(expected) / page_size)

    ascending = client.resources("Observation").search(
        patient=subject.id, code="29463-7", date__ge=instant(low)).search(
        date__lt=instant(high)).sort("date").limit(3).fetch_all()
    assert [o.effectiveDateTime for o in ascending] == list(reversed(dates))
    assert sorted(o.id for o in ascending) == sorted(ids)

    heart_rates = client.resources("Observation").search(
        patient=subject.id, code=f"{LOINC}|8867-4", category="vital-signs").limit(5).fetch_all()
    assert len(heart_rates) == 12
    assert all(o.valueQuantity.code == "/min" for o in heart_rates)


def test_pages_stay_correct_while_new_readings_arrive(client, fhir_base, bearer, tag):
    """Keyset paging: readings stored between two page requests neither repeat nor skip results."""
    subject, weights = _vital_signs_series(client, tag)
    params = {"patient": f"Patient/{subject.id}", "code": f"{LOINC}|29463-7", "_sort": "-date",
              "_count": "5"}
    response = requests.get(f"{fhir_base}/Observation", params=params, headers={**FHIR_JSON, **bearer}, timeout=30)
    assert response.status_code == 200, response.text
    bundle = response.json()
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    newest = max(m for _, m in weights)
    # A newer reading (it would sort first) and an older one arrive while the client pages.
    _create(client, vital_sign(BODY_WEIGHT, subject.id, newest + timedelta(hours=1), 71.0))
    older = _create(client, vital_sign(BODY_WEIGHT, subject.id, hours_after_start(-1), 69.0))
    pages = 1
    while True:
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        if "next" not in links:
            break
        response = requests.get(links["next"], headers={**FHIR_JSON, **bearer}, timeout=30)
        assert response.status_code == 200, response.text
        bundle = response.json()
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        pages += 1
    assert len(seen) == len(set(seen)), f"a resource came more than once: {seen}"
    assert set(seen) == {i for i, _ in weights} | {older.id}
    assert pages == math.ceil(len(seen) / 5)
