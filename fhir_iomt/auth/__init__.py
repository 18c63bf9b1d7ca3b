"""SMART on FHIR: the authorization server and the protection of the API."""
