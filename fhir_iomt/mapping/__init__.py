"""Device messages to FHIR: templates, normalization, grouping, Observations (no flask, no pymongo)."""
