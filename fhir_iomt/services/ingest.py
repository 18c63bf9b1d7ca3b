"""Device messages in, Observations out: normalize, group, resolve identity, map, store.

Transport-agnostic: HTTP today, MQTT later; both call `IngestService.ingest`.
A message is accepted only when all its Observations are stored; otherwise it
goes to the dead letters with its payload and reason. Nothing is dropped.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..domain.errors import Conflict, FhirError, InvalidRequest, InvalidResource, NotFound, VersionConflict
from ..domain.measurement import (
    FUTURE_TIMESTAMP,
    INVALID_OBSERVATION,
    NO_TEMPLATES,
    NOT_JSON,
    VALUE_OUT_OF_RANGE,
    WRITE_FAILED,
    MappingError,
)
from ..fhir.dates import format_instant
from ..fhir.query import parse_count
from ..fhir.validation import validate_resource
from ..mapping.group import group_measurements
from ..mapping.to_fhir import build_observation, observation_id
from ..mapping.vital_signs import check_limits
from .identity import IdentityResolver
from .resources import stored_document
from .search import neighbour_cursors, page_window

MAX_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class RawMessage:
    """One message as received: its text, and its JSON value unless it did not parse."""

    text: str
    value: object = None
    parse_error: str | None = None


@dataclass
class MessageResult:
    """What became of one message."""

    index: int
    accepted: bool
    observations: list = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None
    dead_letter: str | None = None
    template_version: int | None = None

    def as_dict(self):
        """JSON form for the HTTP response."""
        if self.accepted:
            return {"index": self.index, "status": "accepted", "observations": self.observations,
                    "templateVersion": self.template_version}
        return {"index": self.index, "status": "rejected", "reason": self.reason, "detail": self.detail,
                "deadLetter": self.dead_letter, "templateVersion": self.template_version}


@dataclass
class _Batch:
    """One call's messages, the templates mapping them, and what became of each."""

    messages: list
    active: object
    source: str
    content_type: str | None
    issued: str
    owner: str | None = None
    results: dict = field(default_factory=dict)

    @property
    def version(self):
        return self.active.version if self.active else None

    def accept(self, plan):
        observations = [f"Observation/{obs_id}" for obs_id, *_ in plan.items]
        self.results[plan.index] = MessageResult(plan.index, True, observations, template_version=self.version)


@dataclass
class _Planned:
    """A mapped message waiting to be written."""

    index: int
    items: list  # [(observation id, group, template, identity)]
    observations: dict  # id -> Observation built as if new


def _content(resource):
    """A resource without what every write changes (meta, issued), for idempotency checks."""
    return {k: v for k, v in resource.items() if k not in ("meta", "issued")}


class IngestService:
    """Maps and stores device messages with the active templates."""

    def __init__(self, store, ingest_store, resources, templates, future_tolerance_s=300, now=None):
        self.store = store
        self.ingest_store = ingest_store
        self.resources = resources
        self.templates = templates
        self.future_tolerance = timedelta(seconds=future_tolerance_s)
        self.now = now or (lambda: datetime.now(UTC))

    # Entry point -----------------------------------------------------------

    def ingest(self, messages, source="http", content_type=None, owner=None):
        """Map and store a batch; returns one MessageResult per message, in order.

        `owner` is the client that sent the messages: its dead letters are its own to see.
        """
        active = self.templates.active()
        batch = _Batch(messages, active, source, content_type, format_instant(self.now()), owner)
        resolver = IdentityResolver(self.store, self.resources, active.identity) if active else None
        grouped = []
        for index, message in enumerate(messages):
            try:
                grouped.append((index, self._groups(message, active)))
            except MappingError as error:
                batch.results[index] = self._reject(batch, index, error)
        if resolver is not None:
            resolver.prefetch(group for _, groups in grouped for group in groups)
        planned = []
        for index, groups in grouped:
            try:
                planned.append(self._plan(index, groups, active, resolver, batch.issued))
            except MappingError as error:
                batch.results[index] = self._reject(batch, index, error)
        placed = [plan for plan in planned if self._write_identities(batch, plan, resolver)]
        failures = self._write_observations(placed, batch.issued)
        for plan in placed:
            if plan.index in failures:
                batch.results[plan.index] = self._reject(batch, plan.index, failures[plan.index])
            else:
                batch.accept(plan)
        return [batch.results[i] for i in range(len(messages))]

    # Mapping (no writes) ---------------------------------------------------

    def _groups(self, message, active):
        """The message's measurements, grouped as the FHIR templates say (pure mapping, no I/O)."""
        if message.parse_error is not None:
            raise MappingError(NOT_JSON, message.parse_error)
        if active is None:
            raise MappingError(NO_TEMPLATES, "no templates are loaded (PUT /ingest/templates)")
        measurements = active.device.normalize(message.value)
        self._check_times(measurements)
        groups, unmapped = group_measurements(measurements, active.fhir)
        if unmapped:
            raise unmapped[0][1]
        return groups

    def _plan(self, index, groups, active, resolver, issued):
        """Identity, Observations and their checks for one message's groups (reads only)."""
        items, observations = [], {}
        for group in groups:
            template = active.fhir.for_type(group.type_name)
            identity = resolver.resolve(group)
            obs_id = observation_id(group)
            observation = build_observation(group, template, identity.patient_ref, identity.device_ref, issued)
            self._check_observation(observation, active.limits)
            items.append((obs_id, group, template, identity))
            observations[obs_id] = observation
        return _Planned(index, items, observations)

    def _check_times(self, measurements):
        latest = self.now() + self.future_tolerance
        for measurement in measurements:
            if measurement.occurrence > latest:
                raise MappingError(
                    FUTURE_TIMESTAMP,
                    f"{measurement.type_name} at {measurement.occurrence.isoformat()} is in the future",
                )

    @staticmethod
    def _check_observation(observation, limits):
        problems = check_limits(observation, limits)
        if problems:
            raise MappingError(VALUE_OUT_OF_RANGE, "; ".join(problems))
        try:
            validate_resource("Observation", observation)
        except InvalidResource as error:
            raise MappingError(INVALID_OBSERVATION, error.diagnostics) from error

    # Writes ----------------------------------------------------------------

    def _write_identities(self, batch, plan, resolver):
        """Create the plan's missing Devices/Patients; False (and a dead letter) on a mismatch."""
        try:
            for _, _, _, identity in plan.items:
                resolver.ensure(identity)
            return True
        except MappingError as error:
            batch.results[plan.index] = self._reject(batch, plan.index, error)
            return False

    def _write_observations(self, planned, issued):
        """Insert new Observations in bulk, then merge the ones that existed; returns {index: error}."""
        instant, millis = issued, int(self.now().timestamp() * 1000)
        fresh, pending = {}, []
        for plan in planned:
            for item in plan.items:
                if item[0] in fresh:
                    pending.append((plan.index, item))
                else:
                    fresh[item[0]] = plan.observations[item[0]]
        documents = [stored_document("Observation", dict(o), 1, instant, millis) for o in fresh.values()]
        existing = self.store.insert_new("Observation", documents)
        with_history = self.store.add_history_many("Observation", [
            {"rid": d["_id"], "v": 1, "lu": millis, "at": instant, "method": "PUT", "status": 201,
             "resource": d["resource"]}
            for d in documents if d["_id"] not in existing
        ])
        for obs_id in with_history:
            # Deleted before: version 1 is in history already. Take the insert back and write
            # the Observation as the next version after its history (the merge path does).
            self.store.remove("Observation", obs_id, 1)
            existing.add(obs_id)
        pending += [(plan.index, item) for plan in planned for item in plan.items if item[0] in existing]
        failures = {}
        for index, item in pending:
            if index in failures:
                continue
            try:
                self._merge_into_existing(*item, issued)
            except FhirError as error:
                failures[index] = MappingError(WRITE_FAILED, f"Observation/{item[0]}: {error.diagnostics}")
        return failures

    def _merge_into_existing(self, obs_id, group, template, identity, issued):
        """Write a group into an Observation that exists (same message again, or same window)."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            current = self.store.get("Observation", obs_id)
            if current is None:
                try:
                    merged = build_observation(group, template, identity.patient_ref, identity.device_ref, issued)
                    self.resources.create_with_id("Observation", dict(merged, id=obs_id))
                    return
                except Conflict:
                    continue
            merged = build_observation(group, template, identity.patient_ref, identity.device_ref, issued,
                                       existing=current["resource"])
            if _content(merged) == _content(current["resource"]):
                return
            try:
                self.resources.update("Observation", obs_id, dict(merged, id=obs_id),
                                      if_match=str(current["v"]))
                return
            except (VersionConflict, Conflict):
                continue
        raise Conflict(f"Observation/{obs_id} kept changing; the message was not stored")

    # Dead letters ----------------------------------------------------------

    def _reject(self, batch, index, error):
        """Keep a message that cannot be stored as a dead letter, with its payload and reason."""
        letter_id = str(uuid.uuid4())
        moment = self.now()
        self.ingest_store.add_dead_letters([{
            "_id": letter_id, "dlid": letter_id, "received": int(moment.timestamp() * 1000),
            "receivedAt": format_instant(moment), "reason": error.reason, "detail": error.detail,
            "payload": batch.messages[index].text, "contentType": batch.content_type, "source": batch.source,
            "templateVersion": batch.version, "status": "open", "attempts": 1, "client": batch.owner,
        }])
        return MessageResult(index, False, reason=error.reason, detail=error.detail,
                             dead_letter=letter_id, template_version=batch.version)

    def replay(self, letter_id, parse, owner=None):
        """Map a dead letter again with the current templates; it is marked replayed when accepted.

        With an `owner`, only that client's dead letters can be replayed (others are not found).
        """
        letter = self.ingest_store.dead_letter(letter_id)
        if letter is None or (owner is not None and letter.get("client") != owner):
            raise NotFound(f"Dead letter {letter_id} is not known")
        if letter["status"] == "replayed":
            raise InvalidRequest(f"Dead letter {letter_id} was replayed already")
        [result] = self.ingest([parse(letter["payload"])], source=f"replay:{letter_id}",
                               content_type=letter.get("contentType"), owner=letter.get("client"))
        if result.accepted:
            self.ingest_store.update_dead_letter(letter_id, {
                "status": "replayed", "replayedAt": format_instant(self.now()),
                "observations": result.observations, "replayTemplateVersion": result.template_version,
            })
        else:
            # The replay's own dead letter carries the new reason; keep one letter per payload.
            self.ingest_store.delete_dead_letter(result.dead_letter)
            self.ingest_store.update_dead_letter(letter_id, {
                "reason": result.reason, "detail": result.detail, "attempts": letter.get("attempts", 1) + 1,
                "templateVersion": result.template_version,
            })
            result.dead_letter = letter_id
        return result


class DeadLetterService:
    """Lists, shows and deletes dead letters (replay is IngestService.replay)."""

    KIND = "dead-letters"

    def __init__(self, ingest_store, default_count, max_count):
        self.store = ingest_store
        self.default_count = default_count
        self.max_count = max_count

    def page(self, reason=None, since=None, until=None, count=None, token=None, owner=None):
        """(letters newest first, next page token or None); with `owner`, only that client's letters."""
        limit = self.default_count if count is None else parse_count(count, self.max_count)

        def fetch(reverse, size, after):
            if reverse:
                raise InvalidRequest("Dead-letter pages are only followed forwards")
            return self.store.dead_letter_page(reason, since, until, size, after, owner)

        rows, _, has_after = page_window(fetch, self.KIND, token, limit)
        _, following = neighbour_cursors(rows, lambda r: (r["received"], r["dlid"]), self.KIND, False, has_after)
        return [public_letter(r) for r in rows], following

    def get(self, letter_id, owner=None):
        """One dead letter; NotFound if unknown (or, with `owner`, another client's)."""
        letter = self.store.dead_letter(letter_id)
        if letter is None or (owner is not None and letter.get("client") != owner):
            raise NotFound(f"Dead letter {letter_id} is not known")
        return public_letter(letter)

    def delete(self, letter_id, owner=None):
        """Delete a dead letter; NotFound if unknown (or, with `owner`, another client's)."""
        self.get(letter_id, owner)
        if not self.store.delete_dead_letter(letter_id):
            raise NotFound(f"Dead letter {letter_id} is not known")


def public_letter(stored):
    """The public form of a stored dead letter."""
    hidden = {"_id", "dlid", "received"}
    return {"id": stored["_id"], **{k: v for k, v in stored.items() if k not in hidden}}
