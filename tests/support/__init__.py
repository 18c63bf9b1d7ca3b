"""Test-only conformance tools: the official R4 JSON schema and the R4 Vital Signs profile rules."""
