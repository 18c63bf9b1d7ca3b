"""Translate search criteria (fhir.expr) into MongoDB filter documents.

Written for both MongoDB and the embedded nx-27017: equality is always the
explicit `$eq` (the only form nx-27017 serves from an index), and array fields
use `$in`, which means "contains" on both servers.
"""

import re

from ..fhir import expr

PREFIX = "s."
_OPERATORS = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


def _any_of(node):
    path = PREFIX + node.field
    values = list(node.values)
    if node.array or len(values) > 1:
        return {path: {"$in": values}}
    return {path: {"$eq": values[0]}}


def _pattern(node, anchored):
    text = node.prefix if anchored else node.text
    regex = ("^" if anchored else "") + re.escape(text)
    return {PREFIX + node.field: {"$elemMatch": {"$regex": regex}}}


_TIGHTER = {"$lt": min, "$lte": min, "$gt": max, "$gte": max}


def _combine(current, condition):
    """One operator document for two on the same field, or None when they cannot be combined."""
    if not (isinstance(current, dict) and isinstance(condition, dict)):
        return None
    combined = dict(current)
    for operator, value in condition.items():
        if operator not in combined:
            combined[operator] = value
        elif operator in _TIGHTER and type(value) is type(combined[operator]):
            combined[operator] = _TIGHTER[operator](combined[operator], value)
        else:
            return None
    return combined


def merge(filters):
    """AND several filter documents into one flat document (ranges on one field tightened).

    Flat documents keep the embedded server on its indexes; only conditions that
    cannot be combined go to `$and`.
    """
    merged, extra = {}, []
    for part in filters:
        for key, condition in part.items():
            if key not in merged:
                merged[key] = condition
                continue
            combined = None if key.startswith("$") else _combine(merged[key], condition)
            if combined is None:
                extra.append({key: condition})
            else:
                merged[key] = combined
    if extra:
        merged.setdefault("$and", []).extend(extra)
    return merged


def to_filter(node):
    """MongoDB filter document for a criteria tree (None matches everything)."""
    if node is None:
        return {}
    if isinstance(node, expr.AnyOf):
        return _any_of(node)
    if isinstance(node, expr.Compare):
        return {PREFIX + node.field: {_OPERATORS[node.op]: node.value}}
    if isinstance(node, expr.StartsWith):
        return _pattern(node, anchored=True)
    if isinstance(node, expr.Contains):
        return _pattern(node, anchored=False)
    if isinstance(node, expr.All):
        return merge(to_filter(part) for part in node.parts)
    if isinstance(node, expr.Any):
        return {"$or": [to_filter(part) for part in node.parts]}
    raise TypeError(f"unknown criterion {node!r}")


MAX_BRANCHES = 16


def _product(lists):
    combined = [[]]
    for options in lists:
        combined = [done + option for done in combined for option in options]
        if len(combined) > MAX_BRANCHES:
            return None
    return combined


def branches(node):
    """The criteria as an OR of AND-only branches (lists of leaves), or None when there would be too many.

    The embedded server scans a whole collection for a `$or` or a `$in` on a scalar field; each
    branch instead is a plain conjunction served by an index (MongoDB does the same split itself).
    """
    if node is None:
        return [[]]
    if isinstance(node, expr.AnyOf) and not node.array and len(node.values) > 1:
        if len(node.values) > MAX_BRANCHES:
            return None
        return [[expr.AnyOf(node.field, (value,))] for value in node.values]
    if isinstance(node, expr.Any):
        found = []
        for part in node.parts:
            expanded = branches(part)
            if expanded is None:
                return None
            found += expanded
        return found if len(found) <= MAX_BRANCHES else None
    if isinstance(node, expr.All):
        parts = [branches(part) for part in node.parts]
        return None if any(p is None for p in parts) else _product(parts)
    return [[node]]
