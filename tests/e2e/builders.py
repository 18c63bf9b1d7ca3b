"""FHIR R4 resources the end-to-end tests send: a patient, a scale and vital-sign Observations."""

from datetime import UTC, datetime, timedelta

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5.99999.1"
SERIAL_SYSTEM = "urn:example:device-serial"

BODY_WEIGHT = {"code": "29463-7", "display": "Body weight", "unit": "kg", "ucum": "kg",
               "profile": "http://hl7.org/fhir/StructureDefinition/bodyweight"}
HEART_RATE = {"code": "8867-4", "display": "Heart rate", "unit": "beats/minute", "ucum": "/min",
              "profile": "http://hl7.org/fhir/StructureDefinition/heartrate"}

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def instant(moment):
    """FHIR dateTime with seconds and a Z zone."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hours_after_start(hours):
    return START + timedelta(hours=hours)


def patient(tag, given="Ada"):
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN_SYSTEM, "value": f"MRN-{tag}"}],
        "name": [{"family": f"E2e{tag}", "given": [given]}],
        "gender": "female",
        "birthDate": "1956-02-03",
    }


def device(tag, patient_id):
    return {
        "resourceType": "Device",
        "identifier": [{"system": SERIAL_SYSTEM, "value": f"SN-{tag}"}],
        "status": "active",
        "manufacturer": "Acme Medical",
        "modelNumber": "BW-100",
        "type": {"coding": [{"system": "http://snomed.info/sct", "code": "19892000",
                             "display": "Scale, device"}]},
        "patient": {"reference": f"Patient/{patient_id}"},
    }


def vital_sign(kind, patient_id, moment, value, device_id=None):
    """A Vital Signs profile Observation (final, category vital-signs, LOINC code, UCUM quantity)."""
    resource = {
        "resourceType": "Observation",
        "meta": {"profile": [kind["profile"]]},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs",
                                  "display": "Vital Signs"}], "text": "Vital Signs"}],
        "code": {"coding": [{"system": LOINC, "code": kind["code"], "display": kind["display"]}],
                 "text": kind["display"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": instant(moment),
        "valueQuantity": {"value": value, "unit": kind["unit"], "system": UCUM, "code": kind["ucum"]},
    }
    if device_id:
        resource["device"] = {"reference": f"Device/{device_id}"}
    return resource
