"""OperationOutcome resources."""


def issue(severity, code, diagnostics, expression=None):
    """One OperationOutcome.issue."""
    entry = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = list(expression)
    return entry


def operation_outcome(issues):
    """An OperationOutcome holding the given issues."""
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def outcome_for_error(error):
    """OperationOutcome for a FhirError, one issue per reported problem."""
    problems = getattr(error, "issues", None)
    if problems:
        return operation_outcome(issue("error", error.code, msg, [path]) for path, msg in problems)
    return operation_outcome([issue("error", error.code, error.diagnostics, error.expression)])


def information(diagnostics):
    """An OperationOutcome with one informational issue."""
    return operation_outcome([issue("information", "informational", diagnostics)])
