"""Conditional create that stays single under concurrency.

Searching and then creating is a race: eight clients posting the same
`If-None-Exist` at once would all find nothing and all create. Each condition
therefore has a claim document (its id a hash of the type and the normalized
query) that only one writer can hold; the others wait for its resource.
"""

import hashlib
import time
import uuid

from ..domain.errors import Conflict

WAIT_SECONDS = 2.0
STALE_SECONDS = 30.0


def condition_key(resource_type, query_items):
    """The claim id of a condition: the same for the same parameters in any order."""
    canonical = "&".join(f"{name}={value}" for name, value in sorted(query_items))
    return hashlib.sha256(f"{resource_type}?{canonical}".encode()).hexdigest()


class ConditionalCreate:
    """Runs `create()` at most once per condition; others get the created resource."""

    def __init__(self, store, clock=time.time, sleep=time.sleep):
        self.store = store
        self.clock = clock
        self.sleep = sleep

    def run(self, key, find, create):
        """The resource matching the condition, created by `create()` unless found by `find()`.

        Returns (resource, created). `find()` returns the single match or None (and raises on several).
        """
        token = uuid.uuid4().hex
        deadline = self.clock() + WAIT_SECONDS
        while True:
            claim = self.store.claim_condition(key, token, self.clock())
            if claim is None or self._take_over(key, claim, find, token):
                return self._create_holding(key, token, find, create)
            found = find()
            if found is not None:
                return found, False
            if self.clock() > deadline:
                raise Conflict("A concurrent conditional create of the same resource is in progress; retry")
            self.sleep(0.05)

    def _take_over(self, key, claim, find, token):
        """Take a claim whose holder crashed or whose resource no longer matches."""
        stale = claim.get("rid") is not None or self.clock() - claim["at"] > STALE_SECONDS
        if not stale or find() is not None:
            return False
        return self.store.take_over_condition(key, claim["token"], token, self.clock())

    def _create_holding(self, key, token, find, create):
        found = find()
        if found is not None:
            self.store.settle_condition(key, token, found["id"])
            return found, False
        try:
            resource = create()
        except Exception:
            self.store.release_condition(key, token)
            raise
        self.store.settle_condition(key, token, resource["id"])
        return resource, True
