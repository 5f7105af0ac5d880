"""CSV exports: formula injection neutralised, streamed, UTF-8 with an optional BOM."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supporters.lib.exporting import BOM, csv_lines, csv_text_batches, inert_row, neutralise, text_lines


@pytest.mark.parametrize("value", ["=1+1", "+48 600", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_cells_a_spreadsheet_would_run_are_made_inert(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize(
    "value,expected", [("Anna", "Anna"), (None, ""), (5000, "5000"), ("a=b", "a=b"), ("Łódź", "Łódź")]
)
def test_ordinary_cells_are_left_alone(value: object, expected: str) -> None:
    assert neutralise(value) == expected


def test_rows_stream_in_chunks_and_read_back() -> None:
    rows = ([i, f"=cmd{i}", 'Zażółć, "gęślą"'] for i in range(1200))
    chunks = list(csv_lines(["id", "formula", "text"], rows))
    assert len(chunks) >= 3
    parsed = list(csv.reader(io.StringIO("".join(chunks))))
    assert parsed[0] == ["id", "formula", "text"] and len(parsed) == 1201
    assert parsed[5] == ["4", "'=cmd4", 'Zażółć, "gęślą"']


def test_the_bom_is_optional() -> None:
    assert "".join(csv_lines(["a"], [], bom=True)).startswith(BOM)
    assert not "".join(csv_lines(["a"], [])).startswith(BOM)


def test_rows_are_consumed_lazily() -> None:
    consumed = []

    def rows():
        for i in range(2000):
            consumed.append(i)
            yield [i]

    stream = csv_lines(["n"], rows())
    next(stream)
    assert len(consumed) <= 501


@given(st.lists(st.one_of(st.text(), st.none(), st.integers(min_value=0))))
def test_the_row_fast_path_writes_what_neutralise_would(row: list[object]) -> None:
    written = "".join(csv_lines(["x"] * len(row), [row]))
    expected = "".join(csv_lines(["x"] * len(row), [[neutralise(cell) for cell in row]]))
    assert written == expected


def test_numbers_are_written_as_numbers() -> None:
    assert inert_row([-5, 0, None, "-5"]) == [-5, 0, None, "'-5"]


CELL = st.text(alphabet=st.sampled_from(list("ab ,\"\r\n\t=-'ł\u2028\x0b;")), max_size=6)


@given(st.lists(st.lists(CELL, min_size=1, max_size=5), max_size=5))
def test_text_lines_are_what_the_csv_writer_writes(rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    assert text_lines(rows) == buffer.getvalue()


def test_text_batches_write_the_header_then_each_batch() -> None:
    chunks = list(csv_text_batches(["id", "=x"], [[["1", "a,b"]], [["2", ""]]], bom=True))
    assert "".join(chunks) == BOM + "id,'=x\r\n" + '1,"a,b"\r\n' + "2,\r\n"
