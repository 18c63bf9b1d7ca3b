"""Enforcement of a token's SMART scopes on every FHIR interaction.

A patient-context scope confines access to the patient's compartment; a query-restricted
scope (`patient/Observation.rs?category=vital-signs`) adds its parameters. Searches get the
constraints as extra search parameters (ANDed, so a client cannot widen them); single
resources (read, vread, history entries, _include, writes) are checked against them.
"""

from dataclasses import dataclass

from ..domain.errors import Forbidden
from ..fhir.compartment import COMPARTMENT_PARAM, in_compartment, matches_restriction

# FHIR restful interaction -> SMART v2 permission letter.
LETTER = {
    "read": "r", "vread": "r", "history-instance": "r",
    "search-type": "s", "history-type": "s",
    "create": "c", "update": "u", "delete": "d",
}


@dataclass(frozen=True)
class Constraint:
    """What one granting scope confines access to: a patient (or None) and query parameters."""

    patient: str | None
    restriction: tuple

    def search_items(self, resource_type):
        """The constraint as search parameters."""
        items = [(COMPARTMENT_PARAM[resource_type], self.patient)] if self.patient else []
        return items + list(self.restriction)


def _merged(constraints, resource_type):
    """One set of search parameters equivalent to the OR of several constraints, or None if there is none."""
    patients = {c.patient for c in constraints}
    if len(patients) != 1:
        return None
    base = Constraint(patients.pop(), ()).search_items(resource_type)
    if any(not c.restriction for c in constraints):
        return base
    names = {name for c in constraints for name, _ in c.restriction}
    if len(names) != 1 or any(len(c.restriction) != 1 for c in constraints):
        return None
    values = dict.fromkeys(v for c in constraints for _, value in c.restriction for v in value.split(","))
    return base + [(names.pop(), ",".join(values))]


class Guard:
    """The permissions of one request's Access, applied to types and resources."""

    def __init__(self, access, local_bases=()):
        self.access = access
        self.local_bases = tuple(local_bases)
        self.patients_seen = []

    def constraints(self, resource_type, interaction):
        """None when unrestricted, else the Constraints any of which suffices; Forbidden when nothing grants it."""
        letter = LETTER[interaction]
        found = []
        for scope in self.access.scopes.grants_for(resource_type, letter):
            if scope.context == "patient":
                if not self.access.patient or resource_type not in COMPARTMENT_PARAM:
                    continue
                constraint = Constraint(self.access.patient, scope.restriction)
            else:
                constraint = Constraint(None, scope.restriction)
            if constraint.patient is None and not constraint.restriction:
                return None
            found.append(constraint)
        if not found:
            raise Forbidden(f"The token's scopes do not allow {interaction} of {resource_type}",
                            scope=f"{self._context()}/{resource_type}.{letter}")
        return found

    def _context(self):
        """The scope context to name in a 403 hint: what this kind of token can hold."""
        if self.access.username is None:
            return "system"
        return "patient" if self.access.patient and "user" not in self.access.scopes.contexts() else "user"

    def _fits(self, resource_type, resource, constraint):
        if constraint.patient and not in_compartment(resource_type, resource, constraint.patient, self.local_bases):
            return False
        return matches_restriction(resource_type, resource, constraint.restriction, self.local_bases)

    def allows(self, resource_type, interaction, resource):
        """True when the token may perform the interaction on this resource."""
        try:
            constraints = self.constraints(resource_type, interaction)
        except Forbidden:
            return False
        return constraints is None or any(self._fits(resource_type, resource, c) for c in constraints)

    def check(self, resource_type, interaction, resource):
        """Forbidden unless the token may perform the interaction on this resource."""
        self._note_patient(resource_type, resource)
        if not self.allows(resource_type, interaction, resource):
            raise Forbidden(f"{resource_type}/{resource.get('id', '(new)')} is outside what this token may "
                            f"{interaction} (patient compartment or scope restriction)")

    def permit(self, resource_type, interaction):
        """A `permit(resource)` callback for the resource service's writes."""
        return lambda resource: self.check(resource_type, interaction, resource)

    def search_items(self, resource_type, interaction="search-type"):
        """Extra search parameters that confine a search to what the token may see."""
        constraints = self.constraints(resource_type, interaction)
        if constraints is None:
            return []
        items = constraints[0].search_items(resource_type) if len(constraints) == 1 else _merged(
            constraints, resource_type)
        if items is None:
            raise Forbidden(f"The token's {resource_type} scopes have restrictions that cannot be combined "
                            "in one search; ask for one of them")
        self.patients_seen.extend(v for k, v in items if k == COMPARTMENT_PARAM.get(resource_type))
        return items

    def include_filter(self, resource_type, resource):
        """For _include: True when the token may read the included resource."""
        return self.allows(resource_type, "read", resource)

    def _note_patient(self, resource_type, resource):
        if resource_type == "Patient" and resource.get("id"):
            self.patients_seen.append(resource["id"])
            return
        reference = ((resource.get("subject") or resource.get("patient")) or {}).get("reference") or ""
        if reference.startswith("Patient/"):
            self.patients_seen.append(reference.split("/", 1)[1])
