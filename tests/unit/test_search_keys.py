"""Supporter search keys and the prefix ranges that find them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from supporters.models import prefix_range
from supporters.models.supporter import search_keys


def test_keys_are_the_email_its_domain_and_the_name_from_each_word_on() -> None:
    assert search_keys("anna maria nowak", "a.n@example.org") == {
        "anna maria nowak",
        "maria nowak",
        "nowak",
        "a.n@example.org",
        "@example.org",
    }


def test_a_word_starts_after_a_hyphen_too() -> None:
    assert search_keys("anna sliwinska-kowalczyk", "a@example.org") == {
        "anna sliwinska-kowalczyk",
        "sliwinska-kowalczyk",
        "kowalczyk",
        "a@example.org",
        "@example.org",
    }


@given(st.text(min_size=1, max_size=8), st.text(max_size=8))
def test_the_range_holds_exactly_the_strings_with_that_prefix(prefix: str, tail: str) -> None:
    low, high = prefix_range(prefix)
    candidate = prefix + tail
    assert low <= candidate and (high is None or candidate < high)


@given(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8))
def test_strings_without_the_prefix_fall_outside(prefix: str, other: str) -> None:
    if other.startswith(prefix):
        return
    low, high = prefix_range(prefix)
    assert not (low <= other and (high is None or other < high))


def test_the_range_steps_over_surrogates_and_the_last_code_point() -> None:
    assert prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")
    assert prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
    assert prefix_range("\U0010ffff") == ("\U0010ffff", None)
