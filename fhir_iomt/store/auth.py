"""MongoDB storage of the authorization server: clients, users, grants, tokens, replay guards.

Secrets (client secrets, codes, tokens) are stored only as SHA-256 digests, keyed by them.
"""

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

CLIENTS = "auth_clients"
USERS = "auth_users"
REQUESTS = "auth_requests"
CODES = "auth_codes"
TOKENS = "auth_tokens"
ASSERTIONS = "auth_assertion_ids"
LAUNCHES = "auth_launches"
LOGIN_FAILURES = "auth_login_failures"
KEYS = "auth_keys"


class MongoAuthStore:
    """The authorization server's collections, in the same database as the resources."""

    def __init__(self, store):
        self.collection = store.collection

    # Clients and users --------------------------------------------------------

    def add_client(self, document):
        """Register a client; False if its id is taken."""
        return self._insert(CLIENTS, document)

    def client(self, client_id):
        """A registered client, or None."""
        return self.collection(CLIENTS).find_one({"_id": {"$eq": client_id}})

    def clients(self):
        """Every registered client, by id."""
        return list(self.collection(CLIENTS).find({}).sort([("_id", 1)]))

    def remove_client(self, client_id):
        """Remove a client and revoke every token issued to it; False if unknown."""
        removed = self.collection(CLIENTS).delete_one({"_id": {"$eq": client_id}}).deleted_count == 1
        self.collection(TOKENS).update_many({"client": {"$eq": client_id}}, {"$set": {"revoked": True}})
        return removed

    def add_user(self, document):
        """Create a user; False if the username is taken."""
        return self._insert(USERS, document)

    def user(self, username):
        """A user, or None."""
        return self.collection(USERS).find_one({"_id": {"$eq": username}})

    # Pending authorizations, codes and tokens -------------------------------

    def add_request(self, document):
        """Keep a pending authorization request (login and consent happen against it)."""
        self.collection(REQUESTS).insert_one(document)

    def request(self, request_id):
        """A pending authorization request, or None."""
        return self.collection(REQUESTS).find_one({"_id": {"$eq": request_id}})

    def update_request(self, request_id, changes):
        """Record progress (the user who logged in, the patient picked) on a pending request."""
        self.collection(REQUESTS).update_one({"_id": {"$eq": request_id}}, {"$set": changes})

    def finish_request(self, request_id):
        """Remove a pending request and return it; None if it was finished already (double submit)."""
        return self.collection(REQUESTS).find_one_and_delete({"_id": {"$eq": request_id}})

    def add_code(self, document):
        """Store an authorization code (by digest)."""
        self.collection(CODES).insert_one(document)

    def redeem_code(self, digest):
        """Mark a code used and return it as it was; the document with used=True when it was used before."""
        return self.collection(CODES).find_one_and_update(
            {"_id": {"$eq": digest}}, {"$set": {"used": True}}, return_document=ReturnDocument.BEFORE
        )

    def add_tokens(self, documents):
        """Store issued tokens (by digest)."""
        self.collection(TOKENS).insert_many(documents, ordered=True)

    def token(self, digest):
        """A token document, or None."""
        return self.collection(TOKENS).find_one({"_id": {"$eq": digest}})

    def rotate_refresh(self, digest):
        """Mark a refresh token used and return it as it was (used=True then means a replay)."""
        return self.collection(TOKENS).find_one_and_update(
            {"_id": {"$eq": digest}, "kind": {"$eq": "refresh"}}, {"$set": {"used": True}},
            return_document=ReturnDocument.BEFORE,
        )

    def revoke_grant(self, grant):
        """Revoke every token issued under one grant (one authorization or one client_credentials call)."""
        self.collection(TOKENS).update_many({"grant": {"$eq": grant}}, {"$set": {"revoked": True}})
        self.collection(CODES).update_many({"grant": {"$eq": grant}}, {"$set": {"used": True}})

    # Replay guards, launches, login throttling, keys ------------------------

    def remember_assertion(self, key, expires_ms):
        """Record a client assertion's jti; False when it was seen before (a replay)."""
        return self._insert(ASSERTIONS, {"_id": key, "expires": expires_ms})

    def add_launch(self, document):
        """Store an EHR launch context."""
        self.collection(LAUNCHES).insert_one(document)

    def launch(self, launch_id):
        """An EHR launch context, or None."""
        return self.collection(LAUNCHES).find_one({"_id": {"$eq": launch_id}})

    def login_failures(self, username):
        """The failed-login record of a username ({count, until}), or None."""
        return self.collection(LOGIN_FAILURES).find_one({"_id": {"$eq": username}})

    def record_login_failure(self, username, now_ms, delay_for):
        """Count one failed login; `delay_for(count)` gives the seconds before the next attempt."""
        document = self.collection(LOGIN_FAILURES).find_one_and_update(
            {"_id": {"$eq": username}}, {"$inc": {"count": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        until = now_ms + int(delay_for(document["count"]) * 1000)
        self.collection(LOGIN_FAILURES).update_one({"_id": {"$eq": username}}, {"$set": {"until": until}})
        return document["count"]

    def clear_login_failures(self, username):
        """Forget failed logins after a successful one."""
        self.collection(LOGIN_FAILURES).delete_one({"_id": {"$eq": username}})

    def signing_key(self, key_id, create):
        """The server's signing key document `key_id`; made by `create()` once, shared by every process."""
        found = self.collection(KEYS).find_one({"_id": {"$eq": key_id}})
        if found is None:
            self._insert(KEYS, {"_id": key_id, **create()})
            found = self.collection(KEYS).find_one({"_id": {"$eq": key_id}})
        return found

    def _insert(self, name, document):
        try:
            self.collection(name).insert_one(document)
            return True
        except DuplicateKeyError:
            return False
