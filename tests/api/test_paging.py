"""Paging through searchsets with next/previous links (FHIR R4 search.html#paging, http.html#paging)."""

import time

import pytest

from fhir_iomt.config import DEFAULTS

from .helpers import (
    bulk_observations,
    create,
    decode_token,
    encode_token,
    follow,
    issues,
    link,
    match_ids,
    matches,
    observation,
    page_token,
    search,
)


def _previous(bundle):
    # R4 names the relation 'previous' (R5 also allows 'prev').
    return link(bundle, "previous") or link(bundle, "prev")


def _walk_forward(client, first):
    pages = [first]
    while link(pages[-1], "next"):
        assert len(pages) < 50, "next links never end"
        pages.append(follow(client, link(pages[-1], "next")))
    return pages


def _seed(client, dates, patient_id="p1"):
    created = []
    for when in dates:
        created.append(create(client, observation(patient_id, when=when)))
        time.sleep(0.002)  # distinct meta.lastUpdated, so the default order is the creation order
    return created


DATES = [
    "2026-11-05T08:00:00Z",
    "2026-11-01T08:00:00Z",
    None,
    "2026-11-07T08:00:00Z",
    "2026-11-03T08:00:00Z",
    "2026-11-02T08:00:00Z",
    "2026-11-06T08:00:00Z",
    None,
]


@pytest.mark.parametrize("sort", [None, "_lastUpdated", "-_lastUpdated", "date", "-date"])
def test_next_links_give_every_match_once_in_order(client, sort):
    created = _seed(client, DATES)
    create(client, observation("other", when="2026-11-04T08:00:00Z"))  # must not appear
    params = [("patient", "p1"), ("_count", "3")] + ([("_sort", sort)] if sort else [])
    unpaged = match_ids(search(client, "Observation", [(k, v) for k, v in params if k != "_count"]))

    pages = _walk_forward(client, search(client, "Observation", params))

    seen = [i for page in pages for i in match_ids(page)]
    assert seen == unpaged
    assert sorted(seen) == sorted(r["id"] for r in created)
    assert [len(matches(p)) for p in pages] == [3, 3, 2]
    if sort in ("date", "-date"):
        dated = [r for r in created if "effectiveDateTime" in r]
        undated = [r["id"] for r in created if "effectiveDateTime" not in r]
        ordered = [
            r["id"] for r in sorted(dated, key=lambda r: r["effectiveDateTime"], reverse=sort == "-date")
        ]
        assert [i for i in seen if i not in undated] == ordered
    elif sort == "-_lastUpdated":
        assert seen == [r["id"] for r in reversed(created)]
    elif sort == "_lastUpdated":
        assert seen == [r["id"] for r in created]
    # Without _sort the order is the server's choice; it only has to be stable across pages.


@pytest.mark.parametrize("sort", ["date", "-date", "-_lastUpdated"])
def test_paging_a_filtered_search(client, sort):
    # Paging keys must combine with the search's own criteria on the same field (here: date).
    created = _seed(client, [f"2026-11-{day:02d}T08:00:00Z" for day in range(1, 10)])
    _seed(client, ["2026-11-05T09:00:00Z"], patient_id="p2")
    params = [("patient", "p1"), ("date", "ge2026-11-03"), ("date", "lt2026-11-09"), ("_sort", sort)]
    pages = _walk_forward(client, search(client, "Observation", [*params, ("_count", "2")]))
    seen = [i for page in pages for i in match_ids(page)]
    wanted = [r for r in created if "2026-11-03" <= r["effectiveDateTime"][:10] < "2026-11-09"]
    if sort == "-_lastUpdated":
        wanted = list(reversed(wanted))
    else:
        wanted = sorted(wanted, key=lambda r: r["effectiveDateTime"], reverse=sort.startswith("-"))
    assert seen == [r["id"] for r in wanted]
    assert [len(matches(p)) for p in pages] == [2, 2, 2]


def test_paging_with_equal_sort_keys_misses_and_repeats_nothing(client):
    created = _seed(client, ["2026-11-20T10:00:00Z"] * 7)
    pages = _walk_forward(client, search(client, "Observation", {"_sort": "-date", "_count": "2"}))
    seen = [i for page in pages for i in match_ids(page)]
    assert sorted(seen) == sorted(r["id"] for r in created)
    assert len(seen) == len(set(seen)) == 7


def test_previous_links_walk_back_over_the_same_pages(client):
    _seed(client, DATES)
    params = {"patient": "p1", "_sort": "-date", "_count": "3"}
    forward = _walk_forward(client, search(client, "Observation", params))
    assert len(forward) == 3
    assert _previous(forward[0]) is None
    assert link(forward[-1], "next") is None

    backward = [forward[-1]]
    while _previous(backward[-1]):
        assert len(backward) < 50, "previous links never end"
        backward.append(follow(client, _previous(backward[-1])))

    assert [match_ids(p) for p in reversed(backward)] == [match_ids(p) for p in forward]
    # A page reached backwards still leads forwards.
    assert match_ids(follow(client, link(backward[-1], "next"))) == match_ids(forward[1])


def test_new_readings_between_page_fetches_do_not_shift_the_pages(client):
    # Newest-first paging of a live feed: readings that arrive while a client pages must not push
    # old readings onto the next page (duplicates) or past it (skipped).
    old = _seed(client, [f"2026-11-{day:02d}T08:00:00Z" for day in range(1, 8)])
    expected = [r["id"] for r in sorted(old, key=lambda r: r["effectiveDateTime"], reverse=True)]
    params = {"patient": "p1", "_sort": "-date", "_count": "2"}

    page = search(client, "Observation", params)
    seen = match_ids(page)
    new_day = 20
    while link(page, "next"):
        for _ in range(2):
            create(client, observation("p1", when=f"2026-11-{new_day:02d}T08:00:00Z"))
            new_day += 1
        page = follow(client, link(page, "next"))
        seen += match_ids(page)

    assert seen == expected
    # The new readings are there for the next search.
    assert len(match_ids(search(client, "Observation", {"patient": "p1", "_count": "100"}))) == 7 + (
        new_day - 20
    )


def test_total_is_given_on_every_page_when_asked(client):
    _seed(client, DATES)
    first = search(client, "Observation", {"patient": "p1", "_count": "3", "_total": "accurate"})
    pages = _walk_forward(client, first)
    assert [p.get("total") for p in pages] == [len(DATES)] * len(pages)


def test_single_page_reports_its_total_and_no_next_link(client):
    _seed(client, DATES[:3])
    bundle = search(client, "Observation", {"patient": "p1"})
    assert bundle["total"] == 3
    assert link(bundle, "next") is None and _previous(bundle) is None


def _tampered_tokens(token):
    data = decode_token(token)
    key, _ = data["k"]
    return {
        "not-base64-json": "not-a-page-token",
        "truncated": token[: len(token) // 2],
        "other-sort": encode_token(dict(data, o="Observation:-date")),
        "other-type": encode_token(dict(data, o="Patient:date")),
        "bad-direction": encode_token(dict(data, d="x")),
        "three-keys": encode_token(dict(data, k=[key, "a", "b"])),
        "key-as-text": encode_token(dict(data, k=[str(key), "a"])),
        "key-as-object": encode_token(dict(data, k=[{"$gt": 0}, "a"])),
        "id-as-number": encode_token(dict(data, k=[key, 12])),
        "not-an-object": encode_token([1, 2]),
    }


TAMPERINGS = [
    "not-base64-json",
    "truncated",
    "other-sort",
    "other-type",
    "bad-direction",
    "three-keys",
    "key-as-text",
    "key-as-object",
    "id-as-number",
    "not-an-object",
]


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_tampered_page_token_is_400(client, kind):
    # R4 search.html#paging: page links are the server's own; a _page value that is not one the
    # server issued for this query is a bad request (400 with an OperationOutcome), never a
    # database failure (5xx) and never a silently different page.
    _seed(client, DATES[:5])
    first = search(client, "Observation", {"_sort": "date", "_count": "2"})
    token = page_token(link(first, "next"))
    tampered = _tampered_tokens(token)[kind]
    response = client.get(
        "/fhir/Observation", query_string={"_sort": "date", "_count": "2", "_page": tampered}
    )
    issues(response, 400)


def test_default_count_and_maximum_count(app, client):
    # config.py: SEARCH_DEFAULT_COUNT (50) when _count is absent; a _count above SEARCH_MAX_COUNT (1000)
    # is clamped (R4 search.html#count: the server may return fewer than asked, never more).
    default, maximum = DEFAULTS["SEARCH_DEFAULT_COUNT"], DEFAULTS["SEARCH_MAX_COUNT"]
    assert app.config["SEARCH_DEFAULT_COUNT"] == default and app.config["SEARCH_MAX_COUNT"] == maximum
    stored = bulk_observations(app, maximum + 1)

    first = search(client, "Observation")
    assert len(matches(first)) == default
    assert link(first, "next")

    clamped = search(client, "Observation", {"_count": str(maximum * 5)})
    assert len(matches(clamped)) == maximum
    rest = follow(client, link(clamped, "next"))
    assert len(matches(rest)) == 1
    assert sorted(match_ids(clamped) + match_ids(rest)) == sorted(stored)

    exact = search(client, "Observation", {"_count": "7"})
    assert len(matches(exact)) == 7
