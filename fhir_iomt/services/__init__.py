"""Use cases over the store contract: resources, search, history."""
