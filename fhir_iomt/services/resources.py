"""Create, read, update and delete FHIR resources with versions and history."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from ..domain.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    InvalidResource,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    VersionConflict,
)
from ..fhir.dates import format_instant
from ..fhir.params import READ_ONLY_TYPES, RESOURCE_TYPES, extract_search_fields
from ..fhir.validation import validate_resource
from .conditional import ConditionalCreate, condition_key

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass
class WriteResult:
    """What a write produced: the stored resource and whether it was created."""

    resource: dict
    created: bool


def check_type(resource_type):
    """NotFound unless the server serves this resource type."""
    if resource_type not in RESOURCE_TYPES:
        raise NotFound(f"Resource type '{resource_type}' is not supported by this server")


def check_writable(resource_type):
    """NotFound for an unknown type, MethodNotAllowed (405) for one only the server writes (AuditEvent)."""
    check_type(resource_type)
    if resource_type in READ_ONLY_TYPES:
        raise MethodNotAllowed(f"{resource_type} is read-only: the server alone writes it")


def _now():
    moment = datetime.now(UTC)
    return format_instant(moment), int(moment.timestamp() * 1000)


def parse_version(if_match):
    """The version number in an ETag such as W/"3"; InvalidRequest if malformed."""
    match = re.fullmatch(r'(?:W/)?"?(\d+)"?', (if_match or "").strip())
    if not match:
        raise InvalidRequest(f"If-Match '{if_match}' is not a version ETag like W/\"1\"")
    return int(match.group(1))


def stored_document(resource_type, resource, version, instant, millis, local_bases=()):
    """The document stored for one version: the resource with its meta, and its search fields."""
    resource["meta"] = dict(resource.get("meta") or {}, versionId=str(version), lastUpdated=instant)
    return {
        "_id": resource["id"],
        "v": version,
        "lu": millis,
        "resource": resource,
        "s": extract_search_fields(resource_type, resource, millis, local_bases),
    }


class ResourceService:
    """Versioned resource writes and reads over a store."""

    def __init__(self, store, search_service, local_bases=()):
        self.store = store
        self.search = search_service
        self.local_bases = tuple(local_bases)

    # Reads ---------------------------------------------------------------

    def read(self, resource_type, resource_id):
        """The current version; Gone if deleted, NotFound if never existed."""
        check_type(resource_type)
        document = self.store.get(resource_type, resource_id) if ID_PATTERN.match(resource_id) else None
        if document is not None:
            return document["resource"]
        latest = self.store.latest_history(resource_type, resource_id)
        if latest is not None and latest["resource"] is None:
            raise Gone(f"{resource_type}/{resource_id} was deleted")
        raise NotFound(f"{resource_type}/{resource_id} is not known")

    def vread(self, resource_type, resource_id, version_id):
        """One version; Gone if that version is a deletion."""
        check_type(resource_type)
        entry = self.store.version(resource_type, resource_id, version_id) if version_id.isdigit() else None
        if entry is None:
            raise NotFound(f"{resource_type}/{resource_id} has no version '{version_id}'")
        if entry["resource"] is None:
            raise Gone(f"Version {version_id} of {resource_type}/{resource_id} is a deletion")
        return entry["resource"]

    # Writes --------------------------------------------------------------

    def create(self, resource_type, body, if_none_exist=None, base=None, permit=None):
        """Create with a server-assigned id, or return the match of a conditional create.

        `base` is the URL the request came in on: absolute references on it are local.
        `permit(resource)` raises when the caller may not touch a resource (checked before any write).
        """
        check_writable(resource_type)
        validate_resource(resource_type, body)
        if permit:
            permit(body)

        def create():
            return self._write(resource_type, dict(body, id=str(uuid.uuid4())), 1, None, "POST", base)

        if if_none_exist is None:
            return WriteResult(create(), True)
        key = condition_key(resource_type, if_none_exist)
        resource, created = ConditionalCreate(self.store).run(
            key, lambda: self._conditional_match(resource_type, if_none_exist, base), create
        )
        if permit and not created:
            permit(resource)
        return WriteResult(resource, created)

    def create_with_id(self, resource_type, resource):
        """Create version 1 under the resource's own id; Conflict if that id exists."""
        check_writable(resource_type)
        validate_resource(resource_type, resource)
        if self.store.get(resource_type, resource["id"]) is not None:
            raise Conflict(f"{resource_type}/{resource['id']} exists")
        version = self._next_version_after_history(resource_type, resource["id"])
        return self._write(resource_type, dict(resource), version, None, "PUT", None)

    def update(self, resource_type, resource_id, body, if_match=None, base=None, permit=None):
        """Update, or create with the client's id when the resource does not exist (`permit`: as in create)."""
        check_writable(resource_type)
        if not ID_PATTERN.match(resource_id):
            raise InvalidResource(f"'{resource_id}' is not a valid FHIR id")
        validate_resource(resource_type, body)
        if body.get("id") != resource_id:
            raise InvalidResource(
                f"Resource id '{body.get('id')}' does not match the URL id '{resource_id}'",
                [f"{resource_type}.id"],
            )
        current = self.store.get(resource_type, resource_id)
        if permit:
            permit(body)
            if current is not None:
                permit(current["resource"])
        expected = parse_version(if_match) if if_match else None
        if expected is not None and (current is None or current["v"] != expected):
            found = current["v"] if current else "none"
            raise VersionConflict(f"If-Match version {expected} is not the current version ({found})")
        if current is not None:
            version = current["v"] + 1
        else:
            version = self._next_version_after_history(resource_type, resource_id)
        resource = self._write(resource_type, dict(body), version, current, "PUT", base)
        return WriteResult(resource, created=current is None)

    def delete(self, resource_type, resource_id, permit=None):
        """Delete the current version, keeping history; idempotent on deleted resources (`permit`: as in create)."""
        check_writable(resource_type)
        current = self.store.get(resource_type, resource_id) if ID_PATTERN.match(resource_id) else None
        if current is None:
            if self.store.latest_history(resource_type, resource_id) is None:
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            return
        if permit:
            permit(current["resource"])
        if not self.store.remove(resource_type, resource_id, current["v"]):
            raise Conflict(f"{resource_type}/{resource_id} changed while it was being deleted")
        instant, millis = _now()
        try:
            self.store.add_history(
                resource_type,
                {"rid": resource_id, "v": current["v"] + 1, "lu": millis, "at": instant,
                 "method": "DELETE", "status": 204, "resource": None},
            )
        except Conflict:
            self.store.insert(resource_type, current)
            raise

    # Internals -----------------------------------------------------------

    def _next_version_after_history(self, resource_type, resource_id):
        latest = self.store.latest_history(resource_type, resource_id)
        return latest["v"] + 1 if latest else 1

    def _conditional_match(self, resource_type, query_items, base):
        matches = self.search.match_for_condition(resource_type, query_items, base)
        if len(matches) > 1:
            raise PreconditionFailed("If-None-Exist matches more than one resource")
        return matches[0] if matches else None

    def _write(self, resource_type, resource, version, current, method, base):
        instant, millis = _now()
        bases = self.local_bases + ((base,) if base else ())
        document = stored_document(resource_type, resource, version, instant, millis, bases)
        if current is None:
            self.store.insert(resource_type, document)
        elif not self.store.replace(resource_type, document, current["v"]):
            raise Conflict(f"{resource_type}/{resource['id']} was changed concurrently; retry")
        try:
            self.store.add_history(
                resource_type,
                {"rid": resource["id"], "v": version, "lu": millis, "at": instant,
                 "method": method, "status": 201 if current is None else 200, "resource": resource},
            )
        except Conflict:
            self._undo(resource_type, document, current)
            raise
        return resource

    def _undo(self, resource_type, document, previous):
        """Put back what was current before a write whose version another writer took in history."""
        if previous is None:
            self.store.remove(resource_type, document["_id"], document["v"])
        else:
            self.store.replace(resource_type, previous, document["v"])
