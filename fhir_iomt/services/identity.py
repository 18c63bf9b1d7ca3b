"""Which Patient and Device a reading belongs to, in MedTech's two identity modes.

create: the Device and Patient are made from the message's identifiers when missing
(deterministic ids, so retries and concurrent posts converge on one of each).
lookup: the Device must exist, found by identifier, and be linked to its Patient.
A device linked to another patient is a mismatch: reported, never re-linked.
"""

from dataclasses import dataclass, field

from ..domain.errors import Conflict, VersionConflict
from ..domain.measurement import (
    DEVICE_NOT_LINKED,
    DEVICE_PATIENT_MISMATCH,
    MISSING_PATIENT_ID,
    UNKNOWN_DEVICE,
    UNKNOWN_PATIENT,
    MappingError,
)
from ..fhir import expr
from ..mapping.identity import device_resource_id, new_device, new_patient, patient_resource_id


@dataclass
class Identity:
    """References for one group's Observation and the resources to create before writing it."""

    patient_ref: str
    device_ref: str
    to_create: list = field(default_factory=list)  # [(resource_type, resource)]
    to_link: tuple | None = None  # (device document, patient_ref) for an unlinked device
    ensured: bool = False


def _linked_patient(device):
    return ((device.get("patient") or {}).get("reference")) or None


class IdentityResolver:
    """Resolves identities for one batch (reads first; writes only in `ensure`)."""

    def __init__(self, store, resources, mode):
        self.store = store
        self.resources = resources
        self.mode = mode
        self._known = {}  # (device id, patient id) -> Identity or MappingError, for this batch
        self._devices, self._patients = {}, {}  # prefetched: resource id -> stored document or None

    def prefetch(self, groups):
        """Read the batch's Devices and Patients in two queries (create mode), instead of two per device."""
        if self.mode != "create":
            return
        pairs = {(g.device_id, g.patient_id) for g in groups if g.patient_id}
        self._devices = self.store.get_many("Device", {device_resource_id(d) for d, _ in pairs})
        self._patients = self.store.get_many("Patient", {patient_resource_id(p) for _, p in pairs})

    def _get(self, resource_type, resource_id):
        prefetched = self._devices if resource_type == "Device" else self._patients
        if resource_id in prefetched:
            return prefetched[resource_id]
        return self.store.get(resource_type, resource_id)

    def resolve(self, group):
        """The Identity of a group; MappingError when it cannot be resolved (cached per batch)."""
        key = (group.device_id, group.patient_id)
        if key not in self._known:
            try:
                self._known[key] = self._lookup(group) if self.mode == "lookup" else self._create(group)
            except MappingError as error:
                self._known[key] = error
        found = self._known[key]
        if isinstance(found, MappingError):
            raise found
        return found

    def _create(self, group):
        if not group.patient_id:
            raise MappingError(MISSING_PATIENT_ID, "identity mode 'create' needs a patient id in the message")
        device_id = device_resource_id(group.device_id)
        patient_ref = f"Patient/{patient_resource_id(group.patient_id)}"
        identity = Identity(patient_ref, f"Device/{device_id}")
        device = self._get("Device", device_id)
        if device is None:
            device_resource = new_device(group.device_id, patient_ref.split("/", 1)[1])
            identity.to_create.append(("Device", device_resource))
        else:
            linked = _linked_patient(device["resource"])
            if linked and linked != patient_ref:
                raise MappingError(DEVICE_PATIENT_MISMATCH, "the device is linked to another patient")
            if not linked:
                identity.to_link = (device, patient_ref)
        if self._get("Patient", patient_ref.split("/", 1)[1]) is None:
            identity.to_create.append(("Patient", new_patient(group.patient_id)))
        return identity

    def _find_one(self, resource_type, identifier, reason, what):
        criteria = expr.AnyOf("identifier", (identifier,), array=True)
        found = self.store.search_page(resource_type, criteria, "lu", False, 2, None)
        if not found:
            raise MappingError(reason, f"no {what} has the identifier in the message")
        if len(found) > 1:
            raise MappingError(reason, f"several {what}s have the identifier in the message")
        return found[0]["resource"]

    def _lookup(self, group):
        device = self._find_one("Device", group.device_id, UNKNOWN_DEVICE, "Device")
        linked = _linked_patient(device)
        if not linked:
            raise MappingError(DEVICE_NOT_LINKED, f"Device/{device['id']} is not linked to a patient")
        if group.patient_id:
            patient = self._find_one("Patient", group.patient_id, UNKNOWN_PATIENT, "Patient")
            if f"Patient/{patient['id']}" != linked:
                raise MappingError(DEVICE_PATIENT_MISMATCH, "the device is linked to another patient")
        return Identity(linked, f"Device/{device['id']}")

    def ensure(self, identity):
        """Create the missing Device/Patient and link an unlinked device; MappingError on a mismatch."""
        if identity.ensured:
            return
        for resource_type, resource in identity.to_create:
            try:
                self.resources.create_with_id(resource_type, resource)
            except Conflict:
                self._check_concurrent(resource_type, resource["id"], identity.patient_ref)
        if identity.to_link:
            self._link(*identity.to_link)
        identity.ensured = True

    def _check_concurrent(self, resource_type, resource_id, patient_ref):
        if resource_type != "Device":
            return
        current = self.store.get("Device", resource_id)
        linked = _linked_patient(current["resource"]) if current else None
        if linked and linked != patient_ref:
            raise MappingError(DEVICE_PATIENT_MISMATCH, "the device is linked to another patient")

    def _link(self, device_document, patient_ref):
        resource = dict(device_document["resource"], patient={"reference": patient_ref})
        try:
            self.resources.update("Device", resource["id"], resource, if_match=str(device_document["v"]))
        except (VersionConflict, Conflict):
            self._check_concurrent("Device", resource["id"], patient_ref)
