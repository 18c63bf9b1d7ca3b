"""Expressions of device mapping templates, compiled once and evaluated fast.

Two languages, as in MedTech's device mapping templates:

- **JsonPath**, in the dialect MedTech evaluates (Json.NET's ``SelectToken`` /
  ``SelectTokens``). jsonpath-ng's extended parser reads the expression; the tree is
  then compiled into plain Python closures with Json.NET's semantics, where they
  differ from jsonpath-ng's:

  * ``@name`` in a filter means ``@.name`` (``$..[?(@heartRate)]``), ``===`` and
    ``!==`` are ``==`` and ``!=``, and ``=~ /regex/flags`` is a regular expression;
  * ``$..[?(filter)]`` tests the node itself and every node below it (so
    ``$..[?(@Body.heartRate)]`` matches the message itself), ``$..name`` finds the
    members called ``name`` in document order;
  * ``[?(filter)]`` without ``..`` tests the elements of an array (never the
    members of an object); ``@.a`` tests that member ``a`` exists, even when null;
  * comparisons never equate a string and a number (``'5' == 5`` is false), order
    numbers numerically and strings ordinally, and compare a number with a numeric
    string as numbers.

  Tree nodes this compiler does not know (jsonpath-ng's named operators, arithmetic)
  are evaluated by jsonpath-ng itself.

- **JmesPath**, the jmespath library with MedTech's custom functions (add, subtract,
  multiply, divide, pow, insertString, fromUnixTimestamp, fromUnixTimestampMs) and
  ticksToUtcDateTime (.NET ticks). Function names and arities are checked when the
  expression compiles.

``compile_expression`` caches compiled expressions, so templates that repeat an
expression share it; compiled expressions are immutable and thread-safe.
"""

import math
import operator
import re
import warnings
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat

import jmespath.exceptions
import jmespath.functions
import jmespath.parser
import jmespath.visitor
from jsonpath_ng import Child, Descendants, Fields, Index, JSONPath, Root, Slice, This, Wildcard
from jsonpath_ng.ext import parse as parse_jsonpath
from jsonpath_ng.ext.filter import And, Filter, Or
from jsonpath_ng.ext.filter import Expression as FilterExpression

JSONPATH = "JsonPath"
JMESPATH = "JmesPath"
LANGUAGES = (JSONPATH, JMESPATH)

_MISSING = object()
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOTNET_EPOCH_TICKS = 621_355_968_000_000_000  # .NET ticks (100 ns) from 0001-01-01 to 1970-01-01


class ExpressionError(ValueError):
    """An expression that does not compile, or that fails on a message."""


class Expression:
    """A compiled expression: `select` gives every match, `select_one` the single match or None."""

    __slots__ = ("source", "language", "_many", "_one")

    def __init__(self, source, language, many, one):
        self.source = source
        self.language = language
        self._many = many
        self._one = one

    def select(self, data):
        """Every value the expression selects in `data` (SelectTokens); nulls are kept for JsonPath."""
        return self._many(data)

    def select_one(self, data):
        """The one value selected in `data`, or None; ExpressionError if it selects several."""
        return self._one(data)

    def __repr__(self):
        return f"Expression({self.language}: {self.source!r})"


def language_name(text):
    """The canonical language name for `text` (case-insensitive), or None if unknown."""
    if isinstance(text, str):
        return _LANGUAGE_NAMES.get(text.strip().lower())
    return None


_LANGUAGE_NAMES = {name.lower(): name for name in LANGUAGES}


@lru_cache(maxsize=4096)
def compile_expression(source, language=JSONPATH):
    """Compile `source` in `language` (JsonPath or JmesPath); ExpressionError if it does not compile."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("the expression is empty")
    if language == JSONPATH:
        return _compile_jsonpath(source)
    if language == JMESPATH:
        return _compile_jmespath(source)
    raise ExpressionError(f"unknown expression language {language!r}; use JsonPath or JmesPath")


# ---------------------------------------------------------------------------------------------------------
# JSONPath: Json.NET's dialect rewritten for jsonpath-ng's parser.


def _last_significant(chunks):
    """The last non-blank character written so far, or None."""
    for chunk in reversed(chunks):
        chunk = chunk.rstrip()
        if chunk:
            return chunk[-1]
    return None


def _regex_literal(text, start):
    """Read `/pattern/flags` at text[start]; return (jsonpath-ng quoted string, end index)."""
    index, pattern = start + 1, []
    while index < len(text) and text[index] != "/":
        step = 2 if text[index] == "\\" else 1
        pattern.append(text[index:index + step])
        index += step
    if index >= len(text):
        raise ExpressionError("unterminated regular expression literal")
    index += 1
    flags = ""
    while index < len(text) and text[index] in "imsx":
        flags += text[index]
        index += 1
    body = (f"(?{flags})" if flags else "") + "".join(pattern)
    return "'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'", index


def rewrite_jsonpath(text):
    """Rewrite the Json.NET forms jsonpath-ng does not read: `@name`, `===`, `!==`, `=~ /re/flags`."""
    out, index, quote = [], 0, None
    while index < len(text):
        char = text[index]
        if quote:
            step = 2 if char == "\\" else 1
            out.append(text[index:index + step])
            quote = None if char == quote else quote
            index += step
        elif char in "'\"":
            quote = char
            out.append(char)
            index += 1
        elif (char == "@" and index + 1 < len(text) and (text[index + 1].isalpha() or text[index + 1] == "_")
              and _last_significant(out) in (None, "(", "!", "&", "|", "=", "<", ">", ",", "[")):
            out.append("@.")
            index += 1
        elif text.startswith(("===", "!=="), index):
            out.append(text[index:index + 2])
            index += 3
        elif text.startswith("=~", index):
            index += 2
            while index < len(text) and text[index].isspace():
                index += 1
            if index < len(text) and text[index] == "/":
                literal, index = _regex_literal(text, index)
                out.append("=~ " + literal)
            else:
                out.append("=~ ")
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _compile_jsonpath(source):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = parse_jsonpath(rewrite_jsonpath(source))
    except ExpressionError:
        raise
    except Exception as error:  # jsonpath-ng raises several exception types for syntax errors
        raise ExpressionError(f"invalid JsonPath: {error}") from error
    try:
        many, one = _compile_path(tree)
    except _Unsupported:
        many, one = _library_path(tree), None

    def select(data):
        return many(data, data)

    if one is None:
        def select_one(data):
            return _single(many(data, data), source)
    else:
        def select_one(data):
            value = one(data, data)
            return None if value is _MISSING else value

    return Expression(source, JSONPATH, select, select_one)


def _single(values, source):
    if not values:
        return None
    if len(values) > 1:
        raise ExpressionError(f"{source} selects {len(values)} values where one is expected")
    return values[0]


def _library_path(tree):
    """Evaluate with jsonpath-ng itself (nodes this compiler does not know)."""

    def many(current, root):
        try:
            return [datum.value for datum in tree.find(current)]
        except Exception as error:  # a library extension failing on this data
            raise ExpressionError(f"JsonPath evaluation failed: {error}") from error

    return many


class _Unsupported(Exception):
    """A jsonpath-ng node this compiler leaves to jsonpath-ng."""


class _Scan:
    """The `..` step: `step` applied to a node and everything below it."""

    def __init__(self, step):
        self.step = step


def _linear(node):
    """(starts at root?, [steps]) for a path tree."""
    if isinstance(node, Root):
        return True, []
    if isinstance(node, This):
        if type(node) is not This:  # jsonpath-ng's named operators subclass This
            raise _Unsupported(node)
        return False, []
    if isinstance(node, Child):
        from_root, steps = _linear(node.left)
        return from_root, steps + _relative_steps(node.right)
    if isinstance(node, Descendants):
        from_root, steps = _linear(node.left)
        return from_root, steps + [_Scan(node.right)]
    return False, _relative_steps(node)


def _relative_steps(node):
    if isinstance(node, Child | Descendants):
        from_root, steps = _linear(node)
        if from_root:
            raise _Unsupported(node)
        return steps
    if type(node) is This:
        return []
    if isinstance(node, Fields | Index | Wildcard | Slice | Filter):
        return [node]
    raise _Unsupported(node)


def _compile_path(tree):
    """(many(current, root) -> list, one(current, root) -> value or _MISSING, or None)."""
    from_root, steps = _linear(tree)
    compiled = [_compile_step(step) for step in steps]
    one = _getter(from_root, steps)

    if len(compiled) == 1:
        only = compiled[0]

        def many(current, root):
            return only([root if from_root else current], root)
    else:
        def many(current, root):
            nodes = [root if from_root else current]
            for step in compiled:
                nodes = step(nodes, root)
                if not nodes:
                    break
            return nodes

    return many, one


def _getter(from_root, steps):
    """A fast single-value getter when every step is one name or one index, else None."""
    keys = []
    for step in steps:
        if isinstance(step, Fields) and len(step.fields) == 1:
            keys.append(step.fields[0])
        elif isinstance(step, Index) and len(step.indices) == 1:
            keys.append(step.indices[0])
        else:
            return None
    keys = tuple(keys)

    def one(current, root):
        value = root if from_root else current
        for key in keys:
            if isinstance(value, dict):
                if type(key) is not str:
                    return _MISSING
                value = value.get(key, _MISSING)
            elif isinstance(value, list) and type(key) is int and -len(value) <= key < len(value):
                value = value[key]
            else:
                return _MISSING
            if value is _MISSING:
                return value
        return value

    return one


def _compile_step(step):
    if isinstance(step, _Scan):
        return _compile_scan(step.step)
    if isinstance(step, Fields):
        return _fields_step(step.fields)
    if isinstance(step, Index):
        return _index_step(step.indices)
    if isinstance(step, Wildcard):
        return _wildcard_step
    if isinstance(step, Slice):
        return _slice_step(step)
    if isinstance(step, Filter):
        return _filter_step(_compile_filter(step))
    raise _Unsupported(step)


def _fields_step(names):
    if len(names) == 1:
        name = names[0]

        def step(nodes, root):
            out = []
            for node in nodes:
                if isinstance(node, dict):
                    value = node.get(name, _MISSING)
                    if value is not _MISSING:
                        out.append(value)
            return out
        return step

    def step_many(nodes, root):
        return [node[name] for node in nodes if isinstance(node, dict) for name in names if name in node]
    return step_many


def _index_step(indices):
    def step(nodes, root):
        return [node[index] for node in nodes if isinstance(node, list)
                for index in indices if -len(node) <= index < len(node)]
    return step


def _wildcard_step(nodes, root):
    out = []
    for node in nodes:
        if isinstance(node, dict):
            out.extend(node.values())
        elif isinstance(node, list):
            out.extend(node)
    return out


def _slice_step(node):
    if node.step == 0:
        raise ExpressionError("a slice step cannot be 0")
    bounds = slice(node.start, node.end, node.step)

    def step(nodes, root):
        out = []
        for value in nodes:
            if isinstance(value, list):
                out.extend(value[bounds])
        return out
    return step


def _filter_step(predicate):
    def step(nodes, root):
        return [item for node in nodes if isinstance(node, list) for item in node if predicate(item, root)]
    return step


def _children(value):
    if isinstance(value, dict):
        return iter(value.items())
    return zip(repeat(None), value)


def _descendants(node):
    """Every (member name or None, value) below `node`, in document order."""
    if not isinstance(node, dict | list):
        return []
    out, stack = [], [_children(node)]
    while stack:
        for name, value in stack[-1]:
            out.append((name, value))
            if isinstance(value, dict | list) and value:
                stack.append(_children(value))
                break
        else:
            stack.pop()
    return out


def _preorder(node):
    """`node` and every value below it, in document order."""
    out, stack = [], [node]
    pop, push, append = stack.pop, stack.extend, out.append
    while stack:
        value = pop()
        append(value)
        if isinstance(value, dict):
            push(reversed(value.values()))
        elif isinstance(value, list):
            push(reversed(value))
    return out


def _compile_scan(step):
    if isinstance(step, Fields):
        names = frozenset(step.fields)

        def scan_fields(nodes, root):
            return [value for node in nodes for name, value in _descendants(node) if name in names]
        return scan_fields
    if isinstance(step, Wildcard):
        def scan_all(nodes, root):
            return [value for node in nodes for _, value in _descendants(node)]
        return scan_all
    if isinstance(step, Filter):
        predicate = _compile_filter(step)

        def scan_filter(nodes, root):
            return [value for node in nodes for value in _preorder(node) if predicate(value, root)]
        return scan_filter
    inner = _compile_step(step)

    def scan_step(nodes, root):
        containers = []
        for node in nodes:
            if isinstance(node, dict | list):
                containers.append(node)
            containers.extend(value for _, value in _descendants(node) if isinstance(value, dict | list))
        return inner(containers, root)
    return scan_step


# Filters -------------------------------------------------------------------------------------------------


def _compile_filter(node):
    predicates = [_compile_predicate(expression) for expression in node.expressions]
    if len(predicates) == 1:
        return predicates[0]
    return lambda current, root: all(predicate(current, root) for predicate in predicates)


def _compile_predicate(node):
    if isinstance(node, And):
        parts = [_compile_predicate(operand) for operand in node.operands]
        return lambda current, root: all(part(current, root) for part in parts)
    if isinstance(node, Or):
        parts = [_compile_predicate(operand) for operand in node.operands]
        return lambda current, root: any(part(current, root) for part in parts)
    if isinstance(node, FilterExpression):
        try:
            return _compile_comparison(node)
        except _Unsupported:
            pass
    return _library_predicate(node)


def _library_predicate(node):
    def predicate(current, root):
        try:
            return bool(node.find(current))
        except Exception:  # a library extension failing on this node: no match
            return False
    return predicate


def _exists(target):
    """Whether `target` selects anything (Json.NET: a member that is null exists)."""
    from_root, steps = _linear(target)
    if not from_root and len(steps) == 1 and isinstance(steps[0], Fields) and len(steps[0].fields) == 1:
        name = steps[0].fields[0]
        return lambda current, root: isinstance(current, dict) and name in current
    many, one = _compile_path(target)
    if one is not None:
        return lambda current, root: one(current, root) is not _MISSING
    return lambda current, root: bool(many(current, root))


def _operand(node):
    """many(current, root) for a path operand of a filter."""
    many, one = _compile_path(node)
    if one is None:
        return many

    def single(current, root):
        value = one(current, root)
        return [] if value is _MISSING else [value]
    return single


def _compile_comparison(node):
    if node.op is None or node.op == "!":
        exists = _exists(node.target)
        if node.op is None:
            return exists
        return lambda current, root: not exists(current, root)
    left = _operand(node.target)
    compare = _comparator(node.op, node.value)
    if isinstance(node.value, JSONPath):
        right = _operand(node.value)

        def against_path(current, root):
            rights = right(current, root)
            return any(compare(value, other) for value in left(current, root) for other in rights)
        return against_path
    literal = node.value

    def against_literal(current, root):
        return any(compare(value, literal) for value in left(current, root))
    return against_literal


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(left, right):
    """Json.NET equality of two JSON values: same type (integers and floats are one type) and value."""
    if left is None or right is None or isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if _is_number(left) and _is_number(right):
        return left == right
    return isinstance(left, str) and isinstance(right, str) and left == right


def _as_number(value):
    if _is_number(value):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ordered(left, right):
    """The pair to order: two numbers, two strings, or a number and a numeric string; else None."""
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    if _is_number(left) or _is_number(right):
        pair = _as_number(left), _as_number(right)
        if isinstance(left, bool | dict | list) or isinstance(right, bool | dict | list) or None in pair:
            return None
        return pair
    return None


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _comparator(op, literal):
    if op in ("==", "="):
        return _json_equal
    if op == "!=":
        return lambda left, right: not _json_equal(left, right)
    if op == "=~":
        if not isinstance(literal, str):
            raise ExpressionError("=~ needs a regular expression string")
        try:
            pattern = re.compile(literal)
        except re.error as error:
            raise ExpressionError(f"invalid regular expression {literal!r}: {error}") from error
        return lambda left, right: isinstance(left, str) and pattern.search(left) is not None
    order = _ORDER.get(op)
    if order is None:
        raise _Unsupported(op)

    def compare(left, right):
        pair = _ordered(left, right)
        return pair is not None and order(*pair)
    return compare


# ---------------------------------------------------------------------------------------------------------
# JMESPath with MedTech's functions.


def _check_int64(value):
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        raise ExpressionError("mathematic error: the result does not fit in a 64-bit integer")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("mathematic error: overflow")
    return value


def _integer(value, what):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    raise ExpressionError(f"{what} must be a whole number")


def _iso_instant(moment):
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


def _from_epoch(amount, unit, name):
    try:
        return _iso_instant(_EPOCH + timedelta(**{unit: amount}))
    except (OverflowError, ValueError) as error:
        raise ExpressionError(f"{name}: {amount} is out of the date range") from error


_NUMBER = {"types": ["number"]}
_STRING = {"types": ["string"]}


class MedTechFunctions(jmespath.functions.Functions):
    """JMESPath's built-in functions plus MedTech's custom functions."""

    @jmespath.functions.signature(_NUMBER, _NUMBER)
    def _func_add(self, left, right):
        return _check_int64(left + right)

    @jmespath.functions.signature(_NUMBER, _NUMBER)
    def _func_subtract(self, left, right):
        return _check_int64(left - right)

    @jmespath.functions.signature(_NUMBER, _NUMBER)
    def _func_multiply(self, left, right):
        return _check_int64(left * right)

    @jmespath.functions.signature(_NUMBER, _NUMBER)
    def _func_divide(self, left, right):
        if right == 0:
            raise ExpressionError("mathematic error: divide by zero")
        if isinstance(left, int) and isinstance(right, int) and left % right == 0:
            return _check_int64(left // right)
        return _check_int64(left / right)

    @jmespath.functions.signature(_NUMBER, _NUMBER)
    def _func_pow(self, left, right):
        if isinstance(left, int) and isinstance(right, int) and right >= 0:
            if abs(left) > 1 and right > 64:
                raise ExpressionError("mathematic error: overflow")
            return _check_int64(left**right)
        try:
            return _check_int64(math.pow(left, right))
        except (OverflowError, ValueError) as error:
            raise ExpressionError(f"mathematic error: {error}") from error

    @jmespath.functions.signature(_STRING, _STRING, _NUMBER)
    def _func_insertString(self, original, to_insert, position):  # noqa: N802 (MedTech's name)
        position = _integer(position, "insertString position")
        if not 0 <= position <= len(original):
            raise ExpressionError(f"insertString position {position} is out of range 0..{len(original)}")
        return original[:position] + to_insert + original[position:]

    @jmespath.functions.signature(_NUMBER)
    def _func_fromUnixTimestamp(self, seconds):  # noqa: N802
        return _from_epoch(seconds, "seconds", "fromUnixTimestamp")

    @jmespath.functions.signature(_NUMBER)
    def _func_fromUnixTimestampMs(self, milliseconds):  # noqa: N802
        return _from_epoch(milliseconds, "milliseconds", "fromUnixTimestampMs")

    @jmespath.functions.signature(_NUMBER)
    def _func_ticksToUtcDateTime(self, ticks):  # noqa: N802
        ticks = _integer(ticks, "ticksToUtcDateTime ticks")
        return _from_epoch((ticks - _DOTNET_EPOCH_TICKS) // 10, "microseconds", "ticksToUtcDateTime")


_INTERPRETER = jmespath.visitor.TreeInterpreter(jmespath.visitor.Options(custom_functions=MedTechFunctions()))
_PROJECTIONS = frozenset({"projection", "value_projection", "filter_projection"})


def _is_projection(node):
    """Whether a JMESPath tree yields a projection (MedTech then takes each element as a match)."""
    kind = node["type"]
    if kind in _PROJECTIONS:
        return True
    if kind in ("subexpression", "pipe"):
        return _is_projection(node["children"][-1])
    return False


def _check_functions(node):
    """Raise ExpressionError for an unknown function or a wrong number of arguments."""
    if node["type"] == "function_expression":
        name = node["value"]
        spec = MedTechFunctions.FUNCTION_TABLE.get(name)
        if spec is None:
            raise ExpressionError(f"unknown function {name}()")
        signature, count = spec["signature"], len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic")
        if count < len(signature) or (count > len(signature) and not variadic):
            raise ExpressionError(f"{name}() takes {len(signature)} arguments, not {count}")
    for child in node.get("children", ()):
        if isinstance(child, dict):
            _check_functions(child)


def _compile_jmespath(source):
    try:
        with warnings.catch_warnings():  # MedTech documents `name` string literals, a deprecated form
            warnings.simplefilter("ignore")
            tree = jmespath.parser.Parser().parse(source).parsed
    except jmespath.exceptions.JMESPathError as error:
        raise ExpressionError(f"invalid JmesPath: {error}") from error
    _check_functions(tree)
    projection = _is_projection(tree)
    visit = _INTERPRETER.visit

    def evaluate(data):
        try:
            return visit(tree, data)
        except ExpressionError:
            raise
        except (jmespath.exceptions.JMESPathError, ArithmeticError, TypeError, ValueError) as error:
            raise ExpressionError(f"JmesPath evaluation failed: {error}") from error

    def select(data):
        result = evaluate(data)
        if result is None:
            return []
        if projection and isinstance(result, list):
            return [item for item in result if item is not None]
        return [result]

    def select_one(data):
        result = evaluate(data)
        if projection and isinstance(result, list):
            return _single([item for item in result if item is not None], source)
        return result

    return Expression(source, JMESPATH, select, select_one)
