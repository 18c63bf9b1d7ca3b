"""SMART on FHIR scopes (v1 and v2): parsing, granting and checking, on plain data.

A resource scope is `context/Type.permissions[?query]`: context is patient, user or
system; Type a resource type or `*`; permissions v2 letters (an ordered subset of
`cruds`) or v1 `read`, `write`, `*`. Other scopes (openid, launch, offline_access,
the ingest scopes...) are plain names.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

INTERACTIONS = "cruds"
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
CONTEXTS = ("patient", "user", "system")
# Types a wildcard never reaches: the audit trail needs a scope that names it.
EXPLICIT_ONLY = frozenset({"AuditEvent"})
# Scopes that are names, not resource permissions.
LAUNCH_SCOPES = frozenset({"launch", "launch/patient"})
IDENTITY_SCOPES = frozenset({"openid", "fhirUser", "profile"})
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})
INGEST_WRITE = "ingest:write"
INGEST_ADMIN = "ingest:admin"
SERVICE_SCOPES = frozenset({INGEST_WRITE, INGEST_ADMIN, "launch:create", "introspect"})
NAMED_SCOPES = LAUNCH_SCOPES | IDENTITY_SCOPES | REFRESH_SCOPES | SERVICE_SCOPES

_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{0,63})\.(read|write|\*|c?r?u?d?s?)(\?.+)?$")


class ScopeError(ValueError):
    """A scope string that is not valid SMART syntax."""


@dataclass(frozen=True)
class ResourceScope:
    """One permission: a context, a resource type (or '*'), interaction letters and a query restriction."""

    context: str
    resource_type: str
    interactions: frozenset
    restriction: tuple = ()

    def covers_type(self, resource_type):
        """True when this scope names the type, or is a wildcard and the type is not explicit-only."""
        if self.resource_type == "*":
            return resource_type not in EXPLICIT_ONLY
        return self.resource_type == resource_type

    def allows(self, resource_type, interaction):
        """True when the scope permits one interaction letter (c r u d s) on a type."""
        return interaction in self.interactions and self.covers_type(resource_type)

    def render(self):
        """The v2 form of this scope."""
        letters = "".join(c for c in INTERACTIONS if c in self.interactions)
        query = f"?{urlencode(self.restriction)}" if self.restriction else ""
        return f"{self.context}/{self.resource_type}.{letters}{query}"


def parse_resource_scope(text):
    """A ResourceScope, or ScopeError for a malformed one (v2 letters out of order, empty, unknown)."""
    match = _RESOURCE_SCOPE.match(text)
    if not match or not match.group(3):
        raise ScopeError(f"'{text}' is not a SMART resource scope")
    context, resource_type, permissions, query = match.groups()
    letters = V1_PERMISSIONS.get(permissions, permissions)
    try:
        restriction = tuple(parse_qsl(query[1:], keep_blank_values=True, strict_parsing=True)) if query else ()
    except ValueError as error:  # 'a' without '=': parse_qsl raises a plain ValueError
        raise ScopeError(f"'{text}' has a malformed query restriction") from error
    if query and (not restriction or any(not name or not value for name, value in restriction)):
        raise ScopeError(f"'{text}' has an empty query restriction")
    return ResourceScope(context, resource_type, frozenset(letters), restriction)


def split_scopes(text):
    """The distinct scope strings of a space-separated scope parameter, in order."""
    return list(dict.fromkeys((text or "").split()))


def is_resource_scope(text):
    """True when the string has the shape context/Type.permissions."""
    return "/" in text and text.split("/", 1)[0] in CONTEXTS


@dataclass(frozen=True)
class ScopeSet:
    """The scopes of a token: resource permissions and named scopes."""

    resources: tuple
    names: frozenset

    @classmethod
    def parse(cls, text):
        """Parse a granted scope string; malformed entries are ignored (they were never granted)."""
        resources, names = [], set()
        for scope in split_scopes(text):
            if is_resource_scope(scope) and scope not in LAUNCH_SCOPES:
                try:
                    resources.append(parse_resource_scope(scope))
                except ScopeError:
                    continue
            else:
                names.add(scope)
        return cls(tuple(resources), frozenset(names))

    def grants_for(self, resource_type, interaction):
        """The resource scopes that permit an interaction on a type."""
        return [s for s in self.resources if s.allows(resource_type, interaction)]

    def has(self, name):
        """True when a named scope (openid, ingest:write...) was granted."""
        return name in self.names

    def contexts(self):
        """The contexts (patient, user, system) of the resource scopes."""
        return {s.context for s in self.resources}


# What each kind of principal may ever hold: context -> interaction letters allowed.
ROLE_LIMITS = {
    "clinician": {"patient": frozenset("cruds"), "user": frozenset("cruds")},
    "patient": {"patient": frozenset("rs")},
    "system": {"system": frozenset("cruds")},
}
ROLE_NAMED = {
    "clinician": LAUNCH_SCOPES | IDENTITY_SCOPES | REFRESH_SCOPES,
    "patient": LAUNCH_SCOPES | IDENTITY_SCOPES | REFRESH_SCOPES,
    "system": SERVICE_SCOPES,
}


def _meet(asked, registered):
    """The scope both `asked` and `registered` allow, or None."""
    if asked.context != registered.context:
        return None
    if registered.resource_type == "*":
        resource_type = asked.resource_type
        if resource_type in EXPLICIT_ONLY:
            return None
    elif asked.resource_type == registered.resource_type or (
            asked.resource_type == "*" and registered.resource_type not in EXPLICIT_ONLY):
        resource_type = registered.resource_type
    else:
        return None
    interactions = asked.interactions & registered.interactions
    if not interactions:
        return None
    restriction = tuple(dict.fromkeys(registered.restriction + asked.restriction))
    return ResourceScope(asked.context, resource_type, interactions, restriction)


def _limit(scope, role):
    allowed = ROLE_LIMITS[role].get(scope.context, frozenset())
    interactions = scope.interactions & allowed
    return ResourceScope(scope.context, scope.resource_type, interactions, scope.restriction) if interactions else None


def grant(requested, registered, role, restriction_check=None):
    """The scope string granted: what was asked ∩ what the client is registered for ∩ what the role may do.

    A granted scope keeps the client's own wording when it is granted whole, else its v2
    form. `restriction_check(scope)` may veto scopes whose query restriction the server
    cannot enforce.
    """
    registered_scopes = ScopeSet.parse(registered)
    granted = []
    for text in split_scopes(requested):
        if not is_resource_scope(text) or text in LAUNCH_SCOPES:
            if text in registered_scopes.names and text in ROLE_NAMED[role]:
                granted.append(text)
            continue
        try:
            asked = parse_resource_scope(text)
        except ScopeError:
            continue
        for candidate in registered_scopes.resources:
            met = _meet(asked, candidate)
            met = met and _limit(met, role)
            if met is None or (restriction_check and met.restriction and not restriction_check(met)):
                continue
            granted.append(text if met == asked else met.render())
    return " ".join(dict.fromkeys(granted))


def check_registration(text, allowed_contexts):
    """ScopeError unless every scope of a client registration is well-formed and in an allowed context."""
    for scope in split_scopes(text):
        if not is_resource_scope(scope) or scope in LAUNCH_SCOPES:
            if scope not in NAMED_SCOPES:
                raise ScopeError(f"'{scope}' is not a scope this server knows")
            continue
        parsed = parse_resource_scope(scope)
        if parsed.context not in allowed_contexts:
            raise ScopeError(f"'{scope}': a {'/'.join(allowed_contexts)} client cannot hold {parsed.context}/ scopes")
