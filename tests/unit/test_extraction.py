"""Search fields extracted at write time."""

from fhir_iomt.fhir.dates import parse_range
from fhir_iomt.fhir.params import MISSING_DATE, extract_search_fields, reference_key


def test_observation_fields():
    resource = {
        "resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}, {"code": "local"}]},
        "subject": {"reference": "Patient/p1"}, "device": {"reference": "Device/d1"},
        "effectivePeriod": {"start": "2026-11-23T10:00:00+01:00", "end": "2026-11-23T11:00:00+01:00"},
    }
    fields = extract_search_fields("Observation", resource, 5)
    assert fields["patient"] == "Patient/p1" and fields["subject"] == "Patient/p1"
    assert fields["device"] == "Device/d1" and fields["status"] == "final"
    expected = {"8867-4", "http://loinc.org|8867-4", "http://loinc.org|", "local", "|local"}
    assert set(fields["code"]) == expected
    assert "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs" in fields["category"]
    assert fields["date"] == parse_range("2026-11-23T09:00:00Z").start
    assert fields["date_end"] == parse_range("2026-11-23T10:00:00Z").end
    assert (fields["id"], fields["lu"]) == ("o1", 5)


def test_device_subject_is_not_a_patient():
    fields = extract_search_fields(
        "Observation", {"id": "o", "subject": {"reference": "Device/d"}, "code": {}}, 1
    )
    assert "patient" not in fields and fields["subject"] == "Device/d"


def test_missing_date_gets_the_marker():
    fields = extract_search_fields("Observation", {"id": "o", "code": {}}, 1)
    assert fields["date"] == fields["date_end"] == MISSING_DATE


def test_patient_names_normalized_and_exact():
    resource = {"id": "p", "name": [{"family": "Müller", "given": ["Anna", "Lena"]}],
                "identifier": [{"system": "urn:mrn", "value": "42"}], "birthDate": "1950"}
    fields = extract_search_fields("Patient", resource, 1)
    assert fields["family"] == ["muller"] and fields["family_exact"] == ["Müller"]
    assert fields["given"] == ["anna", "lena"]
    assert "urn:mrn|42" in fields["identifier"] and "42" in fields["identifier"]
    assert fields["birthdate_end"] - fields["birthdate"] + 1 == 365 * 86_400_000


def test_reference_key_forms():
    assert reference_key("Patient/1") == "Patient/1"
    assert reference_key("https://h/fhir/Patient/1/_history/2", ("https://h/fhir",)) == "Patient/1"
    assert reference_key("https://other/fhir/Patient/1/_history/2", ("https://h/fhir",)) == (
        "https://other/fhir/Patient/1"
    )
    assert reference_key("#contained") is None
    assert reference_key("urn:uuid:1234") is None
    assert reference_key("justid") is None
