"""Ids as clients send them."""

MAX_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """An id as clients send it (a string of digits, or an integer), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_ID else None
