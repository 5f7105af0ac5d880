"""Tags, as staff type them on supporters and as articles carry them: one clean-up for both."""

from __future__ import annotations

from collections.abc import Iterable

#: the longest tag, in characters
TAG_MAX = 50


def tidy_tag(text: str) -> str:
    """A tag as kept: no surrounding space, inner runs of whitespace as one space."""
    return " ".join(text.split())


def unique_tags(items: Iterable[str]) -> list[str]:
    """The tags tidied, empty ones dropped, repeats ignoring case dropped ("Gas" and
    "gas" are one tag; the first spelling is kept), in their order."""
    seen: set[str] = set()
    unique: list[str] = []
    for item in items:
        tag = tidy_tag(item)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            unique.append(tag)
    return unique


def split_tags(text: str) -> list[str]:
    """Comma-separated tags, as `unique_tags` keeps them."""
    return unique_tags((text or "").split(","))


def too_long(tags: Iterable[str]) -> list[str]:
    """The tags longer than TAG_MAX characters."""
    return [tag for tag in tags if len(tag) > TAG_MAX]
