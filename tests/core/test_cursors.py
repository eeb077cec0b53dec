"""pointscene/core/cursors.py: the one format of the API's page cursors and what it refuses."""

import base64

import pytest
from django.core.exceptions import ValidationError

from pointscene.core import cursors


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_it_decodes_what_it_encodes():
    cursor = cursors.encode("h1", 1_733_000_000_000_000, 42)

    assert "=" not in cursor
    assert cursors.decode(cursor, "h1", 2, "page.after") == (1_733_000_000_000_000, 42)


@pytest.mark.parametrize(
    "cursor",
    [
        raw("j1:42"),  # another list's cursor
        raw("h1:42"),  # too few numbers
        raw("h1:1:2:3"),  # too many
        raw("h1:1:0"),  # no row has id 0
        raw(f"h1:1:{2**63}"),  # nor one past a bigint
        raw("h1:1:x"),
        raw("h1:1:-5"),
        "not base64 at all!",
        base64.urlsafe_b64encode("h1:1:é".encode()).decode(),  # not ASCII
        raw("h1:1:" + "9" * 90),  # too long
        42,
        None,
    ],
)
def test_it_refuses_what_it_did_not_hand_out(cursor):
    with pytest.raises(ValidationError) as refused:
        cursors.decode(cursor, "h1", 2, "page.after")

    assert refused.value.message_dict == {"page.after": ["is not a cursor this API returned"]}
    assert refused.value.error_dict["page.after"][0].code == "INVALID_CURSOR"
