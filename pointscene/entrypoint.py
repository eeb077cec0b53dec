"""The image's ENTRYPOINT: prepare this container's process group, then become its command (exec, so signals reach
it and it stays PID 1's only child).

    python -m pointscene.entrypoint <command> [args...]

- Empties the container's own Prometheus multiprocess folder (pointscene.procmetrics).
- Drops FLOWER_* variables that are set but empty: Flower reads every FLOWER_<option> from the environment, and an
  empty FLOWER_BASIC_AUTH would become basic_auth=[''], a login nobody can pass (401 for everyone).
"""

import os
import sys

from pointscene import procmetrics


def environment(env: dict[str, str]) -> dict[str, str]:
    """The environment the command gets: the container's, without empty Flower options."""
    return {name: value for name, value in env.items() if not (name.startswith("FLOWER_") and value == "")}


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m pointscene.entrypoint <command> [args...]")
    env = environment(dict(os.environ))
    procmetrics.prepare(env)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main(sys.argv[1:])
