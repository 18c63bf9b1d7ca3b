"""The audit trail: one AuditEvent per API access or refusal, stored as version 1 of a read-only resource."""

import uuid

from ..fhir.audit import AUDIT_TYPE, audit_event
from ..fhir.dates import format_instant, millis_of_instant
from .resources import stored_document


class AuditService:
    """Records AuditEvents; reads, searches and history go through the generic services."""

    def __init__(self, store, local_bases=()):
        self.store = store
        self.local_bases = tuple(local_bases)

    def record(self, record):
        """Store the AuditEvent of an AuditRecord (no validation: the builder is trusted); returns its id."""
        event_id = str(uuid.uuid4())
        event = audit_event(record, event_id)
        # lastUpdated is the recorded instant: `date` and _lastUpdated then share one indexed key.
        instant = format_instant(record.recorded)
        millis = millis_of_instant(instant)
        document = stored_document(AUDIT_TYPE, event, 1, instant, millis, self.local_bases)
        entry = {"rid": event_id, "v": 1, "lu": millis, "at": instant, "method": "POST", "status": 201,
                 "resource": event}
        self.store.insert_with_history(AUDIT_TYPE, document, entry)
        return event_id
