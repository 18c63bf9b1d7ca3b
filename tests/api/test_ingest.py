"""POST /ingest/messages, templates and dead letters over a real embedded database."""

import threading

import pytest

from fhir_iomt import create_app
from fhir_iomt.domain.errors import Conflict
from tests.support.oauth import system_client

from .ingest_helpers import heart_rate, post, put_templates, search, templates


@pytest.fixture()
def loaded(client):
    """A client whose server has the heart-rate templates in create mode."""
    put_templates(client)
    return client


def _only_result(response):
    assert response.status_code == 200, response.get_json()
    [result] = response.get_json()["results"]
    return result


def test_accepted_message_is_a_searchable_vital_sign_with_device_and_patient(loaded):
    result = _only_result(post(loaded, heart_rate(72)))
    assert result["status"] == "accepted" and result["templateVersion"] == 1
    [reference] = result["observations"]
    observation = loaded.get(f"/fhir/{reference}").get_json()
    assert observation["valueQuantity"] == {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                                            "code": "/min"}
    assert observation["effectiveDateTime"] == "2026-11-23T10:00:00+01:00"
    [device] = search(loaded, "Device?identifier=HR-001")
    [patient] = search(loaded, "Patient?identifier=MRN-1")
    assert observation["device"]["reference"] == f"Device/{device['id']}"
    assert observation["subject"]["reference"] == f"Patient/{patient['id']}"
    assert device["patient"]["reference"] == f"Patient/{patient['id']}"
    found = search(loaded, f"Observation?patient={patient['id']}&code=http://loinc.org|8867-4&date=2026-11-23")
    assert [o["id"] for o in found] == [observation["id"]]


def test_same_message_twice_is_one_observation_in_one_version(loaded):
    first = _only_result(post(loaded, heart_rate(72)))
    second = _only_result(post(loaded, heart_rate(72)))
    assert first["observations"] == second["observations"]
    observation = loaded.get(f"/fhir/{first['observations'][0]}").get_json()
    assert observation["meta"]["versionId"] == "1"
    assert len(search(loaded, "Observation?code=8867-4")) == 1


def test_same_message_from_eight_threads_makes_one_of_each(app, client):
    put_templates(client)
    statuses, barrier = [], threading.Barrier(8)

    def send():
        own = app.test_client()
        own.environ_base.update(client.environ_base)
        barrier.wait()
        statuses.append(_only_result(post(own, heart_rate(81)))["status"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == ["accepted"] * 8
    assert len(search(client, "Observation?code=8867-4")) == 1
    assert len(search(client, "Device?identifier=HR-001")) == 1
    assert len(search(client, "Patient?identifier=MRN-1")) == 1


def test_batch_keeps_good_messages_when_others_fail(loaded):
    response = post(loaded, [heart_rate(70, when="2026-11-23T10:00:00Z"), {"unrelated": True},
                             heart_rate(71, when="2026-11-23T10:01:00Z")])
    body = response.get_json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert body["results"][1]["reason"] == "no-template-match"
    assert len(search(loaded, "Observation?code=8867-4")) == 2
    letter = loaded.get(f"/ingest/dead-letters/{body['results'][1]['deadLetter']}").get_json()
    assert letter["payload"] == '{"unrelated":true}' and letter["reason"] == "no-template-match"


def test_ndjson_lines_are_messages_and_a_broken_line_is_a_dead_letter(loaded):
    lines = '{"deviceId":"HR-001","patientId":"MRN-1","endDate":"2026-11-23T10:00:00Z","heartRate":60}\n' \
            '{"deviceId": broken\n\n' \
            '{"deviceId":"HR-001","patientId":"MRN-1","endDate":"2026-11-23T11:00:00Z","heartRate":61}\n'
    body = post(loaded, lines, "application/x-ndjson").get_json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert body["results"][1]["reason"] == "not-json"
    letter = loaded.get(f"/ingest/dead-letters/{body['results'][1]['deadLetter']}").get_json()
    assert letter["payload"] == '{"deviceId": broken'


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"this is not json", "not-json"),
        ({"heartRate": 70, "deviceId": "HR-001", "patientId": "MRN-1"}, "bad-timestamp"),
        (heart_rate(when="yesterday"), "bad-timestamp"),
        (heart_rate(when="2099-01-01T00:00:00Z"), "future-timestamp"),
        (heart_rate(value=400), "value-out-of-range"),
        (heart_rate(value=5), "value-out-of-range"),
        (heart_rate(patient=None), "missing-patient-id"),
        ({"deviceId": "HR-001", "patientId": "MRN-1", "endDate": "2026-11-23T10:00:00Z", "spo2": 97},
         "no-template-match"),
    ],
)
def test_bad_messages_go_to_dead_letters_and_never_to_observations(loaded, message, reason):
    result = _only_result(post(loaded, message))
    assert (result["status"], result["reason"]) == ("rejected", reason)
    assert search(loaded, "Observation") == []
    letter = loaded.get(f"/ingest/dead-letters/{result['deadLetter']}").get_json()
    assert letter["reason"] == reason and letter["status"] == "open" and letter["payload"]


def test_missing_required_value(loaded):
    message = {"deviceId": "HR-001", "patientId": "MRN-1", "endDate": "2026-11-23T10:00:00Z", "heartRate": None}
    result = _only_result(post(loaded, message))
    assert result["reason"] in ("missing-required-value", "no-template-match")
    assert search(loaded, "Observation") == []


def test_limits_from_the_templates_override_the_defaults(client):
    put_templates(client, limits={"8867-4": {"/min": [40, 180]}})
    assert _only_result(post(client, heart_rate(200)))["reason"] == "value-out-of-range"
    assert _only_result(post(client, heart_rate(150)))["status"] == "accepted"


def test_without_templates_messages_are_kept(client):
    result = _only_result(post(client, heart_rate()))
    assert result["reason"] == "no-templates"
    assert client.get("/ingest/templates").status_code == 404


def test_wrong_content_type_is_415_and_nothing_stored(loaded):
    response = loaded.post("/ingest/messages", data="heartRate=70", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert loaded.get("/ingest/dead-letters").get_json()["items"] == []


def test_body_over_the_limit_is_413(mongo_server, backend_key):
    app = create_app({"MONGODB_URI": mongo_server.uri, "MONGODB_DB": "t413ingest",
                      "INGEST_MAX_CONTENT_LENGTH": 2000})
    client = system_client(app, backend_key)
    response = post(client, [heart_rate(70)] * 100)
    assert response.status_code == 413
    assert response.get_json()["issue"][0]["code"] == "too-long"


def test_empty_batch_is_400(loaded):
    assert post(loaded, []).status_code == 400


def test_templates_are_versioned_and_recorded_per_message(loaded):
    assert loaded.get("/ingest/templates").get_json()["version"] == 1
    put_templates(loaded)
    current = loaded.get("/ingest/templates").get_json()
    assert current["version"] == 2 and current["identityMode"] == "create"
    assert _only_result(post(loaded, heart_rate()))["templateVersion"] == 2


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda t: t["deviceTemplate"]["template"][0].update(templateType="NoSuchContent"), "deviceTemplate"),
        (lambda t: t["fhirTemplate"]["template"][0]["template"]["value"].update(unit="count/min",
                                                                                 code="count/min"),
         "fhirTemplate"),
        (lambda t: t["fhirTemplate"]["template"][0]["template"]["value"].update(valueName="pulse"),
         "fhirTemplate"),
        (lambda t: t.update(identityMode="guess"), "identityMode"),
        (lambda t: t.update(limits={"8867-4": {"/min": [300, 20]}}), "limits"),
        (lambda t: t.update(limits={"8867-4": [20, 300]}), "limits"),
    ],
)
def test_invalid_templates_are_refused_whole(loaded, change, path):
    body = templates()
    change(body)
    response = loaded.put("/ingest/templates", json=body)
    assert response.status_code == 422
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(e.startswith(path) for issue in outcome["issue"] for e in issue.get("expression", []))
    assert loaded.get("/ingest/templates").get_json()["version"] == 1


def test_dead_letters_filter_page_get_delete(loaded):
    for _ in range(3):
        post(loaded, b"not json")
    post(loaded, heart_rate(value=400))
    listing = loaded.get("/ingest/dead-letters?reason=not-json&_count=2").get_json()
    assert len(listing["items"]) == 2 and all(i["reason"] == "not-json" for i in listing["items"])
    rest = loaded.get(listing["next"].replace("http://localhost", "")).get_json()
    assert len(rest["items"]) == 1 and "next" not in rest
    ids = {i["id"] for i in listing["items"] + rest["items"]}
    assert len(ids) == 3
    assert len(loaded.get("/ingest/dead-letters?since=2000-01-01").get_json()["items"]) == 4
    assert loaded.get("/ingest/dead-letters?until=2000-01-01").get_json()["items"] == []
    victim = ids.pop()
    assert loaded.delete(f"/ingest/dead-letters/{victim}").status_code == 204
    assert loaded.get(f"/ingest/dead-letters/{victim}").status_code == 404
    assert loaded.get("/ingest/dead-letters?since=yesterday").status_code == 400


def test_replay_after_fixing_templates(client):
    put_templates(client, limits={"8867-4": {"/min": [40, 100]}})
    result = _only_result(post(client, heart_rate(130)))
    assert result["reason"] == "value-out-of-range"
    again = client.post(f"/ingest/dead-letters/{result['deadLetter']}/$replay").get_json()
    assert again["status"] == "rejected" and again["deadLetter"] == result["deadLetter"]
    assert client.get(f"/ingest/dead-letters/{result['deadLetter']}").get_json()["attempts"] == 2
    put_templates(client)
    replayed = client.post(f"/ingest/dead-letters/{result['deadLetter']}/$replay").get_json()
    assert replayed["status"] == "accepted" and replayed["templateVersion"] == 2
    letter = client.get(f"/ingest/dead-letters/{result['deadLetter']}").get_json()
    assert letter["status"] == "replayed" and letter["observations"] == replayed["observations"]
    assert client.post(f"/ingest/dead-letters/{result['deadLetter']}/$replay").status_code == 400
    assert client.post("/ingest/dead-letters/nope/$replay").status_code == 404


def test_create_mode_never_relinks_a_device_to_another_patient(loaded):
    assert _only_result(post(loaded, heart_rate(patient="MRN-1")))["status"] == "accepted"
    result = _only_result(post(loaded, heart_rate(patient="MRN-2", when="2026-11-23T12:00:00Z")))
    assert result["reason"] == "device-patient-mismatch"
    [device] = search(loaded, "Device?identifier=HR-001")
    [patient] = search(loaded, "Patient?identifier=MRN-1")
    assert device["patient"]["reference"] == f"Patient/{patient['id']}"


def test_lookup_mode_needs_a_linked_device(client):
    put_templates(client, identity="lookup")
    assert _only_result(post(client, heart_rate()))["reason"] == "unknown-device"
    patient = client.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": [
        {"system": "urn:hospital:mrn", "value": "MRN-1"}]}).get_json()
    device = {"resourceType": "Device", "identifier": [{"system": "urn:vendor:serial", "value": "HR-001"}]}
    stored = client.post("/fhir/Device", json=device).get_json()
    assert _only_result(post(client, heart_rate()))["reason"] == "device-not-linked"
    linked = dict(stored, patient={"reference": f"Patient/{patient['id']}"})
    assert client.put(f"/fhir/Device/{stored['id']}", json=linked).status_code == 200
    result = _only_result(post(client, heart_rate()))
    assert result["status"] == "accepted"
    observation = client.get(f"/fhir/{result['observations'][0]}").get_json()
    assert observation["subject"]["reference"] == f"Patient/{patient['id']}"
    client.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": [{"value": "MRN-9"}]})
    assert _only_result(post(client, heart_rate(patient="MRN-9")))["reason"] == "device-patient-mismatch"
    assert _only_result(post(client, heart_rate(patient="MRN-404")))["reason"] == "unknown-patient"


def test_reingest_after_delete_continues_the_version_history(loaded):
    [reference] = _only_result(post(loaded, heart_rate(72)))["observations"]
    assert loaded.delete(f"/fhir/{reference}").status_code == 204
    assert _only_result(post(loaded, heart_rate(72)))["status"] == "accepted"
    again = loaded.get(f"/fhir/{reference}")
    assert again.status_code == 200 and again.get_json()["meta"]["versionId"] == "3"
    history = loaded.get(f"/fhir/{reference}/_history").get_json()
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    updated = dict(again.get_json(), status="amended")
    response = loaded.put(f"/fhir/{reference}", json=updated, headers={"If-Match": 'W/"3"'})
    assert response.status_code == 200 and response.get_json()["meta"]["versionId"] == "4"


def test_a_message_whose_write_fails_is_dead_lettered_while_the_rest_of_the_batch_is_stored(app, client, monkeypatch):
    put_templates(client)
    [reference] = _only_result(post(client, heart_rate(72)))["observations"]
    services = app.extensions["fhir_iomt"]

    def always_conflicts(*args, **kwargs):
        raise Conflict("simulated concurrent writer")

    monkeypatch.setattr(services.resources, "update", always_conflicts)
    body = post(client, [heart_rate(90), heart_rate(75, when="2026-11-23T11:00:00Z")]).get_json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["results"][0]["reason"] == "write-failed"
    letter = client.get(f"/ingest/dead-letters/{body['results'][0]['deadLetter']}").get_json()
    assert '"heartRate":90' in letter["payload"]
    assert client.get(f"/fhir/{reference}").get_json()["valueQuantity"]["value"] == 72
    assert client.get(f"/fhir/{body['results'][1]['observations'][0]}").status_code == 200


def test_hourly_window_keeps_the_latest_reading_by_time_and_retries_change_nothing(client):
    body = templates()
    body["fhirTemplate"]["template"][0]["template"]["periodInterval"] = 60
    assert client.put("/ingest/templates", json=body).status_code == 200
    later, earlier = heart_rate(80, when="2026-11-23T10:20:00Z"), heart_rate(70, when="2026-11-23T10:05:00Z")
    values = []
    for message in (later, earlier, later, earlier):
        [reference] = _only_result(post(client, message))["observations"]
        observation = client.get(f"/fhir/{reference}").get_json()
        values.append((observation["valueQuantity"]["value"], observation["meta"]["versionId"]))
    assert values == [(80, "1")] * 4
    assert observation["effectivePeriod"] == {"start": "2026-11-23T10:00:00.000Z", "end": "2026-11-23T10:59:59.999Z"}
