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


def combine_templates(pairs, identity="create"):
    """One templates document from several (device template, FHIR template) pairs, e.g. one per vendor."""
    device = {"templateType": "CollectionContent", "template": []}
    fhir = {"templateType": "CollectionFhir", "template": []}
    for device_template, fhir_template in pairs:
        device["template"] += device_template["template"]
        fhir["template"] += fhir_template["template"]
    return {"deviceTemplate": device, "fhirTemplate": fhir, "identityMode": identity}
