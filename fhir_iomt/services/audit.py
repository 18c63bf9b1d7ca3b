"""The audit trail: one AuditEvent per API access or refusal, stored as version 1 of a read-only resource.

Events are written by a background thread in batches, off the request's path (an audit write
per request would cost each request a database round trip). Nothing is dropped: when the
queue is full, recording waits; a failed batch is retried; the queue is flushed before this
process reads the audit trail and when the worker exits.
"""

import logging
import os
import queue
import threading
import time
import uuid

from ..fhir.audit import AUDIT_TYPE, audit_event
from ..fhir.dates import format_instant, millis_of_instant
from .resources import stored_document

LOG = logging.getLogger(__name__)
MAX_BATCH = 500
MAX_QUEUE = 10_000
MAX_RETRY_DELAY = 5.0


class AuditService:
    """Records AuditEvents; reads, searches and history go through the generic services."""

    def __init__(self, store, local_bases=(), max_batch=MAX_BATCH, max_queue=MAX_QUEUE):
        self.store = store
        self.local_bases = tuple(local_bases)
        self.max_batch = max_batch
        self._queue = queue.Queue(max_queue)
        self._writer = None
        self._writer_pid = None
        self._start_lock = threading.Lock()
        self._stopping = False

    def record(self, record):
        """Queue the AuditEvent of an AuditRecord for writing (the builder is trusted: no validation); its id."""
        event_id = str(uuid.uuid4())
        event = audit_event(record, event_id)
        # lastUpdated is the recorded instant: `date` and _lastUpdated then share one indexed key.
        instant = format_instant(record.recorded)
        millis = millis_of_instant(instant)
        document = stored_document(AUDIT_TYPE, event, 1, instant, millis, self.local_bases)
        entry = {"rid": event_id, "v": 1, "lu": millis, "at": instant, "method": "POST", "status": 201,
                 "resource": event}
        self._ensure_writer()
        self._queue.put((document, entry))
        return event_id

    def flush(self, timeout=10.0):
        """Wait until every queued event is stored; False if that took longer than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self, timeout=10.0):
        """Store what is queued, then stop the writer (before the database connection is closed).

        False when some events could not be stored within `timeout` (the database is down): they are
        reported in the log as lost rather than retried against a connection about to close.
        """
        stored = self.flush(timeout)
        self._stopping = True
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout)
        self._writer = None
        return stored

    def _ensure_writer(self):
        # One writer per process: gunicorn forks workers, and a thread does not survive a fork.
        if self._writer is not None and self._writer_pid == os.getpid() and self._writer.is_alive():
            return
        with self._start_lock:
            if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._writer_pid = os.getpid()
                self._writer.start()

    def _run(self):
        while True:
            first = self._queue.get()
            if first is None:  # close()
                self._queue.task_done()
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # handled once this batch is written
                    self._queue.task_done()
                    break
                batch.append(item)
            self._write(batch)
            for _ in batch:
                self._queue.task_done()

    def _write(self, batch):
        """Store a batch, retrying until it is stored (writes are idempotent: ids are fixed)."""
        delay = 0.1
        while True:
            try:
                self.store.insert_all_with_history(AUDIT_TYPE, batch)
                return
            except Exception:  # noqa: BLE001 - keep the events and retry; the cause goes to the log
                if self._stopping:
                    LOG.error("audit: %d events could not be stored before shutdown", len(batch))
                    return
                LOG.exception("audit write failed; retrying in %.1f s (%d events kept)", delay, len(batch))
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
