"""Audit records of API accesses and the R4 AuditEvents built from them.

An AuditEvent names who (client and user), what (references, a search's query), when and the
outcome of one request; it never holds the content of a resource.
"""

import base64
from dataclasses import dataclass
from datetime import datetime

from .dates import format_instant

AUDIT_TYPE = "AuditEvent"
CLIENT_SYSTEM = "urn:fhir-iomt:client"
USER_SYSTEM = "urn:fhir-iomt:user"
SUBTYPE_SYSTEM = "urn:fhir-iomt:audit-subtype"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
EVENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
ROLE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"

RESTFUL_CODES = frozenset({
    "read", "vread", "update", "patch", "delete", "history", "history-instance", "history-type",
    "history-system", "create", "search", "search-type", "search-system", "capabilities",
    "transaction", "batch", "operation",
})
# Interactions of the authorization server: DICOM "User Authentication" events, not FHIR operations.
AUTHENTICATION_CODES = frozenset({"authorize", "login", "consent", "consentpage", "token", "revoke",
                                  "introspect", "logout"})
TYPE_LEVEL = frozenset({"search-type", "history-type"})

# Codings as (system, code, display); each event gets fresh dicts, so callers may change theirs.
REST_TYPE = (EVENT_TYPE_SYSTEM, "rest", "RESTful Operation")
AUTHENTICATION_TYPE = (DICOM, "110114", "User Authentication")
APPLICATION_SERVER = (SOURCE_TYPE_SYSTEM, "4", "Application Server")
CLIENT_ROLE = (DICOM, "110150", "Application")
USER_ROLE = (ROLE_TYPE_SYSTEM, "humanuser", "human user")
PERSON = (ENTITY_TYPE_SYSTEM, "1", "Person")
SYSTEM_OBJECT = (ENTITY_TYPE_SYSTEM, "2", "System Object")
PATIENT_ROLE = (OBJECT_ROLE_SYSTEM, "1", "Patient")
RESOURCE_ROLE = (OBJECT_ROLE_SYSTEM, "4", "Domain Resource")
QUERY_ROLE = (OBJECT_ROLE_SYSTEM, "24", "Query")
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class AuditRecord:
    """What one request did, as the audit trail keeps it (identities and references, no content)."""

    interaction: str
    action: str
    method: str
    path: str
    status: int
    recorded: datetime
    resource_type: str | None = None
    resource_id: str | None = None
    query: str | None = None
    client_id: str | None = None
    client_name: str | None = None
    username: str | None = None
    fhir_user: str | None = None
    patient_id: str | None = None
    address: str | None = None
    outcome_desc: str | None = None


def outcome_code(status):
    """AuditEvent.outcome of an HTTP status: 0 success, 4 minor failure (4xx), 8 serious failure (5xx)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _coding(coding):
    system, code, display = coding
    return {"system": system, "code": code, "display": display}


def _concept(coding):
    return {"coding": [_coding(coding)]}


def _event_type(interaction):
    return _coding(AUTHENTICATION_TYPE if interaction in AUTHENTICATION_CODES else REST_TYPE)


def _subtype(interaction):
    if interaction in RESTFUL_CODES:
        return _coding((RESTFUL_INTERACTION, interaction, interaction))
    return {"system": SUBTYPE_SYSTEM, "code": interaction}


def _outcome_desc(record):
    parts = [f"HTTP {record.status}"] if record.status >= 400 else []
    if record.outcome_desc:
        parts.append(" ".join(record.outcome_desc.split())[:MAX_DESCRIPTION])
    return ": ".join(parts) or None


def _client_agent(record):
    who = {"identifier": {"system": CLIENT_SYSTEM, "value": record.client_id}}
    agent = {"type": _concept(CLIENT_ROLE), "who": who}
    if record.client_name:
        agent["name"] = record.client_name
    agent["requestor"] = True
    return agent


def _user_agent(record):
    if record.fhir_user:
        who = {"reference": record.fhir_user}
    else:
        who = {"identifier": {"system": USER_SYSTEM, "value": record.username}}
    agent = {"type": _concept(USER_ROLE), "who": who}
    if record.username:
        agent.update(altId=record.username, name=record.username)
    agent["requestor"] = True
    return agent


def _agents(record):
    agents = []
    if record.client_id:
        agents.append(_client_agent(record))
    if record.username or record.fhir_user:
        agents.append(_user_agent(record))
    if not agents:
        agents.append({"who": {"display": "anonymous"}, "requestor": True})
    if record.address:
        # The client application is the network endpoint; without one, whoever asked is.
        agents[0]["network"] = {"address": record.address, "type": "2"}
    return agents


def _query_base64(query):
    try:
        raw = query.encode("latin-1")  # the hook decodes the raw query bytes as latin-1
    except UnicodeEncodeError:
        raw = query.encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _versioned(record):
    """'/_history/n' of a vread's path, so the entity names the exact version read."""
    version = record.path.rsplit("/_history/", 1)[-1] if "/_history/" in record.path else ""
    return f"/_history/{version}" if record.interaction == "vread" and version.isdigit() else ""


def _subject_entity(record):
    """The entity the request was about: a resource, a type (searches, history) or a non-FHIR path."""
    if not record.resource_type:
        return {"what": {"display": record.path}, "type": _coding(SYSTEM_OBJECT)} if record.path else None
    kind = {"system": RESOURCE_TYPES_SYSTEM, "code": record.resource_type}
    if record.resource_id:
        reference = f"{record.resource_type}/{record.resource_id}{_versioned(record)}"
        return {"what": {"reference": reference}, "type": kind, "role": _coding(RESOURCE_ROLE)}
    entity = {"what": {"display": record.resource_type}, "type": kind}
    if record.query and record.interaction in TYPE_LEVEL:
        entity.update(role=_coding(QUERY_ROLE), query=_query_base64(record.query))
    else:
        entity["role"] = _coding(RESOURCE_ROLE)
    return entity


def _entities(record):
    subject = _subject_entity(record)
    entities = [subject] if subject else []
    if record.patient_id:
        reference = f"Patient/{record.patient_id}"
        if subject and subject["what"].get("reference", "").split("/_history/")[0] == reference:
            subject["role"] = _coding(PATIENT_ROLE)  # the resource is the patient: one entity, not two
        else:
            entities.append({"what": {"reference": reference}, "type": _coding(PERSON), "role": _coding(PATIENT_ROLE)})
    return entities


def audit_event(record, event_id):
    """The R4 AuditEvent of one audit record."""
    event = {
        "resourceType": AUDIT_TYPE,
        "id": event_id,
        "type": _event_type(record.interaction),
        "subtype": [_subtype(record.interaction)],
        "action": record.action,
        "recorded": format_instant(record.recorded),
        "outcome": outcome_code(record.status),
    }
    description = _outcome_desc(record)
    if description:
        event["outcomeDesc"] = description
    event["agent"] = _agents(record)
    event["source"] = {"observer": {"display": "fhir-iomt"}, "type": [_coding(APPLICATION_SERVER)]}
    entities = _entities(record)
    if entities:
        event["entity"] = entities
    return event
