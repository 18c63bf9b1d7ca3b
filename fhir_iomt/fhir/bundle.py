"""Bundles: searchset and history."""

from urllib.parse import urlencode

from .outcome import issue, operation_outcome


def _link(relation, url):
    return {"relation": relation, "url": url}


def _page_url(endpoint, params, token):
    query = list(params) + ([("_page", token)] if token else [])
    return f"{endpoint}?{urlencode(query)}" if query else endpoint


def _links(endpoint, params, current, page):
    links = [_link("self", _page_url(endpoint, params, current))]
    if page.next_cursor:
        links.append(_link("next", _page_url(endpoint, params, page.next_cursor)))
    if page.previous_cursor:
        links.append(_link("previous", _page_url(endpoint, params, page.previous_cursor)))
    return links


def _search_entry(base, resource, mode):
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def searchset(base, page, endpoint):
    """A searchset Bundle: matches, then _included resources, then an outcome entry for ignored parameters."""
    request = page.request
    bundle = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = _links(endpoint, request.applied, request.page, page)
    entries = [_search_entry(base, resource, "match") for resource in page.resources]
    entries += [_search_entry(base, resource, "include") for resource in page.included]
    if request.ignored:
        names = ", ".join(sorted(set(request.ignored)))
        outcome = operation_outcome(
            [issue("warning", "not-supported", f"Unknown search parameters were ignored: {names}")]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return bundle


HTTP_STATUS = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


def _history_entry(base, resource_type, entry):
    url = f"{base}/{resource_type}/{entry['rid']}"
    item = {
        "fullUrl": url,
        "request": {"method": entry["method"], "url": resource_type if entry["method"] == "POST"
                    else f"{resource_type}/{entry['rid']}"},
        "response": {
            "status": HTTP_STATUS[entry["status"]],
            "etag": f'W/"{entry["v"]}"',
            "lastModified": entry["at"],
        },
    }
    if entry["resource"] is not None:
        item["resource"] = entry["resource"]
    return item


def history(base, resource_type, page, endpoint, params, current):
    """A history Bundle of stored versions, newest first."""
    bundle = {"resourceType": "Bundle", "type": "history"}
    if page.total is not None:  # a confined token is not told how many entries it cannot see
        bundle["total"] = page.total
    bundle["link"] = _links(endpoint, params, current, page)
    bundle["entry"] = [_history_entry(base, resource_type, e) for e in page.entries]
    return bundle
