"""The search parameters this server supports, and how each is extracted at write time.

Each parameter fills one key (or, for dates, two keys: start and end) of the
flat search sub-document stored beside the resource, so queries never scan the
resource itself.
"""

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

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
        SearchParam("identifier", "token", "identifier",
                    lambda r: _identifier_tokens(r.get("identifier")), array=True,
                    description="Patient.identifier (system|value)"),
        SearchParam("name", "string", "name",
                    lambda r: _names(r, ("text", "family", "given", "prefix", "suffix")),
                    array=True, description="Any part of Patient.name"),
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
}

RESOURCE_TYPES = tuple(PARAMS)

# Sort keys clients may ask for, by type: _sort value -> search sub-document key.
SORTS = {
    "Observation": {"date": "date", "_lastUpdated": "lu"},
    "Device": {"_lastUpdated": "lu"},
    "Patient": {"_lastUpdated": "lu"},
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
