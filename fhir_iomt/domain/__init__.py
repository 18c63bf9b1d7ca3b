"""Domain objects and errors: standard library only."""
