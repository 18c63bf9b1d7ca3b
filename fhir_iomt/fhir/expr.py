"""Search criteria as a small expression tree that any store can translate.

Fields name keys of the search sub-document extracted at write time.
`array` says whether the field holds a list (equality then means "contains").
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AnyOf:
    """The field equals (or, for an array field, contains) one of the values."""

    field: str
    values: tuple
    array: bool = False


@dataclass(frozen=True)
class Compare:
    """The field compares to the value with op in lt, le, gt, ge."""

    field: str
    op: str
    value: object


@dataclass(frozen=True)
class StartsWith:
    """One of the field's normalized strings starts with the prefix."""

    field: str
    prefix: str


@dataclass(frozen=True)
class Contains:
    """One of the field's normalized strings contains the text."""

    field: str
    text: str


@dataclass(frozen=True)
class All:
    """Every part holds."""

    parts: tuple


@dataclass(frozen=True)
class Any:
    """At least one part holds."""

    parts: tuple


def all_of(parts):
    """Conjunction that collapses a single part."""
    parts = tuple(parts)
    return parts[0] if len(parts) == 1 else All(parts)


def any_of(parts):
    """Disjunction that collapses a single part."""
    parts = tuple(parts)
    return parts[0] if len(parts) == 1 else Any(parts)
