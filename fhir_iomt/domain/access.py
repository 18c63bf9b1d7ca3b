"""Who is making a request, as established from its bearer token."""

from dataclasses import dataclass

from .scopes import ScopeSet


@dataclass(frozen=True)
class Access:
    """The authorized principal: client, optional user, granted scopes and patient context."""

    client_id: str
    client_name: str
    scopes: ScopeSet
    username: str | None = None
    fhir_user: str | None = None
    patient: str | None = None
