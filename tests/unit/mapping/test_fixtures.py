"""Every device fixture through normalize -> group -> to_fhir: R4-valid, Vital Signs conformant, right values.

The fixtures are fixtures/devices/<kind>/ (templates and vendor messages) and
fixtures/devices/bad/ (messages that must be dead-lettered). Observations are
checked against the official R4 JSON schema and the Vital Signs profile rules
(tests/support, installed by `make r4-schema`), and against the project's own
validate_resource.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from fhir_iomt.domain.errors import InvalidResource
from fhir_iomt.domain.measurement import MappingError
from fhir_iomt.fhir.validation import validate_resource
from fhir_iomt.mapping.device_templates import load_device_templates
from fhir_iomt.mapping.fhir_templates import load_fhir_templates
from fhir_iomt.mapping.group import group_measurements
from fhir_iomt.mapping.to_fhir import build_observation
from fhir_iomt.mapping.vital_signs import check_limits
from tests.support import devices, r4schema
from tests.support import vital_signs as vs

ISSUED = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
PATIENT, DEVICE = "Patient/p-test", "Device/d-test"
MDC = "urn:iso:std:iso:11073:10101"
KINDS = devices.kinds()
PAYLOADS = [(kind, name) for kind in KINDS for name in devices.payloads(kind)]
EXPECTED_KINDS = {
    "weight-scale", "glucometer", "cgm", "pulse-oximeter", "blood-pressure", "thermometer", "wearable", "ecg",
}


def at(text):
    return datetime.fromisoformat(text)


def q(code, value, unit, when):
    """An expected Observation with a valueQuantity."""
    return (code, ("Quantity", value, unit), at(when))


def panel(code, components, when):
    """An expected Observation with component quantities {code: (value, unit)} and no value of its own."""
    return (code, ("components", components), at(when))


def daily(code, value, unit, day):
    """An expected Observation over one UTC day (periodInterval 1440)."""
    start = at(f"{day}T00:00:00+00:00")
    return (code, ("Quantity", value, unit), (start, start + timedelta(days=1)))


def waveform(code, count, period, unit, start, last):
    return (code, ("SampledData", count, period, unit), (at(start), at(last)))


BP = {"8480-6": "mm[Hg]", "8462-4": "mm[Hg]", "8478-0": "mm[Hg]"}

EXPECTED = {
    ("weight-scale", "morning-weigh-in-lb.json"): [  # 180 lb
        q("29463-7", 81.65, "kg", "2026-03-02T07:12:44-05:00"),
        q("39156-5", 26.6, "kg/m2", "2026-03-02T07:12:44-05:00"),
    ],
    ("weight-scale", "evening-weigh-in-lb.json"): [  # 154.2 lb
        q("29463-7", 69.94, "kg", "2026-03-02T19:48:02-05:00"),
    ],
    ("weight-scale", "metric-model-kg.json"): [
        q("29463-7", 72.4, "kg", "2026-03-02T06:58:10+01:00"),
        q("39156-5", 23.1, "kg/m2", "2026-03-02T06:58:10+01:00"),
    ],
    ("glucometer", "fasting-reading.json"): [q("41653-7", 104, "mg/dL", "2026-03-02T07:02:00-05:00")],
    ("glucometer", "post-meal-reading.json"): [q("41653-7", 162, "mg/dL", "2026-03-02T13:41:27+00:00")],
    ("cgm", "egv-batch-overnight.json"): [
        q("15074-8", value, "mmol/L", f"2026-03-02T06:{minute}:12+00:00")
        for minute, value in (("40", 6.1), ("45", 6.3), ("50", 6.8), ("55", 7.4))
    ],
    ("cgm", "egv-batch-morning.json"): [
        q("15074-8", 4.2, "mmol/L", "2026-03-02T11:10:12+00:00"),
        q("15074-8", 3.9, "mmol/L", "2026-03-02T11:15:12+00:00"),
    ],
    ("pulse-oximeter", "spot-check-rest.json"): [  # IoT Central: the time is enqueuedTime
        q("2708-6", 97, "%", "2026-03-02T08:15:31.250+00:00"),
        q("8867-4", 72, "/min", "2026-03-02T08:15:31.250+00:00"),
    ],
    ("pulse-oximeter", "spot-check-after-walk.json"): [
        q("2708-6", 91, "%", "2026-03-02T16:42:07.118+00:00"),
        q("8867-4", 104, "/min", "2026-03-02T16:42:07.118+00:00"),
    ],
    ("blood-pressure", "morning-reading.json"): [  # IoT Hub: the time is iothub-creation-time-utc
        panel("85354-9", {"8480-6": 128, "8462-4": 82, "8478-0": 97}, "2026-03-02T12:30:05.412+00:00"),
        q("8867-4", 71, "/min", "2026-03-02T12:30:05.412+00:00"),
    ],
    ("blood-pressure", "evening-reading-no-map.json"): [
        panel("85354-9", {"8480-6": 141, "8462-4": 89}, "2026-03-03T02:05:44.870+00:00"),
        q("8867-4", 78, "/min", "2026-03-03T02:05:44.870+00:00"),
    ],
    ("thermometer", "us-oral-degf.json"): [q("8310-5", 98.6, "[degF]", "2026-03-02T08:01:12-05:00")],
    ("thermometer", "us-fever-degf.json"): [q("8310-5", 101.3, "[degF]", "2026-03-02T22:47:55-05:00")],
    ("thermometer", "eu-forehead-cel.json"): [q("8310-5", 37.8, "Cel", "2026-03-02T14:05:40+01:00")],
    ("wearable", "sync-evening.json"): [
        daily("41950-7", 9874, "{steps}", "2026-03-02"),  # the day's last cumulative count
        q("8867-4", 64, "/min", "2026-03-02T21:00:00+00:00"),
        q("8867-4", 71, "/min", "2026-03-02T21:10:00+00:00"),
        q("8867-4", 88, "/min", "2026-03-02T21:20:00+00:00"),
    ],
    ("wearable", "sync-next-morning.json"): [
        daily("41950-7", 10412, "{steps}", "2026-03-02"),
        daily("41950-7", 1203, "{steps}", "2026-03-03"),
        q("8867-4", 58, "/min", "2026-03-03T08:55:00+00:00"),
    ],
    ("ecg", "recording-chunk-1.json"): [
        waveform("131330", 125, 8, "mV", "2026-03-02T07:15:00+00:00", "2026-03-02T07:15:00.992+00:00"),
        q("8867-4", 68, "/min", "2026-03-02T07:15:00+00:00"),
    ],
    ("ecg", "recording-chunk-2.json"): [
        waveform("131330", 125, 8, "mV", "2026-03-02T07:15:01+00:00", "2026-03-02T07:15:01.992+00:00"),
        q("8867-4", 69, "/min", "2026-03-02T07:15:01+00:00"),
    ],
}

# LOINC (or MDC) code of each Observation -> the other codings its template gives it.
CODINGS = {
    "29463-7": {("http://loinc.org", "29463-7"), (MDC, "188736")},
    "39156-5": {("http://loinc.org", "39156-5"), (MDC, "188752")},
    "41653-7": {("http://loinc.org", "41653-7"), (MDC, "160184")},
    "15074-8": {("http://loinc.org", "15074-8"), (MDC, "160368")},
    "2708-6": {("http://loinc.org", "2708-6"), ("http://loinc.org", "59408-5"), (MDC, "150456")},
    "85354-9": {("http://loinc.org", "85354-9"), (MDC, "150020")},
    "8310-5": {("http://loinc.org", "8310-5"), (MDC, "150364")},
    "41950-7": {("http://loinc.org", "41950-7")},
    "131330": {(MDC, "131330")},
}
HEART_RATE_MDC = {"pulse-oximeter": "149530", "blood-pressure": "149546", "ecg": "147842", "wearable": None}


def run(kind, name):
    return devices.observations(kind, devices.message(kind, name), ISSUED, PATIENT, DEVICE)


def primary_code(observation):
    return observation["code"]["coding"][0]["code"]


def effective(observation):
    if "effectiveDateTime" in observation:
        return at(observation["effectiveDateTime"])
    period = observation["effectivePeriod"]
    return at(period["start"]), at(period["end"])


def same_effective(found, expected):
    if isinstance(expected, datetime):  # an instant, with the device's own offset kept
        return found == expected and found.utcoffset() == expected.utcoffset()
    if expected[1] - expected[0] == timedelta(days=1):  # a window [start, end): end is its last instant
        return found[0] == expected[0] and expected[1] - timedelta(seconds=1) < found[1] < expected[1]
    return found == expected


def summary(observation):
    if "valueQuantity" in observation:
        quantity = observation["valueQuantity"]
        return ("Quantity", quantity["value"], quantity["code"])
    if "valueSampledData" in observation:
        sampled = observation["valueSampledData"]
        return ("SampledData", len(sampled["data"].split()), sampled["period"], sampled["origin"].get("unit"))
    components = {}
    for component in observation.get("component", ()):
        code = vs.loinc_codes(component["code"])[0]
        quantity = component["valueQuantity"]
        assert quantity["code"] == BP[code] and quantity["system"] == vs.UCUM
        components[code] = quantity["value"]
    return ("components", components)


# --- The fixture set itself -------------------------------------------------------------------------------


def test_the_fixture_set_covers_the_device_kinds():
    assert set(KINDS) >= EXPECTED_KINDS
    assert len(KINDS) >= 7
    readme = (devices.FIXTURES / "README.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert len(devices.payloads(kind)) >= 2, kind
        assert f"`{kind}`" in readme, kind
    assert set(EXPECTED) == set(PAYLOADS), "every payload needs its expected Observations here"


def test_the_template_kinds_used():
    used = {}
    for kind in KINDS:
        device_doc, _ = devices.template_documents(kind)
        for item in device_doc["template"]:
            used.setdefault(item["templateType"], set()).add(kind)
    assert used["IotJsonPathContent"] == {"blood-pressure"}
    assert used["IotCentralJsonPathContent"] == {"pulse-oximeter"}
    assert {"weight-scale", "cgm", "wearable", "ecg"} <= used["CalculatedContent"]
    assert {"glucometer", "thermometer"} <= used["JsonPathContent"]


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("kind", KINDS)
def test_each_template_pair_loads(kind):
    device_doc, fhir_doc = devices.template_documents(kind)
    device = load_device_templates(device_doc)
    fhir = load_fhir_templates(fhir_doc, device)
    assert fhir.type_names == device.type_names
    # MedTech's sample units are not UCUM codes of these measures; none may slip into a fixture.
    assert not {"count/min", "mmHg", "degC", "bpm", "beats/min"} & set(_strings(fhir_doc))


# --- Every payload ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), PAYLOADS)
def test_each_payload_carries_a_device_serial_and_a_patient_id(kind, name):
    measurements, _ = run(kind, name)
    assert measurements
    text = json.dumps(devices.message(kind, name))
    for measurement in measurements:
        assert measurement.device_id and f'"{measurement.device_id}"' in text
        assert measurement.patient_id and measurement.patient_id.startswith("MRN-")


@pytest.mark.parametrize(("kind", "name"), PAYLOADS)
def test_each_observation_is_valid_r4(kind, name):
    _, built = run(kind, name)
    assert built
    for _, observation in built:
        r4schema.assert_valid(observation)
        try:
            validate_resource("Observation", observation)
        except InvalidResource as error:
            pytest.fail(f"validate_resource refused {primary_code(observation)}: {error.diagnostics}")
        assert observation["subject"] == {"reference": PATIENT}
        assert observation["device"] == {"reference": DEVICE}
        assert at(observation["issued"]) == ISSUED
        assert observation["status"] == "final"


@pytest.mark.parametrize(("kind", "name"), PAYLOADS)
def test_each_vital_sign_meets_the_profile(kind, name):
    _, built = run(kind, name)
    for _, observation in built:
        code = primary_code(observation)
        assert vs.is_vital_sign(observation) == (code in vs.MEASURES), code
        if vs.is_vital_sign(observation):
            vs.assert_conforms(observation)


def _order(item):
    code, _, when = item
    return code, str(when)


@pytest.mark.parametrize(("kind", "name"), PAYLOADS)
def test_each_payload_gives_the_expected_codes_units_and_values(kind, name):
    _, built = run(kind, name)
    found = [(primary_code(obs), summary(obs), effective(obs)) for _, obs in built]
    expected = EXPECTED[(kind, name)]
    found, expected = sorted(found, key=_order), sorted(expected, key=_order)
    assert [(code, value) for code, value, _ in found] == [(code, value) for code, value, _ in expected]
    for (code, _, when), (_, _, wanted) in zip(found, expected, strict=True):
        assert same_effective(when, wanted), (code, when, wanted)


@pytest.mark.parametrize(("kind", "name"), PAYLOADS)
def test_each_observation_has_its_templates_codings(kind, name):
    _, built = run(kind, name)
    for _, observation in built:
        codings = {(c.get("system"), c.get("code")) for c in observation["code"]["coding"]}
        code = primary_code(observation)
        if code == "8867-4":
            mdc = HEART_RATE_MDC[kind]
            assert (vs.LOINC, "8867-4") in codings
            assert mdc is None or (MDC, mdc) in codings
        else:
            assert CODINGS[code] <= codings, (code, codings)


# --- Particular properties of some kinds ------------------------------------------------------------------


def test_the_scale_converts_pounds_to_kilograms():
    message = devices.message("weight-scale", "morning-weigh-in-lb.json")
    assert message["weight"] == {"value": 180.0, "unit": "lb"}
    _, built = run("weight-scale", "morning-weigh-in-lb.json")
    weight = next(obs for _, obs in built if primary_code(obs) == "29463-7")
    assert weight["valueQuantity"] == {"value": 81.65, "unit": "kg", "system": vs.UCUM, "code": "kg"}
    assert weight["valueQuantity"]["value"] == pytest.approx(180 * 0.45359237, abs=0.005)


def test_each_cgm_reading_is_its_own_observation():
    message = devices.message("cgm", "egv-batch-overnight.json")
    measurements, built = run("cgm", "egv-batch-overnight.json")
    assert len(measurements) == len(built) == len(message["egvs"])
    values = sorted(obs["valueQuantity"]["value"] for _, obs in built)
    assert values == sorted(egv["value"] for egv in message["egvs"])
    assert len({obs["id"] for _, obs in built}) == len(built)


def test_the_ecg_waveform_keeps_every_sample_in_millivolts():
    message = devices.message("ecg", "recording-chunk-1.json")
    _, built = run("ecg", "recording-chunk-1.json")
    wave = next(obs for _, obs in built if primary_code(obs) == "131330")
    sampled = wave["valueSampledData"]
    assert sampled["period"] == 1000 / message["recording"]["sampleRateHz"]
    assert sampled["dimensions"] == 1 and sampled["origin"]["value"] == 0
    assert [float(token) for token in sampled["data"].split()] == [
        s["uV"] / 1000 for s in message["recording"]["samples"]
    ]


def test_the_ecg_chunks_of_one_recording_make_one_observation():
    device, fhir = devices.templates("ecg")
    measurements = []
    for name in ("recording-chunk-1.json", "recording-chunk-2.json"):
        measurements += device.normalize(devices.message("ecg", name))
    waves = [m for m in measurements if m.type_name == "ecg-lead-ii"]
    assert {m.correlation_id for m in waves} == {"rec-20260302-071500-01"}
    _, built = devices.observations("ecg", devices.message("ecg", "recording-chunk-1.json"), ISSUED)
    groups, unmapped = group_measurements(waves, fhir)
    assert not unmapped and len(groups) == 1
    wave = build_observation(groups[0], fhir.for_type("ecg-lead-ii"), PATIENT, DEVICE, ISSUED)
    data = wave["valueSampledData"]["data"].split()
    assert len(data) == 250 and "E" not in data
    assert effective(wave) == (at("2026-03-02T07:15:00+00:00"), at("2026-03-02T07:15:01.992+00:00"))
    r4schema.assert_valid(wave)
    first_chunk = next(obs for _, obs in built if primary_code(obs) == "131330")
    assert wave["id"] == first_chunk["id"]  # the recording id, not the chunk, names the Observation


def test_the_daily_steps_observation_keeps_the_days_last_count():
    _, built = run("wearable", "sync-evening.json")
    steps = [obs for _, obs in built if primary_code(obs) == "41950-7"]
    assert len(steps) == 1
    quantity = dict(steps[0]["valueQuantity"])
    observed = quantity.pop("extension")
    assert quantity == {"value": 9874, "unit": "{steps}", "system": vs.UCUM, "code": "{steps}"}
    # the day's value records when it was measured, so an older message never replaces it
    assert observed == [{"url": "urn:fhir-iomt:extension:observed-at", "valueDateTime": "2026-03-02T21:00:00Z"}]


def test_the_two_thermometer_vendors_keep_their_own_units():
    units = {}
    for name in devices.payloads("thermometer"):
        _, built = run("thermometer", name)
        for _, obs in built:
            units.setdefault(obs["valueQuantity"]["code"], set()).add(obs["valueQuantity"]["value"])
    assert units == {"[degF]": {98.6, 101.3}, "Cel": {37.8}}


# --- Bad messages -----------------------------------------------------------------------------------------

BAD_CASES = devices.bad_cases()


def test_every_bad_message_is_listed():
    files = {p.name for p in devices.BAD.iterdir() if p.name not in ("README.md", "cases.json")}
    assert files == {case["file"] for case in BAD_CASES}
    readme = (devices.BAD / "README.md").read_text(encoding="utf-8")
    for case in BAD_CASES:
        assert f"`{case['file']}`" in readme and f"`{case['reason']}`" in readme
    assert {case["reason"] for case in BAD_CASES} >= {
        "not-json", "no-template-match", "missing-required-value", "bad-timestamp", "future-timestamp",
        "value-out-of-range",
    }


@pytest.mark.parametrize("case", [c for c in BAD_CASES if c["stage"] != "service"], ids=lambda c: c["file"])
def test_a_bad_message_is_refused_with_its_reason(case):
    device, _ = devices.templates(case["kind"])
    with pytest.raises(MappingError) as caught:
        device.normalize(devices.read_message(devices.BAD / case["file"]))
    assert caught.value.reason == case["reason"], caught.value


def test_a_far_future_message_normalizes_for_the_service_to_refuse():
    measurements, built = devices.observations(
        "glucometer", devices.read_message(devices.BAD / "far-future-timestamp.json"), ISSUED
    )
    assert [m.occurrence for m in measurements] == [at("2036-03-02T07:02:00-05:00")]
    assert all(m.occurrence > ISSUED + timedelta(days=365) for m in measurements)
    for _, observation in built:
        r4schema.assert_valid(observation)


def test_a_heart_rate_of_400_normalizes_for_the_service_to_refuse():
    _, built = devices.observations(
        "pulse-oximeter", devices.read_message(devices.BAD / "heart-rate-400.json"), ISSUED
    )
    pulse = next(obs for _, obs in built if primary_code(obs) == "8867-4")
    assert pulse["valueQuantity"]["value"] == 400
    r4schema.assert_valid(pulse)
    assert check_limits(pulse), "the service's limits must refuse 400 /min"
    spo2 = next(obs for _, obs in built if primary_code(obs) == "2708-6")
    assert check_limits(spo2) == []


@pytest.mark.parametrize(("kind", "name"), PAYLOADS)
def test_the_same_message_twice_gives_the_same_observations(kind, name):
    _, first = run(kind, name)
    later = ISSUED + timedelta(hours=1)
    _, again = devices.observations(kind, devices.message(kind, name), later, PATIENT, DEVICE)
    assert [obs["id"] for _, obs in first] == [obs["id"] for _, obs in again]
    for (_, one), (_, other) in zip(first, again, strict=True):
        assert {**one, "issued": None} == {**other, "issued": None}
