"""Deterministic Device and Patient ids and the placeholders made for them in create mode.

An id is the SHA-256 of the identifier's system and value (as MedTech does), so
the same serial number or MRN always names the same resource and an upsert by
id never makes a second one, whichever process writes first.
"""

import hashlib

DEVICE_ID_SYSTEM = "urn:fhir-iomt:device-id"
PATIENT_ID_SYSTEM = "urn:fhir-iomt:patient-id"


def _hash_id(system, value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an identifier of {system} must be a non-empty string")
    return hashlib.sha256(f"{system}_{value}".encode()).hexdigest()


def device_resource_id(device_identifier):
    """The Device id (64 hex characters) of a device identifier."""
    return _hash_id(DEVICE_ID_SYSTEM, device_identifier)


def patient_resource_id(patient_identifier):
    """The Patient id (64 hex characters) of a patient identifier."""
    return _hash_id(PATIENT_ID_SYSTEM, patient_identifier)


def new_device(device_identifier, patient_id=None):
    """A placeholder Device for an identifier, linked to the Patient with resource id `patient_id`."""
    device = {
        "resourceType": "Device",
        "id": device_resource_id(device_identifier),
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": device_identifier}],
        "status": "active",
    }
    if patient_id:
        device["patient"] = {"reference": f"Patient/{patient_id}"}
    return device


def new_patient(patient_identifier):
    """A placeholder Patient for an identifier."""
    return {
        "resourceType": "Patient",
        "id": patient_resource_id(patient_identifier),
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": patient_identifier}],
    }
