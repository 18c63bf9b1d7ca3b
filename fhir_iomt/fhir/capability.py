"""The CapabilityStatement, generated from what the server really implements."""

from .audit import AUDIT_TYPE
from .params import PARAMS, READ_ONLY_TYPES, SORTS, params_of
from .query import include_values

FHIR_VERSION = "4.0.1"
FORMATS = ["application/fhir+json", "application/json", "json"]
INTERACTIONS = ["read", "vread", "update", "delete", "history-instance", "history-type",
                "create", "search-type"]
READ_ONLY_INTERACTIONS = ["read", "vread", "search-type", "history-instance", "history-type"]
# Search parameters of this server's own, with no HL7 SearchParameter to point to.
CUSTOM_PARAMS = {("AuditEvent", "client")}


def _search_param(resource_type, param):
    entry = {"name": param.name, "type": param.type}
    if (resource_type, param.name) not in CUSTOM_PARAMS:
        entry["definition"] = f"http://hl7.org/fhir/SearchParameter/{_definition(resource_type, param.name)}"
    entry["documentation"] = param.description
    return entry


# What differs for a type only the server writes (AuditEvent): no create, update or delete.
READ_ONLY_ENTRY = {
    "versioning": "versioned",
    "updateCreate": False,
    "conditionalCreate": False,
}


def _resource(resource_type):
    params = params_of(resource_type)
    sorts = ", ".join(sorted(SORTS[resource_type]))
    entry = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [_search_param(resource_type, p) for p in params.values()],
        "documentation": f"Sort with _sort on: {sorts} (prefix '-' for descending).",
    }
    if include_values(resource_type):
        entry["searchInclude"] = include_values(resource_type)
    if resource_type in READ_ONLY_TYPES:
        entry.update(READ_ONLY_ENTRY, interaction=[{"code": code} for code in READ_ONLY_INTERACTIONS],
                     documentation=f"Written by the server only. {entry['documentation']}")
    return entry


def _definition(resource_type, name):
    if name.startswith("_"):
        return f"Resource-{name[1:]}"
    if resource_type == AUDIT_TYPE:  # no shared (clinical-*) definitions
        return f"{resource_type}-{name}"
    if resource_type in ("Patient", "Practitioner"):
        individual = {"family", "given", "gender", "birthdate"}
        return f"individual-{name}" if name in individual else f"{resource_type}-{name}"
    shared = {"patient": "clinical-patient", "code": "clinical-code", "date": "clinical-date"}
    return shared.get(name) or f"{resource_type}-{name}"


def capability_statement(base, software_version, published, max_count, default_count, max_body):
    """The server's CapabilityStatement (fhirVersion 4.0.1)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "kind": "instance",
        "publisher": "fhir-iomt",
        "software": {"name": "fhir-iomt", "version": software_version},
        "implementation": {"description": "fhir-iomt FHIR R4 server", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": FORMATS,
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    f"Search pages hold _count results (default {default_count}, maximum "
                    f"{max_count}); follow the Bundle's next link to page. Dates without a time "
                    f"zone are read as UTC. Request bodies up to {max_body} bytes. Unknown search "
                    "parameters are ignored and reported unless Prefer: handling=strict. _include "
                    "(see searchInclude) adds the referenced resources of each page's matches; "
                    "_include:iterate and _revinclude are not supported."
                ),
                "resource": [_resource(t) for t in PARAMS],
                "searchParam": [
                    {"name": "_count", "type": "number"},
                    {"name": "_sort", "type": "string"},
                    {"name": "_summary", "type": "token", "documentation": "count only"},
                    {"name": "_total", "type": "token"},
                ],
            }
        ],
    }
