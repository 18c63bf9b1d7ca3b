"""The active mapping templates: validated together, versioned, compiled once per version."""

import time
from dataclasses import dataclass

from ..domain.errors import FhirError, InvalidRequest
from ..domain.measurement import TemplateError
from ..fhir.dates import instant_now
from ..mapping.device_templates import load_device_templates
from ..mapping.fhir_templates import load_fhir_templates
from ..mapping.vital_signs import limits_with

IDENTITY_MODES = ("create", "lookup")


class InvalidTemplates(FhirError):
    """Templates that cannot be applied; nothing of them was stored."""

    status = 422
    code = "invalid"

    def __init__(self, problems):
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems),
                         [path for path, _ in problems])
        self.issues = problems


@dataclass(frozen=True)
class ActiveTemplates:
    """One compiled template version."""

    version: int
    device: object
    fhir: object
    identity: str
    limits: dict  # in force: defaults with the overrides
    created_at: str


LIMITS_FORM = 'must map LOINC code -> UCUM unit -> [low, high], e.g. {"8867-4": {"/min": [20, 300]}}'


def _bounds_ok(bounds):
    return (
        isinstance(bounds, list) and len(bounds) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        and bounds[0] <= bounds[1]
    )


def _limits(raw):
    """The physiological limits in force: the defaults with the template's overrides."""
    raw = raw or {}
    valid = isinstance(raw, dict) and all(
        isinstance(units, dict) and units and all(_bounds_ok(b) for b in units.values())
        for units in raw.values()
    )
    if not valid:
        raise InvalidTemplates([("limits", LIMITS_FORM)])
    return limits_with({code: {unit: tuple(b) for unit, b in units.items()} for code, units in raw.items()})


def compile_templates(document):
    """Validate a templates document (both templates, identity mode, limits) and compile it."""
    if not isinstance(document, dict):
        raise InvalidRequest("The body must be a JSON object with deviceTemplate and fhirTemplate")
    identity = document.get("identityMode", "create")
    problems = []
    if identity not in IDENTITY_MODES:
        problems.append(("identityMode", f"must be one of {', '.join(IDENTITY_MODES)}"))
    for key in ("deviceTemplate", "fhirTemplate"):
        if not isinstance(document.get(key), dict):
            problems.append((key, "is required and must be a JSON object"))
    if problems:
        raise InvalidTemplates(problems)
    try:
        device = load_device_templates(document["deviceTemplate"])
    except TemplateError as error:
        raise InvalidTemplates([(f"deviceTemplate.{p}", m) for p, m in error.problems]) from error
    try:
        fhir = load_fhir_templates(document["fhirTemplate"], device)
    except TemplateError as error:
        raise InvalidTemplates([(f"fhirTemplate.{p}", m) for p, m in error.problems]) from error
    return device, fhir, identity, _limits(document.get("limits"))


class TemplateService:
    """Reads and replaces the versioned templates; keeps compiled versions in memory."""

    # How long a worker trusts its idea of the active version; another process's PUT is seen after at most this.
    RECHECK_SECONDS = 1.0

    def __init__(self, ingest_store):
        self.store = ingest_store
        self._compiled = {}
        self._active = (None, float("-inf"))  # (ActiveTemplates or None, monotonic time checked)

    def put(self, document):
        """Validate and store a new version; returns its description."""
        device, fhir, identity, limits = compile_templates(document)
        latest = self.store.latest_templates()
        version = (latest["_id"] if latest else 0) + 1
        stored = {
            "_id": version,
            "createdAt": instant_now(),
            "identityMode": identity,
            "deviceTemplate": document["deviceTemplate"],
            "fhirTemplate": document["fhirTemplate"],
            "limits": document.get("limits") or {},
        }
        self.store.add_templates(stored)
        compiled = ActiveTemplates(version, device, fhir, identity, limits, stored["createdAt"])
        self._compiled[version] = compiled
        self._active = (compiled, time.monotonic())
        return describe(stored)

    def current_document(self):
        """The active version as stored, or None when no templates were loaded."""
        latest = self.store.latest_templates()
        return describe(latest) if latest else None

    def active(self):
        """The compiled active version, or None (re-read from the database at most once a second)."""
        cached, checked = self._active
        if time.monotonic() - checked < self.RECHECK_SECONDS:
            return cached
        found = self._load_active()
        self._active = (found, time.monotonic())
        return found

    def _load_active(self):
        latest = self.store.latest_templates()
        if latest is None:
            return None
        version = latest["_id"]
        if version not in self._compiled:
            device, fhir, identity, limits = compile_templates(latest)
            self._compiled[version] = ActiveTemplates(
                version, device, fhir, identity, limits, latest["createdAt"]
            )
        return self._compiled[version]


def describe(stored):
    """The public form of a stored template version."""
    return {
        "version": stored["_id"],
        "createdAt": stored["createdAt"],
        "identityMode": stored["identityMode"],
        "deviceTemplate": stored["deviceTemplate"],
        "fhirTemplate": stored["fhirTemplate"],
        "limits": stored.get("limits") or {},
    }
