"""Secret arguments of workflow tasks (http.request's `secretHeaders`): given as plain strings, stored in the job's
workflow as one Fernet token per value (configs.crypto, the keys that encrypt remotes), opened only by the worker
running the step, and shown to every reader as `[{"name", "isSet"}]`, as getJobConfig shows a remote's secrets.

The three forms of one value, by where it is:
- written (API, admin): a string sets or replaces it; {"keep": true} keeps the value stored under that name for
  the task of the same name and type in the job's current workflow (only while the task's URL keeps its scheme,
  host and port: a client that did not know a secret cannot send it somewhere new);
- stored: {"sealed": "<Fernet token>"}; never accepted as input, so no one can hand in a token to have it opened;
- read (GraphQL): the map becomes a list of {"name", "isSet"}; the admin shows {"keep": true} per name instead, so
  that its form saves back what it showed.
"""

import copy
from collections.abc import Iterator
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.core.exceptions import ValidationError
from django.db import transaction

from configs.crypto import DecryptionFailed, fernet
from jobs.models import ScheduledJob
from pointscene.core import errors

# Task type -> its arguments that map names to secret values.
SECRET_MAPS: dict[str, tuple[str, ...]] = {"http.request": ("secretHeaders",)}
KEEP = {"keep": True}
SEALED = "sealed"


def is_keep(value: object) -> bool:
    return isinstance(value, dict) and value == KEEP


def _maps(workflow: object) -> Iterator[tuple[int, dict, str, dict]]:
    """(task position, task, argument name, the secret map) for every secret map in a workflow document."""
    tasks = workflow.get("tasks") if isinstance(workflow, dict) else None
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(task, dict) or not isinstance(task.get("args"), dict):
            continue
        for name in SECRET_MAPS.get(task.get("type"), ()) if isinstance(task.get("type"), str) else ():
            if isinstance(task["args"].get(name), dict):
                yield i, task, name, task["args"][name]


def _sealed(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get(SEALED), str)


def _origin(url: object) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port) if parts else None
    except ValueError:
        return None


def _stored_for(previous: object, task: dict, arg: str) -> dict[str, str]:
    """The sealed values (lower-cased name -> token) that `task` may keep from the job's current workflow."""
    for _, old_task, old_arg, values in _maps(previous):
        if (old_task.get("name"), old_task.get("type"), old_arg) != (task.get("name"), task.get("type"), arg):
            continue
        if _origin(old_task["args"].get("url")) != _origin(task["args"].get("url")):
            return {}
        return {k.lower(): v[SEALED] for k, v in values.items() if _sealed(v)}
    return {}


def seal_workflow(workflow: object, previous: object = None, field: str = "workflow") -> object:
    """`workflow` (checked: jobs.workflow.check_workflow) as it is stored: every secret string encrypted, every
    {"keep": true} replaced by the token stored for it in `previous`. Raises INVALID_WORKFLOW for a keep that has
    nothing to keep. The caller's document is left as it was."""
    sealed = copy.deepcopy(workflow)
    multi = fernet()
    problems: dict[str, list[ValidationError]] = {}
    for i, task, arg, values in _maps(sealed):
        stored = None
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = {SEALED: multi.encrypt(value.encode()).decode()}
            elif is_keep(value):
                stored = _stored_for(previous, task, arg) if stored is None else stored
                if name.lower() in stored:
                    values[name] = {SEALED: stored[name.lower()]}
                else:
                    message = (
                        "nothing stored to keep: give the value (a kept value needs the same task name, type and "
                        "URL scheme, host and port as the stored one)"
                    )
                    problems[f"{field}.tasks[{i}].args.{arg}.{name}"] = [
                        ValidationError(message, code=errors.INVALID_WORKFLOW)
                    ]
    if problems:
        raise ValidationError(problems)
    return sealed


def check_keeps(workflow: object, previous: object, field: str = "workflow") -> None:
    """Raises what seal_workflow would, without keeping its result (for validation before saving)."""
    seal_workflow(workflow, previous, field)


def _viewed(workflow: object, view) -> object:
    if not any(True for _ in _maps(workflow)):
        return workflow
    shown = copy.deepcopy(workflow)
    for _, task, arg, values in _maps(shown):
        task["args"][arg] = view(values)
    return shown


def public_workflow(workflow: object) -> object:
    """The workflow as readers get it: each secret map a list of {"name", "isSet"}, sorted by name."""
    return _viewed(workflow, lambda values: [{"name": k, "isSet": bool(values[k])} for k in sorted(values)])


def editable_workflow(workflow: object) -> object:
    """The workflow as it is written: each stored (sealed) secret value {"keep": true}, so that saving it back
    keeps the value; values already written (strings, keeps) stay. The admin's form shows this."""
    return _viewed(workflow, lambda values: {k: dict(KEEP) if _sealed(v) else v for k, v in values.items()})


def open_values(values: object) -> dict[str, str]:
    """The plain values of a stored secret map, for the worker about to send them. Raises DecryptionFailed, or
    ValueError for a value that is not stored sealed (never sent: it did not come through seal_workflow)."""
    if not isinstance(values, dict):
        return {}
    multi = fernet()
    opened = {}
    for name, value in values.items():
        if not _sealed(value):
            raise ValueError(f"{name} is not stored encrypted")
        try:
            opened[name] = multi.decrypt(value[SEALED].encode()).decode()
        except InvalidToken:
            raise DecryptionFailed(f"{name} cannot be decrypted with the configured keys") from None
    return opened


def rotate_secret_values(batch_size: int = 500) -> int:
    """Re-encrypts every stored secret argument under the newest config key (rotate_config_keys), a batch of jobs
    per transaction while the service runs. Returns the number of values rewritten."""
    multi = fernet()
    rotated, last_id = 0, 0
    while True:
        with transaction.atomic():
            # Row locks: an update of the job's workflow waits for its batch, and the reverse.
            jobs = list(
                ScheduledJob.objects.select_for_update()
                .filter(pk__gt=last_id)
                .order_by("pk")
                .only("pk", "workflow")[:batch_size]
            )
            if not jobs:
                return rotated
            changed = []
            for job in jobs:
                count = 0
                for _, _, _, values in _maps(job.workflow):
                    for value in values.values():
                        if _sealed(value):
                            try:
                                value[SEALED] = multi.rotate(value[SEALED].encode()).decode()
                            except InvalidToken:
                                raise DecryptionFailed(
                                    f"a secret value of job {job.pk} cannot be decrypted with any configured key"
                                ) from None
                            count += 1
                if count:
                    changed.append(job)
                    rotated += count
            if changed:
                ScheduledJob.objects.bulk_update(changed, ["workflow"])
        last_id = jobs[-1].pk
