"""Groups into R4 Observations: value types, components, windows, merge, ids; Device and Patient identity."""

import copy
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fhir_iomt.domain.measurement import (
    INVALID_OBSERVATION,
    MISSING_REQUIRED_VALUE,
    MappingError,
    Measurement,
)
from fhir_iomt.fhir.validation import validate_resource
from fhir_iomt.mapping import identity
from fhir_iomt.mapping import vital_signs as vs
from fhir_iomt.mapping.fhir_templates import load_fhir_templates
from fhir_iomt.mapping.group import group_measurements
from fhir_iomt.mapping.to_fhir import (
    OBSERVATION_ID_SYSTEM,
    OBSERVED_AT,
    TYPE_SYSTEM,
    build_observation,
    format_datetime,
    observation_id,
)

PARIS = timezone(timedelta(hours=2))
KOLKATA = timezone(timedelta(hours=5, minutes=30))
ISSUED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def loinc(code, display=None):
    coding = {"code": code, "system": vs.LOINC}
    return {**coding, "display": display} if display else coding


def ucum(name, unit):
    return {"valueName": name, "valueType": "Quantity", "unit": unit, "code": unit, "system": vs.UCUM}


def code_value(type_name, codes, **fields):
    return {"templateType": "CodeValueFhir", "template": {"typeName": type_name, "codes": codes, **fields}}


VENDOR = "https://vendor.example/codes"
TEMPLATES = load_fhir_templates(
    {
        "templateType": "CollectionFhir",
        "template": [
            code_value(
                "heartrate",
                [{"system": "urn:iso:std:iso:11073:10101", "code": "147842", "display": "Heart rate (ECG)"}],
                periodInterval=60,
                value={"valueName": "hr", "valueType": "SampledData", "defaultPeriod": 60000, "unit": "/min"},
            ),
            code_value("pulse", [loinc("8867-4")], value=ucum("bpm", "/min")),
            code_value("weight", [loinc("29463-7")], periodInterval=1440, value=ucum("kg", "kg")),
            code_value(
                "bloodpressure",
                [loinc("85354-9", "Blood pressure panel")],
                components=[
                    {
                        "codes": [loinc("8480-6", "Systolic blood pressure")],
                        "value": ucum("systolic", "mm[Hg]"),
                    },
                    {
                        "codes": [loinc("8462-4", "Diastolic blood pressure")],
                        "value": ucum("diastolic", "mm[Hg]"),
                    },
                ],
            ),
            code_value(
                "status",
                [{"code": "status", "system": VENDOR}],
                category=[{"text": "Device", "codes": [{"code": "device", "system": VENDOR}]}],
                value={"valueName": "state", "valueType": "String"},
            ),
            code_value(
                "worn",
                [{"code": "event", "system": VENDOR}],
                periodInterval=60,
                value={
                    "valueName": "worn",
                    "valueType": "CodeableConcept",
                    "text": "Device worn",
                    "codes": [{"code": "worn", "system": VENDOR, "display": "Worn"}],
                },
            ),
            code_value(
                "session",
                [{"code": "hrv", "system": VENDOR}],
                periodInterval=-1,
                value={"valueName": "rmssd", "valueType": "SampledData", "defaultPeriod": 1000, "unit": "ms"},
            ),
            code_value("glucose", [loinc("41653-7")], value=ucum("mgdl", "mg/dL")),
            code_value(  # a continuous glucose monitor: a table code outside the vital signs, so SampledData
                "cgm",
                [loinc("41653-7")],
                periodInterval=60,
                value={"valueName": "mgdl", "valueType": "SampledData", "defaultPeriod": 300000, "unit": "mg/dL"},
            ),
        ],
    }
)


def m(type_name, when, correlation=None, device="dev-1", patient="pat-1", **values):
    return Measurement(type_name, when, device, tuple(values.items()), patient, None, correlation)


def groups_of(*measurements):
    groups, unmapped = group_measurements(measurements, TEMPLATES)
    assert unmapped == []
    return groups


def build(group, existing=None):
    """Build, then check the Observation is valid R4 and, for vital signs, conforms to the profile."""
    observation = build_observation(
        group, TEMPLATES.for_type(group.type_name), "Patient/p1", "Device/d1", ISSUED, existing
    )
    validate_resource("Observation", observation)
    if vs.is_vital_sign(observation["code"]["coding"]):
        assert_vital_signs_profile(observation)
    return observation


def one(*measurements, existing=None):
    (group,) = groups_of(*measurements)
    return build(group, existing)


def assert_ucum_quantity(quantity, code):
    assert quantity["system"] == vs.UCUM
    assert quantity["code"] == quantity["unit"]
    assert quantity["code"] in vs.VITAL_SIGNS[code].units


def assert_vital_signs_profile(observation):
    """The rules of the R4 Vital Signs profile listed in the reference."""
    assert observation["status"] == "final"
    categories = [c for concept in observation["category"] for c in concept["coding"]]
    assert {"system": vs.CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"} in categories
    codes = vs.loinc_codes(observation["code"]["coding"])
    assert codes
    assert observation["subject"]["reference"].startswith("Patient/")
    assert "effectiveDateTime" in observation or "effectivePeriod" in observation
    if "valueQuantity" in observation:
        assert_ucum_quantity(observation["valueQuantity"], codes[0])
    assert "valueSampledData" not in observation  # the R4 per-measure profiles allow valueQuantity only
    for component in observation.get("component", ()):
        assert "valueSampledData" not in component
        if "valueQuantity" in component:
            assert_ucum_quantity(component["valueQuantity"], vs.loinc_codes(component["code"]["coding"])[0])
    if vs.BP_PANEL in codes:
        assert not any(key.startswith("value") for key in observation)
        component_codes = {
            c for comp in observation["component"] for c in vs.loinc_codes(comp["code"]["coding"])
        }
        assert {vs.SYSTOLIC, vs.DIASTOLIC} <= component_codes


# --- Value types ---


def test_quantity_single_keeps_the_device_offset():
    at = datetime(2026, 3, 1, 10, 15, 30, tzinfo=PARIS)
    observation = one(m("pulse", at, bpm=72))
    assert observation["effectiveDateTime"] == "2026-03-01T10:15:30+02:00"
    assert observation["valueQuantity"] == {"value": 72, "unit": "/min", "system": vs.UCUM, "code": "/min"}
    assert "effectivePeriod" not in observation


def test_offset_with_minutes_and_fractions_is_kept():
    at = datetime(2026, 3, 1, 10, 15, 30, 250000, tzinfo=KOLKATA)
    assert one(m("pulse", at, bpm=72))["effectiveDateTime"] == "2026-03-01T10:15:30.250+05:30"
    assert format_datetime(datetime(2026, 3, 1, 8, tzinfo=UTC)) == "2026-03-01T08:00:00Z"
    assert format_datetime(datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)) == "2026-03-01T08:00:00.123456Z"


def test_observation_carries_status_code_subject_device_issued_identifier():
    observation = one(m("pulse", datetime(2026, 3, 1, 8, tzinfo=UTC), bpm=60))
    assert observation["resourceType"] == "Observation"
    assert observation["status"] == "final"
    assert observation["subject"] == {"reference": "Patient/p1"}
    assert observation["device"] == {"reference": "Device/d1"}
    assert observation["issued"] == "2026-03-02T12:00:00.000Z"
    assert observation["identifier"] == [{"system": OBSERVATION_ID_SYSTEM, "value": observation["id"]}]
    assert observation["code"]["coding"] == [loinc("8867-4"), {"system": TYPE_SYSTEM, "code": "pulse"}]
    assert observation["code"]["text"] == "Heart rate"


def test_string_numbers_become_json_numbers():
    observation = one(m("pulse", datetime(2026, 3, 1, 8, tzinfo=UTC), bpm=" 72.5 "))
    assert observation["valueQuantity"]["value"] == 72.5


def test_quantity_that_is_not_a_number_is_a_mapping_error():
    (group,) = groups_of(m("pulse", datetime(2026, 3, 1, 8, tzinfo=UTC), bpm="fast"))
    with pytest.raises(MappingError) as error:
        build(group)
    assert error.value.reason == INVALID_OBSERVATION


def test_quantity_of_a_daily_window_takes_the_latest_measurement():
    day = datetime(2026, 3, 1, tzinfo=UTC)
    observation = one(
        m("weight", day + timedelta(hours=20), kg=81.2), m("weight", day + timedelta(hours=7), kg=80)
    )
    assert observation["valueQuantity"]["value"] == 81.2
    assert observation["effectivePeriod"] == {
        "start": "2026-03-01T00:00:00.000Z",
        "end": "2026-03-01T23:59:59.999Z",
    }


def test_string_value_and_template_category():
    observation = one(m("status", datetime(2026, 3, 1, 8, tzinfo=PARIS), state="charging"))
    assert observation["valueString"] == "charging"
    assert observation["category"] == [{"coding": [{"system": VENDOR, "code": "device"}], "text": "Device"}]


def test_numbers_become_strings_for_string_values():
    assert one(m("status", datetime(2026, 3, 1, tzinfo=UTC), state=3))["valueString"] == "3"


def test_codeable_concept_value_comes_from_the_template():
    observation = one(m("worn", datetime(2026, 3, 1, 8, 5, tzinfo=UTC), worn="true"))
    concept = dict(observation["valueCodeableConcept"])
    assert concept.pop("extension") == [observed_at("2026-03-01T08:05:00Z")]
    assert concept == {
        "coding": [{"system": VENDOR, "code": "worn", "display": "Worn"}],
        "text": "Device worn",
    }
    assert "category" not in observation


def test_glucose_is_ucum_but_not_a_vital_sign():
    observation = one(m("glucose", datetime(2026, 3, 1, tzinfo=UTC), mgdl=105))
    assert "category" not in observation
    assert observation["valueQuantity"] == {"value": 105, "unit": "mg/dL", "system": vs.UCUM, "code": "mg/dL"}


def test_vital_sign_category_is_added_for_vital_signs():
    observation = one(m("pulse", datetime(2026, 3, 1, 8, tzinfo=UTC), bpm=60))
    assert observation["category"] == [vs.vital_sign_category()]


def test_no_value_for_the_template_is_a_mapping_error():
    (group,) = groups_of(m("pulse", datetime(2026, 3, 1, 8, tzinfo=UTC), other=60))
    with pytest.raises(MappingError) as error:
        build(group)
    assert error.value.reason == MISSING_REQUIRED_VALUE


# --- Components ---


def test_blood_pressure_panel_has_systolic_and_diastolic_components():
    observation = one(m("bloodpressure", datetime(2026, 3, 1, 8, tzinfo=PARIS), systolic=120, diastolic=80))
    systolic, diastolic = observation["component"]
    assert systolic["code"]["coding"][0] == loinc("8480-6", "Systolic blood pressure")
    assert systolic["valueQuantity"] == {"value": 120, "unit": "mm[Hg]", "system": vs.UCUM, "code": "mm[Hg]"}
    assert diastolic["code"]["coding"][0] == loinc("8462-4", "Diastolic blood pressure")
    assert diastolic["valueQuantity"]["value"] == 80
    assert not any(key.startswith("value") for key in observation)


def test_missing_diastolic_is_written_as_data_absent():
    observation = one(m("bloodpressure", datetime(2026, 3, 1, 8, tzinfo=UTC), systolic=120))
    absent = observation["component"][1]
    assert vs.loinc_codes(absent["code"]["coding"]) == ["8462-4"]
    assert absent["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert "valueQuantity" not in absent


def test_merge_fills_a_data_absent_component():
    at = datetime(2026, 3, 1, 8, tzinfo=UTC)
    stored = one(m("bloodpressure", at, systolic=120))
    merged = one(m("bloodpressure", at, diastolic=79), existing=stored)
    assert [c["valueQuantity"]["value"] for c in merged["component"]] == [120, 79]
    assert all("dataAbsentReason" not in c for c in merged["component"])


# --- SampledData ---


def hour(minute, second=0):
    return datetime(2026, 3, 1, 8, minute, second, tzinfo=UTC)


def test_sampled_data_fills_an_hour_with_gaps():
    observation = one(
        m("heartrate", hour(0), hr=70),
        m("heartrate", hour(2, 30), hr=72.5),
        m("heartrate", hour(59, 59), hr=90),
    )
    sampled = observation["valueSampledData"]
    tokens = sampled["data"].split(" ")
    assert len(tokens) == 60
    assert tokens[:4] == ["70", "E", "72.5", "E"]
    assert tokens[-1] == "90"
    assert tokens.count("E") == 57
    assert sampled["origin"] == {"value": 0, "unit": "/min"}  # an MDC code: no unit table, the unit as written
    assert (sampled["period"], sampled["dimensions"]) == (60000, 1)
    assert observation["effectivePeriod"] == {
        "start": "2026-03-01T08:00:00.000Z",
        "end": "2026-03-01T08:59:59.999Z",
    }
    assert observation["code"]["coding"][0] == {
        "system": vs.MDC, "code": "147842", "display": "Heart rate (ECG)",
    }
    assert "category" not in observation  # not a LOINC vital sign


def test_sampled_data_origin_of_a_table_code_is_a_ucum_quantity():
    observation = one(m("cgm", hour(0), mgdl=110), m("cgm", hour(12), mgdl=118.5))
    sampled = observation["valueSampledData"]
    assert sampled["origin"] == {"value": 0, "unit": "mg/dL", "system": vs.UCUM, "code": "mg/dL"}
    assert_ucum_quantity(sampled["origin"], "41653-7")
    assert sampled["period"] == 300000
    assert sampled["data"] == " ".join(["110", "E", "118.5"] + ["E"] * 9)  # the hour in 5-minute slots
    assert "category" not in observation


def test_later_value_wins_on_the_same_slot():
    observation = one(m("heartrate", hour(5, 50), hr=99), m("heartrate", hour(5, 10), hr=61))
    assert observation["valueSampledData"]["data"].split()[5] == "99"


def test_sampled_data_window_follows_utc_for_offset_devices():
    observation = one(m("heartrate", datetime(2026, 3, 1, 10, 3, tzinfo=PARIS), hr=64))
    assert observation["effectivePeriod"]["start"] == "2026-03-01T08:00:00.000Z"
    assert observation["valueSampledData"]["data"].split()[3] == "64"


def test_sampled_data_merge_keeps_existing_samples_and_adds_new_ones():
    stored = one(m("heartrate", hour(1), hr=70), m("heartrate", hour(2), hr=71))
    stored["meta"] = {"versionId": "3"}
    merged = one(m("heartrate", hour(2, 30), hr=75), m("heartrate", hour(10), hr=80), existing=stored)
    tokens = merged["valueSampledData"]["data"].split()
    assert tokens[1:3] == ["70", "75"]
    assert tokens[10] == "80"
    assert len(tokens) == 60
    assert merged["id"] == stored["id"]
    assert merged["meta"] == {"versionId": "3"}
    assert stored["valueSampledData"]["data"].split()[2] == "71"  # the stored one is not modified


def test_sampled_data_merge_is_idempotent():
    measurements = [m("heartrate", hour(i), hr=60 + i) for i in range(0, 60, 7)]
    stored = one(*measurements)
    assert one(*measurements, existing=stored) == stored


def test_correlation_sampled_data_spans_the_session_and_merge_extends_it():
    start = datetime(2026, 3, 1, 8, 0, 0, tzinfo=PARIS)
    stored = one(
        m("session", start, "s1", rmssd=40), m("session", start + timedelta(seconds=3), "s1", rmssd=42)
    )
    assert stored["effectivePeriod"] == {
        "start": "2026-03-01T08:00:00+02:00",
        "end": "2026-03-01T08:00:03+02:00",
    }
    assert stored["valueSampledData"]["data"] == "40 E E 42"
    assert "category" not in stored
    merged = one(m("session", start + timedelta(seconds=5), "s1", rmssd=45), existing=stored)
    assert merged["effectivePeriod"] == {
        "start": "2026-03-01T08:00:00+02:00",
        "end": "2026-03-01T08:00:05+02:00",
    }
    assert merged["valueSampledData"]["data"] == "40 E E 42 E 45"


def test_correlation_merge_with_earlier_samples_moves_the_start():
    start = datetime(2026, 3, 1, 8, 0, 10, tzinfo=UTC)
    stored = one(m("session", start, "s1", rmssd=40))
    merged = one(m("session", start - timedelta(seconds=2), "s1", rmssd=38), existing=stored)
    assert merged["effectivePeriod"]["start"] == "2026-03-01T08:00:08Z"
    assert merged["valueSampledData"]["data"] == "38 E 40"


def test_sampled_data_too_long_is_a_mapping_error():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    (group,) = groups_of(
        m("session", start, "s", rmssd=1), m("session", start + timedelta(days=3), "s", rmssd=2)
    )
    with pytest.raises(MappingError) as error:
        build(group)
    assert error.value.reason == INVALID_OBSERVATION


# --- Merge of single values ---


def test_quantity_merge_takes_the_latest_measurement():
    day = datetime(2026, 3, 1, tzinfo=UTC)
    stored = one(m("weight", day + timedelta(hours=7), kg=80))
    merged = one(
        m("weight", day + timedelta(hours=9), kg=79.5),
        m("weight", day + timedelta(hours=8), kg=90),
        existing=stored,
    )
    assert merged["valueQuantity"]["value"] == 79.5
    assert merged["id"] == stored["id"]


def test_merge_replaces_the_category_and_code_from_the_template():
    stored = one(m("status", datetime(2026, 3, 1, tzinfo=UTC), state="idle"))
    stored["category"] = [{"text": "old"}]
    stored["note"] = [{"text": "kept"}]
    merged = one(m("status", datetime(2026, 3, 1, tzinfo=UTC), state="charging"), existing=stored)
    assert merged["valueString"] == "charging"
    assert merged["category"][0]["text"] == "Device"
    assert merged["note"] == [{"text": "kept"}]


def test_codeable_concept_merge():
    stored = one(m("worn", hour(5), worn=1))
    merged = one(m("worn", hour(6), worn=1), existing=stored)
    assert merged["valueCodeableConcept"]["coding"] == stored["valueCodeableConcept"]["coding"]
    assert merged["valueCodeableConcept"]["extension"] == [observed_at(format_datetime(hour(6)))]


def test_windowed_value_keeps_the_latest_reading_by_time_whatever_the_arrival_order():
    later = one(m("worn", hour(30), worn=1))
    assert one(m("worn", hour(10), worn=1), existing=later)["valueCodeableConcept"] == later["valueCodeableConcept"]


def observed_at(text):
    return {"url": OBSERVED_AT, "valueDateTime": text}


# --- Ids ---


def test_same_message_twice_gives_the_same_id():
    at = datetime(2026, 3, 1, 10, 15, tzinfo=PARIS)
    (first,) = groups_of(m("pulse", at, bpm=72))
    (second,) = groups_of(m("pulse", at, bpm=72))
    assert observation_id(first) == observation_id(second)
    assert build(first) == build(second)


def test_id_is_a_valid_fhir_id():
    (group,) = groups_of(
        m("pulse", datetime(2026, 3, 1, tzinfo=UTC), device="dev/with spaces|pipes" * 20, bpm=1)
    )
    assert FHIR_ID.match(observation_id(group))


def test_same_instant_in_another_offset_gives_the_same_id():
    (paris,) = groups_of(m("pulse", datetime(2026, 3, 1, 10, tzinfo=PARIS), bpm=72))
    (utc,) = groups_of(m("pulse", datetime(2026, 3, 1, 8, tzinfo=UTC), bpm=72))
    assert observation_id(paris) == observation_id(utc)


def test_measurements_of_one_window_share_an_id():
    (early,) = groups_of(m("heartrate", hour(1), hr=1))
    (late,) = groups_of(m("heartrate", hour(59), hr=1))
    (next_hour,) = groups_of(m("heartrate", hour(0) + timedelta(hours=1), hr=1))
    assert observation_id(early) == observation_id(late) != observation_id(next_hour)


@pytest.mark.parametrize("change", [{"device": "dev-2"}, {"patient": "pat-2"}])
def test_ids_differ_by_device_and_patient(change):
    at = datetime(2026, 3, 1, tzinfo=UTC)
    (base,) = groups_of(m("pulse", at, bpm=1))
    (other,) = groups_of(m("pulse", at, bpm=1, **change))
    assert observation_id(base) != observation_id(other)


def test_ids_differ_by_type_and_correlation_id():
    at = datetime(2026, 3, 1, tzinfo=UTC)
    pulse, status = groups_of(m("pulse", at, bpm=1), m("status", at, state="x"))
    assert observation_id(pulse) != observation_id(status)
    s1, s2 = groups_of(m("session", at, "s1", rmssd=1), m("session", at, "s2", rmssd=1))
    assert observation_id(s1) != observation_id(s2)
    (s1_later,) = groups_of(m("session", at + timedelta(seconds=9), "s1", rmssd=1))
    assert observation_id(s1) == observation_id(s1_later)


def test_references_may_be_given_as_objects_and_encounter_is_optional():
    (group,) = groups_of(m("pulse", datetime(2026, 3, 1, tzinfo=UTC), bpm=1))
    observation = build_observation(
        group,
        TEMPLATES.for_type("pulse"),
        {"reference": "Patient/p9"},
        {"reference": "Device/d9"},
        "2026-03-02T00:00:00Z",
        encounter_ref="Encounter/e1",
    )
    validate_resource("Observation", observation)
    assert observation["encounter"] == {"reference": "Encounter/e1"}
    assert observation["issued"] == "2026-03-02T00:00:00Z"


def test_existing_observation_is_not_mutated():
    stored = one(m("weight", datetime(2026, 3, 1, 7, tzinfo=UTC), kg=80))
    snapshot = copy.deepcopy(stored)
    one(m("weight", datetime(2026, 3, 1, 9, tzinfo=UTC), kg=81), existing=stored)
    assert stored == snapshot


# --- Device and Patient identity ---


def test_device_and_patient_ids_are_deterministic_and_valid():
    assert identity.device_resource_id("SN-1") == identity.device_resource_id("SN-1")
    assert identity.device_resource_id("SN-1") != identity.device_resource_id("SN-2")
    assert identity.device_resource_id("X") != identity.patient_resource_id("X")
    assert FHIR_ID.match(identity.patient_resource_id("MRN 0001/é"))


def test_new_device_links_its_patient():
    patient_id = identity.patient_resource_id("MRN-7")
    device = identity.new_device("SN-1", patient_id)
    validate_resource("Device", device)
    assert device["id"] == identity.device_resource_id("SN-1")
    assert device["identifier"] == [{"system": identity.DEVICE_ID_SYSTEM, "value": "SN-1"}]
    assert device["status"] == "active"
    assert device["patient"] == {"reference": f"Patient/{patient_id}"}
    assert "patient" not in identity.new_device("SN-1")


def test_new_patient():
    patient = identity.new_patient("MRN-7")
    validate_resource("Patient", patient)
    assert patient["id"] == identity.patient_resource_id("MRN-7")
    assert patient["identifier"] == [{"system": identity.PATIENT_ID_SYSTEM, "value": "MRN-7"}]


def test_empty_identifiers_are_refused():
    with pytest.raises(ValueError):
        identity.device_resource_id("")
    with pytest.raises(ValueError):
        identity.new_patient(" ")


# --- Layering ---


def test_mapping_imports_neither_flask_nor_pymongo():
    import pathlib

    folder = pathlib.Path(identity.__file__).parent
    for path in folder.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(flask|pymongo)\b", source, re.M), path.name


def test_sampled_data_merge_with_a_fractional_period_keeps_every_slot():
    templates = load_fhir_templates(
        {
            "templateType": "CollectionFhir",
            "template": [
                code_value(
                    "tremor",
                    [{"code": "tremor", "system": VENDOR}],
                    periodInterval=-1,
                    value={
                        "valueName": "g",
                        "valueType": "SampledData",
                        "defaultPeriod": 333.3,
                        "unit": "[g]",
                    },
                )
            ],
        }
    )
    t0 = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)

    def at(index, value):
        return m("tremor", t0 + timedelta(milliseconds=index * 333.3 + 0.1), "s1", g=value)

    def build_with(measurements, existing=None):
        (group,) = group_measurements(measurements, templates)[0]
        observation = build_observation(
            group, templates.for_type("tremor"), "Patient/p", "Device/d", ISSUED, existing
        )
        validate_resource("Observation", observation)
        return observation

    stored = build_with([at(0, 1), at(5, 2), at(29, 3)])
    merged = build_with([at(30, 4)], existing=stored)
    tokens = merged["valueSampledData"]["data"].split()
    assert len(tokens) == 31
    assert {i: t for i, t in enumerate(tokens) if t != "E"} == {0: "1", 5: "2", 29: "3", 30: "4"}


def test_sampled_data_value_that_is_not_a_number_is_a_mapping_error():
    (group,) = groups_of(m("heartrate", hour(1), hr="n/a"))
    with pytest.raises(MappingError) as error:
        build(group)
    assert error.value.reason == INVALID_OBSERVATION


def test_built_observations_can_be_checked_against_limits():
    observation = one(m("bloodpressure", datetime(2026, 3, 1, 8, tzinfo=UTC), systolic=350, diastolic=80))
    assert vs.check_limits(observation) == [
        "Observation.component[0].value: 8480-6 value 350 mm[Hg] is outside 40..300 mm[Hg]"
    ]
    sampled = one(m("cgm", hour(1), mgdl=105), m("cgm", hour(20), mgdl=5))
    assert vs.check_limits(sampled) == ["Observation.value: 41653-7 value 5 mg/dL is outside 10..1000 mg/dL"]
    pulse = one(m("pulse", hour(1), bpm=10))
    assert vs.check_limits(pulse) == ["Observation.value: 8867-4 value 10 /min is outside 20..300 /min"]
    waveform = one(m("heartrate", hour(1), hr=72), m("heartrate", hour(2), hr=10))
    assert vs.check_limits(waveform) == []  # limits are per LOINC code: an MDC-coded waveform has none
