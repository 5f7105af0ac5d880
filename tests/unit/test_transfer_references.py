"""Transfer titles (giving/transfers.py): one per pledge, with a check digit, found again in
whatever a bank's statement makes of them, and never mistaken when a digit is wrong."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supporters.giving.transfers import Reference, format_reference, references_in


def test_a_title_names_the_year_the_gift_and_a_check_digit() -> None:
    title = format_reference(2026, 153)
    assert title == "DAR 2026 000153 0"
    assert references_in(title) == [Reference(2026, 153)]
    assert format_reference(2026, 1234567).startswith("DAR 2026 1234567 ")


@pytest.mark.parametrize(
    "written",
    [
        "{t}",
        "Darowizna {t} dziękuję",
        "{t.lower}",
        "{t.joined}",
        "{t.dashed}",
        "PRZELEW: {t.joined}/Ewa",
    ],
)
def test_a_title_is_found_however_the_bank_writes_it(written: str) -> None:
    title = format_reference(2026, 153)

    class Spelled(str):
        lower = title.lower()
        joined = title.replace(" ", "")
        dashed = title.replace(" ", "-")

    text = written.format(t=Spelled(title))
    assert references_in(text) == [Reference(2026, 153)]


@given(st.integers(2020, 2099), st.integers(1, 10**8))
def test_one_wrong_digit_or_two_swapped_is_never_another_pledge(year: int, gift_id: int) -> None:
    title = format_reference(year, gift_id)
    digits = [i for i, c in enumerate(title) if c.isdigit()]
    for i in digits:
        wrong = title[:i] + str((int(title[i]) + 1) % 10) + title[i + 1 :]
        assert references_in(wrong) == []
    for a, b in itertools.pairwise(digits):
        if b == a + 1 and title[a] != title[b] and {title[a], title[b]} != {"0", "9"}:
            swapped = title[:a] + title[b] + title[a] + title[b + 1 :]
            assert references_in(swapped) == []


def test_text_without_a_title_names_none() -> None:
    assert references_in("") == []
    assert references_in("Zwrot za fakturę 2026/11/30") == []
    assert references_in("ADAR 2026 000153 7") == []  # not a title: part of a longer word
