"""The reliability policies a job carries (issue 6), shared by createScheduledJob and updateScheduledJob."""

import graphene

from jobs import rules
from jobs.graphql.types import OverlapPolicy, enum_value

# The GraphQL arguments (snake case, as graphene hands them over) are named as the service's keywords.
POLICY_ARGUMENTS = rules.POLICY_FIELDS


class PolicyArguments:
    """Mixed into the Arguments of createScheduledJob and updateScheduledJob (graphene reads inherited ones)."""

    overlap_policy = OverlapPolicy(
        description="What a slot does while the previous run is still going: SKIP (default), BUFFER_ONE, ALLOW."
    )
    catchup_window_minutes = graphene.Int(
        description=(
            f"Slots missed while nothing could start them (0 to {rules.MAX_CATCHUP_WINDOW_MINUTES}): within "
            "this many minutes they run once, coalesced; older ones are recorded as MISSED. Default 0."
        )
    )
    jitter_seconds = graphene.Int(
        description=(
            f"Spread: runs start a fixed 0 to jitterSeconds (at most {rules.MAX_JITTER_SECONDS}) seconds after "
            "their slot, the same offset every time for this job. Default 0."
        )
    )
    max_retries = graphene.Int(
        description=(
            f"Extra attempts (0 to {rules.MAX_RETRIES}) of a step that failed in a retryable way: network "
            "errors, timeouts, 429, 5xx, rclone's retryable exit codes. Default 0."
        )
    )
    retry_backoff_seconds = graphene.Int(
        description="Seconds before the first retry, doubling with every further attempt (1 to 3600; default 30)."
    )
    pause_after_failures = graphene.Int(
        description="Deactivate the job after this many consecutive failed runs (1 to 1000); null: never (default)."
    )
    webhook_url = graphene.String(
        description="Where every failed run, and the pause, is posted as signed JSON; null turns it off."
    )
    webhook_secret = graphene.String(
        description=(
            "The key (16 to 256 characters) that signs webhook bodies (X-Pointscene-Signature: sha256=HMAC of "
            "'<timestamp>.<body>'). Write-only: never returned."
        )
    )


def policy_changes(given: dict) -> dict:
    """The policy arguments present in `given`, removed from it, as service keywords with plain values."""
    return {name: enum_value(given.pop(name)) for name in POLICY_ARGUMENTS if name in given}
