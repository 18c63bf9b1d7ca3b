"""Load a list of resources (demo data, fixtures) without creating duplicates."""

from ..domain.errors import Gone, NotFound


def load_resources(resources, items):
    """Store each resource under its own id unless it exists already; returns how many were new."""
    created = 0
    for item in items:
        try:
            resources.read(item["resourceType"], item["id"])
        except (NotFound, Gone):
            resources.update(item["resourceType"], item["id"], item)
            created += 1
    return created
