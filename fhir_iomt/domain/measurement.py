"""What a device message says, once normalized by a device mapping template."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Measurement:
    """One reading of one type from one device at one time (MedTech's normalized message)."""

    type_name: str
    occurrence: datetime  # timezone-aware; the offset the device sent is kept
    device_id: str
    values: tuple  # ((valueName, value), ...) with value a str, int or float
    patient_id: str | None = None
    encounter_id: str | None = None
    correlation_id: str | None = None

    def value(self, name):
        """The value named `name`, or None."""
        for key, value in self.values:
            if key == name:
                return value
        return None


class MappingError(Exception):
    """A message that cannot become Observations; `reason` is a stable code for dead letters."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TemplateError(Exception):
    """A template that cannot be applied; `problems` lists (path, message) pairs."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.problems))


# Dead-letter reasons (stable codes integrators filter on).
NOT_JSON = "not-json"
NO_TEMPLATE_MATCH = "no-template-match"
MISSING_REQUIRED_VALUE = "missing-required-value"
MISSING_DEVICE_ID = "missing-device-id"
BAD_TIMESTAMP = "bad-timestamp"
FUTURE_TIMESTAMP = "future-timestamp"
VALUE_OUT_OF_RANGE = "value-out-of-range"
NO_FHIR_TEMPLATE = "no-fhir-template"
UNKNOWN_DEVICE = "unknown-device"
DEVICE_PATIENT_MISMATCH = "device-patient-mismatch"
MISSING_PATIENT_ID = "missing-patient-id"
INVALID_OBSERVATION = "invalid-observation"
DEVICE_NOT_LINKED = "device-not-linked"
UNKNOWN_PATIENT = "unknown-patient"
NO_TEMPLATES = "no-templates"
WRITE_FAILED = "write-failed"
