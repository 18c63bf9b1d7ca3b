"""Search and history with keyset paging: pages stay correct while new data arrives."""

import base64
import binascii
import re
from dataclasses import dataclass, field

import orjson

from ..domain.errors import InvalidRequest, NotFound
from ..fhir.dates import parse_range
from ..fhir.params import reference_type
from ..fhir.query import parse_count, parse_search
from .resources import check_type


@dataclass
class Page:
    """One page of results with the cursors of its neighbours."""

    resources: list
    total: int | None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    request: object = None
    entries: list = field(default_factory=list)
    included: list = field(default_factory=list)


def encode_cursor(kind, key, direction):
    """Opaque page token: what the page is ordered by, the boundary key and the direction."""
    raw = orjson.dumps({"o": kind, "k": list(key), "d": direction})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A page key is (integer sort value, id) or, in history, (integer time, "id/000000000001").
_KEY_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}(/\d{12})?$")


def _valid_key(key):
    value, tie = key
    return (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**62
        and isinstance(tie, str) and _KEY_ID.match(tie) is not None
    )


def decode_cursor(token, kind):
    """(key, direction) of a page token; InvalidRequest unless it is a well-formed one for `kind`.

    The key's types are checked so that nothing but an integer and an id ever reaches a filter.
    """
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, direction = tuple(data["k"]), data["d"]
        valid = data["o"] == kind and direction in ("n", "p") and len(key) == 2 and _valid_key(key)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise InvalidRequest("_page is not a valid page token for this query")
    return key, direction


def page_window(fetch, cursor_kind, token, count):
    """Fetch one keyset page in either direction; returns (rows, has_before, has_after)."""
    after, direction = decode_cursor(token, cursor_kind) if token else (None, "n")
    rows = fetch(direction == "p", count + 1, after)
    more = len(rows) > count
    rows = rows[:count]
    if direction == "p":
        return list(reversed(rows)), more, True
    return rows, token is not None, more


def neighbour_cursors(rows, key_of, kind, has_before, has_after):
    """Page tokens (previous, next) around a page of rows."""
    previous = encode_cursor(kind, key_of(rows[0]), "p") if rows and has_before else None
    following = encode_cursor(kind, key_of(rows[-1]), "n") if rows and has_after else None
    return previous, following


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def include_keys(includes, rows):
    """'Type/id' of each local resource the includes reach from the matched rows, once, in first-seen order."""
    keys = {}
    for row in rows:
        for include in includes:
            for key in _as_list(row["s"].get(include.key)):
                # The stored key is 'Type/id' for a local reference and a full URL for another server's.
                if "://" not in key and reference_type(key) in include.targets:
                    keys[key] = None
    return list(keys)


class SearchService:
    """Searches current versions and history through the store."""

    def __init__(self, store, default_count, max_count, local_bases=()):
        self.store = store
        self.default_count = default_count
        self.max_count = max_count
        self.local_bases = tuple(local_bases)

    def parse(self, resource_type, items, strict=False, base=None):
        """Parse search parameters for a type (raises on bad input); `base` is the request's base URL."""
        check_type(resource_type)
        bases = self.local_bases + ((base,) if base else ())
        return parse_search(resource_type, items, strict, self.default_count, self.max_count, bases)

    def search(self, request, include_filter=None):
        """Run a parsed search and return one Page.

        `include_filter(resource_type, resource)`, when given, decides which _included resources may be returned.
        """
        sort = request.sort
        kind = f"{request.resource_type}:{sort.as_param()}"
        total = None
        if request.total_accurate or request.summary_count:
            total = self.store.count(request.resource_type, request.criteria)
        if request.summary_count:
            return Page([], total, request=request)

        def fetch(reverse, limit, after):
            descending = sort.descending != reverse
            return self.store.search_page(
                request.resource_type, request.criteria, sort.key, descending, limit, after
            )

        rows, has_before, has_after = page_window(fetch, kind, request.page, request.count)
        if total is None and request.page is None and not has_after and request.count > 0:
            total = len(rows)
        previous, following = neighbour_cursors(
            rows, lambda doc: (doc["s"][sort.key], doc["s"]["id"]), kind, has_before, has_after
        )
        page = Page([doc["resource"] for doc in rows], total, following, previous, request)
        page.included = self._included(request, rows, include_filter)
        return page

    def _included(self, request, rows, include_filter):
        """The resources a page's matches reference through its _includes: one batch read per type."""
        matched = {f"{request.resource_type}/{row['s']['id']}" for row in rows}
        wanted = {}
        for key in include_keys(request.includes, rows):
            if key not in matched:
                resource_type, _, resource_id = key.partition("/")
                wanted.setdefault(resource_type, []).append(resource_id)
        included = []
        for resource_type, ids in wanted.items():
            documents = self.store.get_many(resource_type, ids)
            included.extend(
                (resource_type, documents[i]["resource"]) for i in ids if documents.get(i) is not None
            )
        return [r for t, r in included if include_filter is None or include_filter(t, r)]

    def match_for_condition(self, resource_type, items, base=None):
        """Up to two resources matching a conditional request's query (strict parsing)."""
        request = self.parse(resource_type, items, strict=True, base=base)
        if request.criteria is None:
            raise InvalidRequest("A conditional request needs at least one search parameter")
        rows = self.store.search_page(resource_type, request.criteria, "lu", False, 2, None)
        return [doc["resource"] for doc in rows]

    def history(self, resource_type, resource_id, items):
        """A page of history entries (newest first) for a type or one instance."""
        check_type(resource_type)
        params = dict(items)
        count = self._count(params.get("_count"))
        since = self._since(params.get("_since"))
        kind = f"history:{resource_type}:{resource_id or ''}"

        def fetch(reverse, limit, after):
            if reverse:
                raise InvalidRequest("History pages are only followed forwards")
            return self.store.history_page(resource_type, resource_id, since, limit, after)

        rows, has_before, has_after = page_window(fetch, kind, params.get("_page"), count)
        total = self.store.history_count(resource_type, resource_id, since)
        if resource_id is not None and total == 0:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        _, following = neighbour_cursors(rows, lambda e: (e["lu"], e["hk"]), kind, False, has_after)
        return Page([], total, following, None, entries=rows)

    def _count(self, raw):
        return self.default_count if raw is None else parse_count(raw, self.max_count)

    @staticmethod
    def _since(raw):
        if raw is None:
            return None
        try:
            return parse_range(raw).start
        except ValueError as error:
            raise InvalidRequest(f"_since '{raw}' is not a FHIR instant: {error}") from error
