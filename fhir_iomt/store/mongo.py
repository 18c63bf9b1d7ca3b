"""MongoDB repository: current versions per type, one history collection, keyset paging."""

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from ..domain.errors import Conflict
from ..fhir import expr
from .mongo_query import branches, merge, to_filter

HISTORY = "history"
TEMPLATES = "ingest_templates"
DEAD_LETTERS = "ingest_dead_letters"
CONDITIONS = "conditional_claims"
DUPLICATE_KEY = 11000
DATABASE_ERRORS = PyMongoError

INDEXES = {
    "Observation": (
        (("s.patient", 1), ("s.date", -1), ("s.id", -1)),
        (("s.patient", 1), ("s.code", 1), ("s.date", -1), ("s.id", -1)),
        (("s.subject", 1), ("s.date", -1), ("s.id", -1)),
        (("s.device", 1), ("s.date", -1), ("s.id", -1)),
        (("s.date", -1), ("s.id", -1)),
        (("s.lu", 1), ("s.id", 1)),
        (("s.id", 1),),
    ),
    "Device": (
        (("s.identifier", 1),),
        (("s.patient", 1),),
        (("s.lu", 1), ("s.id", 1)),
        (("s.id", 1),),
    ),
    "Patient": (
        (("s.identifier", 1),),
        (("s.family", 1),),
        (("s.birthdate", 1),),
        (("s.lu", 1), ("s.id", 1)),
        (("s.id", 1),),
    ),
    "Practitioner": (
        (("s.identifier", 1),),
        (("s.lu", 1), ("s.id", 1)),
        (("s.id", 1),),
    ),
    HISTORY: (
        (("t", 1), ("rid", 1), ("v", -1)),
        (("t", 1), ("lu", -1), ("hk", -1)),
    ),
    DEAD_LETTERS: (
        (("received", -1), ("dlid", -1)),
        (("reason", 1), ("received", -1), ("dlid", -1)),
        (("client", 1), ("received", -1), ("dlid", -1)),
    ),
    # AuditEvent: `date` and _lastUpdated share the `lu` key (fhir/params.py). Each index costs every
    # request a write, so only the audit reviews' shapes: by time, and by client, patient or user.
    "AuditEvent": (
        (("s.lu", -1), ("s.id", -1)),
        (("s.client", 1), ("s.lu", -1), ("s.id", -1)),
        (("s.patient", 1), ("s.lu", -1), ("s.id", -1)),
        (("s.altid", 1), ("s.lu", -1), ("s.id", -1)),
    ),
    "auth_tokens": ((("grant", 1),),),
    "auth_codes": ((("grant", 1),),),
}


def _history_query(resource_type, resource_id, since_ms):
    """Filter of a history request: one type, optionally one resource and a lower time bound."""
    query = {"t": {"$eq": resource_type}}
    if resource_id is not None:
        query["rid"] = {"$eq": resource_id}
    if since_ms is not None:
        query["lu"] = {"$gte": since_ms}
    return query


class MongoStore:
    """Resources and their history in MongoDB (or the embedded MongoDB-wire server)."""

    def __init__(self, uri, database, client=None):
        self.client = client or MongoClient(
            uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, appname="fhir-iomt"
        )
        self.db = self.client[database]
        self._collections = {}

    def collection(self, name):
        """A cached Collection object (building one per call costs ~50 µs on the hot path)."""
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = self.db[name]
        return found

    def close(self):
        """Close the connection pool (close the audit service first: it writes in the background)."""
        self.client.close()

    def ping(self):
        """True when the database answers."""
        try:
            self.db.command("ping")
            return True
        except PyMongoError:
            return False

    def ensure_indexes(self):
        """Create the search indexes; safe to call at every start."""
        for collection, indexes in INDEXES.items():
            for keys in indexes:
                self.collection(collection).create_index(list(keys))

    # Current versions ------------------------------------------------------

    def get(self, resource_type, resource_id):
        """The stored document of the current version, or None."""
        return self.collection(resource_type).find_one({"_id": {"$eq": resource_id}})

    def get_many(self, resource_type, resource_ids):
        """{id: stored document or None} for several ids, in one query."""
        found = {resource_id: None for resource_id in resource_ids}
        if found:
            for document in self.collection(resource_type).find({"_id": {"$in": list(found)}}):
                found[document["_id"]] = document
        return found

    def insert(self, resource_type, document):
        """Insert a new current version; Conflict if the id is taken."""
        try:
            self.collection(resource_type).insert_one(document)
        except DuplicateKeyError as error:
            raise Conflict(f"{resource_type}/{document['_id']} was created concurrently") from error

    def replace(self, resource_type, document, expected_version):
        """Replace the current version if it is still `expected_version`; False otherwise."""
        result = self.collection(resource_type).replace_one(
            {"_id": {"$eq": document["_id"]}, "v": {"$eq": expected_version}}, document
        )
        return result.matched_count == 1

    def remove(self, resource_type, resource_id, expected_version):
        """Remove the current version if it is still `expected_version`; False otherwise."""
        result = self.collection(resource_type).delete_one(
            {"_id": {"$eq": resource_id}, "v": {"$eq": expected_version}}
        )
        return result.deleted_count == 1

    def insert_all_with_history(self, resource_type, pairs):
        """Insert many new current versions with their history entries ((document, entry) pairs).

        Idempotent: a document or entry already stored (a retried batch) is skipped.
        """
        self._insert_many(resource_type, [document for document, _ in pairs])
        self._insert_many(HISTORY, [self.history_document(resource_type, entry) for _, entry in pairs])

    def insert_new(self, resource_type, documents):
        """Insert many new current versions at once; returns the ids that already existed."""
        return self._insert_many(resource_type, documents)

    def add_history_many(self, resource_type, entries):
        """Record many versions at once (entries as for add_history); returns the rids whose version existed."""
        documents = [self.history_document(resource_type, entry) for entry in entries]
        taken = self._insert_many(HISTORY, documents)
        return {document["rid"] for document in documents if document["_id"] in taken}

    def _insert_many(self, collection, documents):
        if not documents:
            return set()
        try:
            self.collection(collection).insert_many(documents, ordered=False)
            return set()
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            return {documents[e["index"]]["_id"] for e in errors}

    # Conditional-create claims ----------------------------------------------

    def claim_condition(self, key, token, now):
        """Hold the claim of a condition: None when taken now, else the current holder's claim."""
        try:
            self.collection(CONDITIONS).insert_one({"_id": key, "token": token, "rid": None, "at": now})
            return None
        except DuplicateKeyError:
            holder = self.collection(CONDITIONS).find_one({"_id": {"$eq": key}})
            return holder or {"token": None, "rid": None, "at": now}

    def take_over_condition(self, key, old_token, token, now):
        """Take a stale claim from `old_token`; False if someone else changed it first."""
        result = self.collection(CONDITIONS).update_one(
            {"_id": {"$eq": key}, "token": {"$eq": old_token}}, {"$set": {"token": token, "rid": None, "at": now}}
        )
        return result.modified_count == 1

    def settle_condition(self, key, token, resource_id):
        """Record which resource a held claim produced."""
        self.collection(CONDITIONS).update_one({"_id": {"$eq": key}, "token": {"$eq": token}},
                                       {"$set": {"rid": resource_id}})

    def release_condition(self, key, token):
        """Give a claim up (its create failed)."""
        self.collection(CONDITIONS).delete_one({"_id": {"$eq": key}, "token": {"$eq": token}})

    # History ---------------------------------------------------------------

    @staticmethod
    def history_document(resource_type, entry):
        """The history collection's document for one version entry."""
        document = {**entry, "_id": f"{resource_type}/{entry['rid']}/{entry['v']}", "t": resource_type}
        document["hk"] = f"{entry['rid']}/{entry['v']:012d}"
        return document

    def add_history(self, resource_type, entry):
        """Record one version; Conflict if that version exists already."""
        entry = self.history_document(resource_type, entry)
        try:
            self.collection(HISTORY).insert_one(entry)
        except DuplicateKeyError as error:
            raise Conflict(f"Version {entry['v']} was written concurrently") from error

    def version(self, resource_type, resource_id, version):
        """One history entry, or None."""
        return self.collection(HISTORY).find_one({"_id": {"$eq": f"{resource_type}/{resource_id}/{version}"}})

    def latest_history(self, resource_type, resource_id):
        """The newest history entry of a resource, or None."""
        cursor = (
            self.collection(HISTORY)
            .find({"t": {"$eq": resource_type}, "rid": {"$eq": resource_id}})
            .sort([("v", DESCENDING)])
            .limit(1)
        )
        return next(iter(cursor), None)

    def history_page(self, resource_type, resource_id, since_ms, limit, after):
        """History entries newest first; `after` is the (lu, hk) key of the previous page's last."""
        query = _history_query(resource_type, resource_id, since_ms)
        return keyset_page(self.collection(HISTORY), query, ("lu", "hk"), True, limit, after)

    def history_count(self, resource_type, resource_id, since_ms):
        """Number of history entries matching a history request."""
        return self._count(HISTORY, _history_query(resource_type, resource_id, since_ms))

    # Search ----------------------------------------------------------------

    def search_page(self, resource_type, criteria, sort_key, descending, limit, after):
        """One page of current versions matching criteria, ordered by (sort key, id).

        An OR is run branch by branch (each an indexed query) and the sorted pages merged.
        """
        keys = ("s." + sort_key, "s.id")
        collection = self.collection(resource_type)
        split = branches(criteria)
        if split is None or len(split) == 1:
            return keyset_page(collection, to_filter(criteria), keys, descending, limit, after)
        merged = {}
        for branch in split:
            for row in keyset_page(collection, to_filter(expr.all_of(branch)), keys, descending, limit, after):
                merged[row["_id"]] = row
        ordered = sorted(merged.values(), key=lambda row: (row["s"][sort_key], row["s"]["id"]), reverse=descending)
        return ordered[:limit]

    def count(self, resource_type, criteria):
        """Number of current versions matching criteria."""
        return self._count(resource_type, to_filter(criteria))

    def _count(self, collection, query):
        # The count command, not count_documents: the latter is an aggregation,
        # seconds on a large embedded collection.
        return int(self.db.command("count", collection, query=query)["n"])



def keyset_page(collection, query, keys, descending, limit, after):
    """Keyset paging: rows strictly after `after` (a tuple of the key values) in key order.

    Two index-friendly queries (same first key and a later tie-breaker, then a
    later first key) instead of one `$or`, which the embedded server cannot
    serve from an index.
    """
    if limit <= 0:
        return []
    order = DESCENDING if descending else ASCENDING
    sort = [(key, order) for key in keys]
    if after is None:
        return list(collection.find(query).sort(sort).limit(limit))
    beyond = "$lt" if descending else "$gt"
    first, tie = keys
    ties = merge([query, {first: {"$eq": after[0]}, tie: {beyond: after[1]}}])
    rows = list(collection.find(ties).sort(sort).limit(limit))
    if len(rows) < limit:
        later = merge([query, {first: {beyond: after[0]}}])
        rows += list(collection.find(later).sort(sort).limit(limit - len(rows)))
    return rows


class MongoIngestStore:
    """Mapping templates (versioned) and dead letters, in the same database as the resources."""

    def __init__(self, store):
        self.collection = store.collection

    def latest_templates(self):
        """The newest template version document, or None."""
        return next(iter(self.collection(TEMPLATES).find({}).sort([("_id", DESCENDING)]).limit(1)), None)

    def add_templates(self, document):
        """Store a template version (document holds `_id`, the version); Conflict if taken."""
        try:
            self.collection(TEMPLATES).insert_one(document)
        except DuplicateKeyError as error:
            raise Conflict("Templates were changed concurrently; retry") from error

    def templates_version(self, version):
        """One stored template version, or None."""
        return self.collection(TEMPLATES).find_one({"_id": {"$eq": version}})

    def add_dead_letters(self, letters):
        """Store dead letters (each with its own `_id`)."""
        if letters:
            self.collection(DEAD_LETTERS).insert_many(letters, ordered=True)

    def dead_letter(self, letter_id):
        """One dead letter, or None."""
        return self.collection(DEAD_LETTERS).find_one({"_id": {"$eq": letter_id}})

    def update_dead_letter(self, letter_id, changes):
        """Set fields of a dead letter; False if it does not exist."""
        result = self.collection(DEAD_LETTERS).update_one({"_id": {"$eq": letter_id}}, {"$set": changes})
        return result.matched_count == 1

    def delete_dead_letter(self, letter_id):
        """Delete a dead letter; False if it did not exist."""
        return self.collection(DEAD_LETTERS).delete_one({"_id": {"$eq": letter_id}}).deleted_count == 1

    def dead_letter_page(self, reason, since_ms, until_ms, limit, after, owner=None):
        """Dead letters newest first, optionally of one client, one reason and within [since, until]."""
        query = {}
        if owner is not None:
            query["client"] = {"$eq": owner}
        if reason is not None:
            query["reason"] = {"$eq": reason}
        window = {}
        if since_ms is not None:
            window["$gte"] = since_ms
        if until_ms is not None:
            window["$lte"] = until_ms
        if window:
            query["received"] = window
        return keyset_page(self.collection(DEAD_LETTERS), query, ("received", "dlid"), True, limit, after)
