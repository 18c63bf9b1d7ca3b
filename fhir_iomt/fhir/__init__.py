"""FHIR R4 helpers: validation, search parameters, extraction, bundles, outcomes."""
