"""The dashboard's import pages: a fundraiser uploads a supporters file and a gifts file,
checks the columns guessed, sees the preview (errors first), imports it once; a viewer
may not; a file that is no CSV or XLSX is a 400; the upload route takes a large file."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supporters.core.request_sizes import limit_for
from supporters.imports.reading import MAX_FILE_BYTES
from supporters.models import AuditEvent, Gift, ImportMapping, ImportRun, Supporter
from tests.functional.dashboard.conftest import signed_in_as
from tests.functional.test_import import GIFTS, SUPPORTERS, campaign, row_counts

DATA = Path(__file__).parents[1] / "data" / "imports"


def upload(client: Any, supporters: bytes = SUPPORTERS, gifts: bytes | None = GIFTS, name: str = "s.csv") -> Any:
    data: dict[str, Any] = {"file": (io.BytesIO(supporters), name)}
    if gifts is not None:
        data["gifts_file"] = (io.BytesIO(gifts), "g.csv")
    return client.post("/dashboard/imports/upload", data=data, content_type="multipart/form-data")


def run_id(response: Any) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    found = re.search(r"/imports/(\d+)", response.headers["Location"])
    assert found
    return int(found.group(1))


def mapping_form(client: Any, run: int) -> dict[str, str]:
    """The mapping page's form as it is shown (selected options)."""
    html = client.get(f"/dashboard/imports/{run}/columns").get_data(as_text=True)
    values: dict[str, str] = {}
    for select in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select.group(2))
        values[select.group(1)] = (chosen.group(1) or chosen.group(2)) if chosen else ""
    values.pop("source", None)
    return values


def test_a_fundraiser_uploads_maps_previews_and_imports_once(client: Any, db: Any) -> None:
    campaign()
    signed_in_as(client, "fundraiser")
    run = run_id(upload(client))
    assert client.get(f"/dashboard/imports/{run}").status_code == 303  # no mapping yet: the columns first
    form = mapping_form(client, run)
    assert form["s_email"] == "E-mail" and form["g_amount"] == "Kwota" and form["s_city"] == "Miasto"
    response = client.post(f"/dashboard/imports/{run}/columns", data={**form, "name": "Old CRM"})
    assert response.status_code == 303
    page = client.get(f"/dashboard/imports/{run}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "3 new supporters" in html and "3 new gifts" in html and "0 rows with errors" in html
    key = re.search(r'name="preview_key"[^>]*value="([0-9a-f]{64})"', html)
    assert key
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Supporter))
    assert before == 0
    done = client.post(f"/dashboard/imports/{run}/import", data={"preview_key": key.group(1)})
    assert done.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Gift)) == 3
    assert "3 new supporters" in client.get(f"/dashboard/imports/{run}").get_data(as_text=True)
    again = client.post(f"/dashboard/imports/{run}/import", data={"preview_key": key.group(1)})
    assert again.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Gift)) == 3
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"import.uploaded", "import.mapping_saved", "import.committed"} <= actions


def test_the_preview_shows_errors_first_and_offers_no_import(client: Any, db: Any) -> None:
    signed_in_as(client, "fundraiser")
    run = run_id(upload(client, SUPPORTERS + b"K-9;Zoe;X;broken;;;;;;;;;\n", gifts=None))
    client.post(f"/dashboard/imports/{run}/columns", data={**mapping_form(client, run), "name": "Old CRM"})
    html = client.get(f"/dashboard/imports/{run}").get_data(as_text=True)
    assert "1 row with an error" in html and "is not valid" in html
    assert "preview_key" not in html
    assert "anna@example.org" not in html  # the errors tab shows only the rows with errors
    assert "anna@example.org" in client.get(f"/dashboard/imports/{run}?show=all").get_data(as_text=True)


def test_an_import_with_a_preview_key_of_another_mapping_is_refused(client: Any, db: Any) -> None:
    campaign()
    signed_in_as(client, "fundraiser")
    run = run_id(upload(client))
    form = mapping_form(client, run)
    client.post(f"/dashboard/imports/{run}/columns", data={**form, "name": "Old CRM"})
    html = client.get(f"/dashboard/imports/{run}").get_data(as_text=True)
    key = re.search(r'name="preview_key"[^>]*value="([0-9a-f]{64})"', html)
    assert key
    client.post(f"/dashboard/imports/{run}/columns", data={**form, "name": "Old CRM", "s_city": ""})
    before = row_counts()
    assert client.post(f"/dashboard/imports/{run}/import", data={"preview_key": key.group(1)}).status_code == 409
    assert row_counts() == before


def test_a_saved_mapping_is_offered_for_the_sources_next_file(client: Any, db: Any) -> None:
    signed_in_as(client, "fundraiser")
    first = run_id(upload(client, gifts=None))
    form = mapping_form(client, first)
    client.post(f"/dashboard/imports/{first}/columns", data={**form, "name": "Old CRM", "s_city": ""})
    saved = db.session.scalar(sa.select(ImportMapping).filter_by(name="Old CRM"))
    assert saved is not None and "city" not in saved.supporter_columns
    second = run_id(upload(client, gifts=None))
    again = mapping_form(client, second)
    assert again["s_city"] == "Miasto"  # guessed for a new file
    assert mapping_form_with_source(client, second, saved.id)["s_city"] == ""


def mapping_form_with_source(client: Any, run: int, source: int) -> dict[str, str]:
    html = client.get(f"/dashboard/imports/{run}/columns?source={source}").get_data(as_text=True)
    chosen = re.search(r'name="s_city"[^>]*>(.*?)</select>', html, re.S)
    assert chosen
    selected = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', chosen.group(1))
    return {"s_city": (selected.group(1) or selected.group(2)) if selected else ""}


def test_a_mapping_without_an_e_mail_column_is_refused_at_its_field(client: Any, db: Any) -> None:
    signed_in_as(client, "fundraiser")
    run = run_id(upload(client, gifts=None))
    response = client.post(
        f"/dashboard/imports/{run}/columns", data={**mapping_form(client, run), "name": "X", "s_email": ""}
    )
    assert response.status_code == 400
    assert "Choose the column with the e-mail address." in response.get_data(as_text=True)


@pytest.mark.parametrize(("content", "name"), [(b"%PDF-1.4", "list.pdf"), (b"\xd0\xcf\x11\xe0 old excel", "list.xls")])
def test_a_file_that_is_no_csv_or_xlsx_is_a_400_with_its_reason(
    client: Any, db: Any, content: bytes, name: str
) -> None:
    signed_in_as(client, "fundraiser")
    before = row_counts()
    response = upload(client, content, gifts=None, name=name)
    assert response.status_code == 400
    assert "Upload a CSV or XLSX file" in response.get_data(as_text=True)
    assert row_counts()[1:] == before[1:] or db.session.scalar(sa.select(sa.func.count()).select_from(ImportRun)) == 0


def test_the_upload_route_takes_two_large_files_but_no_more(client: Any, db: Any) -> None:
    assert limit_for("dashboard.imports.upload") > 2 * MAX_FILE_BYTES
    signed_in_as(client, "fundraiser")
    row = "K-%d;Anna;Kowalska;anna%d@example.org;PL;pl;ul. Długa 5;00-001;Warszawa;;nie;;\n"
    big = SUPPORTERS + "".join(row % (n, n) for n in range(100_000)).encode()  # about 8 MB
    assert 7_000_000 < len(big) < MAX_FILE_BYTES
    assert upload(client, big, gifts=big).status_code == 303
    assert upload(client, b"x" * (MAX_FILE_BYTES + 1), gifts=None).status_code == 400
    assert upload(client, b"x" * (2 * MAX_FILE_BYTES), gifts=b"x" * 1024 * 1024).status_code == 413


@pytest.mark.parametrize("role", ["viewer"])
def test_viewers_may_not_import(client: Any, db: Any, role: str) -> None:
    signed_in_as(client, role)
    assert client.get("/dashboard/imports/").status_code == 403
    assert upload(client).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportRun)) == 0


def test_an_import_that_does_not_exist_is_a_404(client: Any, db: Any) -> None:
    signed_in_as(client, "fundraiser")
    assert client.get("/dashboard/imports/999999").status_code == 404
    assert client.post("/dashboard/imports/999999/import", data={"preview_key": "x"}).status_code == 404
