"""The search parameters this server supports, and how each is extracted at write time.

Each parameter fills one key (or, for dates, two keys: start and end) of the
flat search sub-document stored beside the resource, so queries never scan the
resource itself.
"""

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from .audit import AUDIT_TYPE, CLIENT_SYSTEM, OBJECT_ROLE_SYSTEM
from .dates import DateRange, parse_range

# Bounds of open Period ends, and the marker stored when a resource has no date,
# so that date sorts and keyset pages still see it (always first in ascending order).
MIN_DATE = -(2**52)
MAX_DATE = 2**52
MISSING_DATE = -(2**53)


@dataclass(frozen=True)
class SearchParam:
    """One supported search parameter of one resource type."""

    name: str
    type: str  # token | reference | date | string
    key: str
    extract: Callable = field(repr=False)
    array: bool = False
    targets: tuple = ()
    description: str = ""


def normalize_text(text):
    """Lower-case, accent-free form used for FHIR string matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def reference_key(reference, local_bases=()):
    """Search key of a literal reference, or None for contained and urn: references.

    A relative reference, or an absolute one on one of `local_bases`, becomes
    'Type/id'; a reference to another server keeps its full URL, so that it never
    matches a local resource that happens to share the id. Versions are dropped.
    """
    if not reference or reference.startswith("#") or reference.startswith("urn:"):
        return None
    reference = reference.split("/_history/", 1)[0].rstrip("/")
    if "://" in reference:
        for base in local_bases:
            if reference.startswith(base.rstrip("/") + "/"):
                reference = reference[len(base.rstrip("/")) + 1 :]
                break
        else:
            return reference if len(reference.split("/")) >= 5 else None
    parts = reference.split("/")
    return reference if len(parts) == 2 and all(parts) else None


def reference_type(key):
    """The resource type named by a reference key ('Patient' for '.../Patient/1')."""
    parts = key.split("/")
    return parts[-2] if len(parts) >= 2 else None


def coding_tokens(system, code):
    """Tokens one (system, code) pair answers to: 'S|C', 'C', '|C' (no system) and 'S|'."""
    tokens = []
    if code:
        tokens.append(code)
        tokens.append(f"{system}|{code}" if system else f"|{code}")
    if system:
        tokens.append(f"{system}|")
    return tokens


def _codeable_tokens(concepts):
    tokens = []
    for concept in concepts:
        for coding in (concept or {}).get("coding") or []:
            tokens.extend(coding_tokens(coding.get("system"), coding.get("code")))
    return _unique(tokens)


def _identifier_tokens(identifiers):
    tokens = []
    for identifier in identifiers or []:
        tokens.extend(coding_tokens(identifier.get("system"), identifier.get("value")))
    return _unique(tokens)


def _unique(values):
    return list(dict.fromkeys(v for v in values if v is not None))


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _effective_range(resource):
    """Range of Observation.effective[x] (dateTime, instant or Period), or None."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        if resource.get(key):
            return parse_range(resource[key])
    period = resource.get("effectivePeriod")
    if period and (period.get("start") or period.get("end")):
        start = parse_range(period["start"]).start if period.get("start") else MIN_DATE
        end = parse_range(period["end"]).end if period.get("end") else MAX_DATE
        return DateRange(start, end)
    return None


def _names(resource, parts):
    values = []
    for name in resource.get("name") or []:
        for part in parts:
            values.extend(_as_list(name.get(part)))
    return _unique(values)


def _ref(path):
    return lambda r, local_bases: reference_key((r.get(path) or {}).get("reference"), local_bases)


def _patient_ref(path):
    def extract(resource, local_bases):
        key = reference_key((resource.get(path) or {}).get("reference"), local_bases)
        return key if key and reference_type(key) == "Patient" else None

    return extract


def _first_reference(references, local_bases, wanted_type=None):
    for reference in references:
        key = reference_key(reference, local_bases)
        if key and (wanted_type is None or reference_type(key) == wanted_type):
            return key
    return None


def _first(values):
    return next((v for v in values if v), None)


def _agent_references(resource):
    return [(a.get("who") or {}).get("reference") for a in resource.get("agent") or []]


def _entity_references(resource):
    return [(e.get("what") or {}).get("reference") for e in resource.get("entity") or []]


def _is_patient_role(entity):
    role = entity.get("role") or {}
    return role.get("code") == "1" and role.get("system") == OBJECT_ROLE_SYSTEM


def _audit_patient(resource, local_bases):
    """The patient of an AuditEvent: its Patient-role entity, else any Patient entity or agent."""
    entities = sorted(resource.get("entity") or [], key=lambda e: not _is_patient_role(e))
    references = [(e.get("what") or {}).get("reference") for e in entities] + _agent_references(resource)
    return _first_reference(references, local_bases, "Patient")


def _audit_client(resource):
    identifiers = [(a.get("who") or {}).get("identifier") or {} for a in resource.get("agent") or []]
    return _first(i.get("value") for i in identifiers if i.get("system") == CLIENT_SYSTEM)


# AuditEvents are written once by the server (lastUpdated = recorded), so `date` shares the
# `lu` key with _lastUpdated: one set of indexes serves both, and the default sort.
# Reference and scalar token fields keep the first value only: the query side matches a
# reference with $eq, and every AuditEvent the server builds has at most one of each.
AUDIT_EVENT_PARAMS = (
    SearchParam("date", "date", "lu", lambda r: parse_range(r["recorded"]) if r.get("recorded") else None,
                description="AuditEvent.recorded (equals meta.lastUpdated)"),
    SearchParam("type", "token", "type", lambda r: _codeable_tokens([{"coding": [r.get("type") or {}]}]),
                array=True, description="AuditEvent.type (rest, or DICOM 110114 for authentication)"),
    SearchParam("subtype", "token", "subtype", lambda r: _codeable_tokens([{"coding": r.get("subtype") or []}]),
                array=True, description="AuditEvent.subtype (the restful interaction, e.g. read, search-type)"),
    SearchParam("action", "token", "action", lambda r: r.get("action"), description="AuditEvent.action (C R U D E)"),
    SearchParam("outcome", "token", "outcome", lambda r: r.get("outcome"),
                description="AuditEvent.outcome (0 success, 4 refused or invalid, 8 server error)"),
    SearchParam("agent", "reference", "agent", lambda r, bases: _first_reference(_agent_references(r), bases),
                targets=("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person"),
                description="The user (fhirUser) that made the request"),
    SearchParam("altid", "token", "altid", lambda r: _first(a.get("altId") for a in r.get("agent") or []),
                description="The user's login name (AuditEvent.agent.altId)"),
    SearchParam("entity", "reference", "entity", lambda r, bases: _first_reference(_entity_references(r), bases),
                targets=("Observation", "Device", "Patient"), description="The resource the request was about"),
    SearchParam("patient", "reference", "patient", _audit_patient, targets=("Patient",),
                description="The patient concerned (entity with role Patient, or a Patient agent)"),
    SearchParam("address", "token", "address",
                lambda r: _first((a.get("network") or {}).get("address") for a in r.get("agent") or []),
                description="The client's network address (AuditEvent.agent.network.address)"),
    SearchParam("client", "token", "client", _audit_client,
                description=f"The client application ({CLIENT_SYSTEM}|client_id of an agent)"),
)


def _person_params(resource_type, identifier_note):
    """identifier and name, as Patient and Practitioner both have them."""
    return (
        SearchParam("identifier", "token", "identifier",
                    lambda r: _identifier_tokens(r.get("identifier")), array=True,
                    description=f"{resource_type}.identifier ({identifier_note})"),
        SearchParam("name", "string", "name",
                    lambda r: _names(r, ("text", "family", "given", "prefix", "suffix")),
                    array=True, description=f"Any part of {resource_type}.name"),
    )


COMMON = (
    SearchParam("_id", "token", "id", lambda r: r.get("id"), description="Logical id"),
    SearchParam(
        "_lastUpdated", "date", "lu", None, description="When the server last changed the resource"
    ),
)

PARAMS = {
    "Observation": (
        SearchParam("patient", "reference", "patient", _patient_ref("subject"),
                    targets=("Patient",), description="The subject, when it is a Patient"),
        SearchParam("subject", "reference", "subject", _ref("subject"),
                    targets=("Patient", "Group", "Device", "Location"),
                    description="The subject of the observation"),
        SearchParam("code", "token", "code", lambda r: _codeable_tokens([r.get("code")]),
                    array=True, description="Observation.code (system|code)"),
        SearchParam("category", "token", "category",
                    lambda r: _codeable_tokens(r.get("category") or []), array=True,
                    description="Observation.category"),
        SearchParam("device", "reference", "device", _ref("device"),
                    targets=("Device", "DeviceMetric"), description="The measuring device"),
        SearchParam("status", "token", "status", lambda r: r.get("status"),
                    description="Observation.status"),
        SearchParam("date", "date", "date", _effective_range,
                    description="Observation.effective[x] (dateTime, instant or Period)"),
    ),
    "Device": (
        SearchParam("identifier", "token", "identifier",
                    lambda r: _identifier_tokens(r.get("identifier")), array=True,
                    description="Device.identifier (system|value)"),
        SearchParam("patient", "reference", "patient", _patient_ref("patient"),
                    targets=("Patient",), description="Device.patient"),
        SearchParam("type", "token", "type", lambda r: _codeable_tokens([r.get("type")]),
                    array=True, description="Device.type"),
        SearchParam("manufacturer", "string", "manufacturer",
                    lambda r: _as_list(r.get("manufacturer")), array=True,
                    description="Device.manufacturer"),
        SearchParam("model", "string", "model", lambda r: _as_list(r.get("modelNumber")),
                    array=True, description="Device.modelNumber"),
    ),
    "Patient": (
        *_person_params("Patient", "system|value"),
        SearchParam("family", "string", "family", lambda r: _names(r, ("family",)),
                    array=True, description="Patient.name.family"),
        SearchParam("given", "string", "given", lambda r: _names(r, ("given",)),
                    array=True, description="Patient.name.given"),
        SearchParam("birthdate", "date", "birthdate",
                    lambda r: parse_range(r["birthDate"]) if r.get("birthDate") else None,
                    description="Patient.birthDate"),
        SearchParam("gender", "token", "gender", lambda r: r.get("gender"),
                    description="Patient.gender"),
    ),
    "Practitioner": _person_params("Practitioner", "system|value; users: urn:fhir-iomt:username"),
    AUDIT_TYPE: AUDIT_EVENT_PARAMS,
}

RESOURCE_TYPES = tuple(PARAMS)
# Types only the server writes (services/audit.py): read, vread, search and instance history only.
READ_ONLY_TYPES = frozenset({AUDIT_TYPE})

# Sort keys clients may ask for, by type: _sort value -> search sub-document key.
SORTS = {
    "Observation": {"date": "date", "_lastUpdated": "lu"},
    "Device": {"_lastUpdated": "lu"},
    "Patient": {"_lastUpdated": "lu"},
    "Practitioner": {"_lastUpdated": "lu"},
    AUDIT_TYPE: {"date": "lu", "_lastUpdated": "lu"},
}


def params_of(resource_type):
    """All search parameters of a type, the common ones first, by name."""
    return {p.name: p for p in COMMON + PARAMS[resource_type]}


def extract_search_fields(resource_type, resource, last_updated_ms, local_bases=()):
    """The flat search sub-document stored beside a resource.

    `local_bases` are this server's public base URLs: absolute references on them are local.
    """
    fields = {"id": resource["id"], "lu": last_updated_ms, "lu_end": last_updated_ms}
    for param in PARAMS[resource_type]:
        arguments = (resource, local_bases) if param.type == "reference" else (resource,)
        value = param.extract(*arguments)
        if param.type == "date":
            value = value or DateRange(MISSING_DATE, MISSING_DATE)
            fields[param.key] = value.start
            fields[f"{param.key}_end"] = value.end
        elif param.type == "string":
            fields[param.key] = _unique(normalize_text(v) for v in value)
            fields[f"{param.key}_exact"] = value
        elif value not in (None, []):
            fields[param.key] = value
    return fields
