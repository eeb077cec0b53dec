"""rclone-style include/exclude globs: `*` within a path segment, `**` across segments; a pattern without a
leading `/` matches at any depth ("*.jpg" matches "a/b/c.jpg"), one with it only from the top."""

from wcmatch import glob

_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.BRACE


def _anchor(pattern: str) -> str:
    return pattern[1:] if pattern.startswith("/") else "**/" + pattern


def selected(path: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    if exclude and glob.globmatch(path, [_anchor(p) for p in exclude], flags=_FLAGS):
        return False
    if include:
        return glob.globmatch(path, [_anchor(p) for p in include], flags=_FLAGS)
    return True


def as_list(value: object) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
