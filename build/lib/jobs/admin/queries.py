"""The annotations and searches the list pages share.

A list page costs a fixed number of queries however many jobs there are: the latest run of each job is a
correlated subquery on the (job, created_at, id) index (tests/jobs/test_admin_queries.py holds the count)."""

from django.db.models import OuterRef, Q, QuerySet, Subquery

from jobs.models import JobHistory


def latest_run(field_name: str) -> Subquery:
    """`field_name` of the job's latest run: one probe of the (job, created_at, id) index per job row."""
    runs = JobHistory.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-id")
    return Subquery(runs.values(field_name)[:1])


def with_latest_run(queryset: QuerySet) -> QuerySet:
    return queryset.annotate(
        last_run_id=latest_run("id"),
        last_status=latest_run("status"),
        last_started_at=latest_run("started_at"),
        last_finished_at=latest_run("finished_at"),
    )


def search_by_name_or_id(queryset: QuerySet, term: str) -> QuerySet:
    """Every word must match: a number (or #number) matches the id exactly, anything matches the name.

    The stock "=id" search casts the term to a number and fails the whole search for a word like "nightly"."""
    for word in term.split():
        digits = word.lstrip("#")
        match = Q(name__icontains=word)
        if digits.isdigit() and len(digits) < 19:
            match |= Q(pk=int(digits))
        queryset = queryset.filter(match)
    return queryset
