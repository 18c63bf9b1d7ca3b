"""The FHIR resources behind users: a patient user's Patient, a clinician's Practitioner."""

import uuid

from ..domain.errors import Gone, NotFound

USERNAME_SYSTEM = "urn:fhir-iomt:username"
# Practitioner ids are derived from the username, so adding a user twice never makes two.
_NAMESPACE = uuid.UUID("5b0c5b8e-52a4-4c5e-9c1e-7d0f3f1a2b61")


class People:
    """Looks up Patients and keeps one Practitioner per clinician user."""

    def __init__(self, resources):
        self.resources = resources

    def patient_exists(self, patient_id):
        """True when a current (not deleted) Patient has this id."""
        try:
            self.resources.read("Patient", patient_id)
        except (NotFound, Gone):
            return False
        return True

    def practitioner_for(self, username, display_name=None):
        """The 'Practitioner/id' of a clinician user, created (or its name updated) as needed."""
        practitioner_id = str(uuid.uuid5(_NAMESPACE, username))
        resource = {"resourceType": "Practitioner", "id": practitioner_id, "active": True,
                    "identifier": [{"system": USERNAME_SYSTEM, "value": username}],
                    "name": [{"text": display_name or username}]}
        self.resources.update("Practitioner", practitioner_id, resource)
        return f"Practitioner/{practitioner_id}"
