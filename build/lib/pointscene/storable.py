"""What PostgreSQL (and JSON) cannot store, found before it reaches the database.

A NUL character cannot be in a text column or a jsonb string, a lone UTF-16 surrogate cannot be encoded as UTF-8,
and NaN or Infinity are not JSON: all three arrive through a GraphQL request without complaint (Python's JSON
parser accepts them), and would otherwise fail at the INSERT as an internal error.
"""

import math


def unstorable(value: object, path: str) -> tuple[str, str] | None:
    """The first (path, problem) inside `value` that cannot be stored, or None. Paths are dotted, lists [i]."""
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, float) and not math.isfinite(value):
        return path, "must be a finite number (NaN and Infinity are not JSON)"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key, path) if isinstance(key, str) else None
            if problem:
                return path, f"has a key that {problem[1].removeprefix('must ')}"
            problem = unstorable(item, f"{path}.{key}")
            if problem:
                return problem
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = unstorable(item, f"{path}[{i}]")
            if problem:
                return problem
    return None


def _text_problem(text: str, path: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return path, "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return path, "must be valid Unicode (it holds a lone surrogate)"
    return None
