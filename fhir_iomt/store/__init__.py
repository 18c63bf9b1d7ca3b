"""Persistence: the repository contract and its MongoDB implementation."""
