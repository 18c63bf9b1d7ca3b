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


def merge(filters):
    """AND several filter documents, keeping one flat document where keys do not collide."""
    merged, extra = {}, []
    for part in filters:
        for key, condition in part.items():
            current = merged.get(key)
            if current is None:
                merged[key] = condition
            elif (
                isinstance(current, dict)
                and isinstance(condition, dict)
                and key != "$or"
                and not set(current) & set(condition)
            ):
                merged[key] = {**current, **condition}
            else:
                extra.append({key: condition})
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
