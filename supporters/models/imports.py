"""Imports of supporters and their gifts from another system (supporters/imports/): the
column mappings saved per source, each upload and what importing it did, and every row
imported, so that importing the same file again changes nothing."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supporters.models.base import Base, UTCDateTime, enum_column, utcnow


class ImportMapping(Base):
    """Which column of a source's files holds which of our fields, saved under the
    source's name ("Old CRM", "Excel 2024") and offered again for its next file. The
    rows imported from a source are remembered per mapping (`ImportedRow`)."""

    __tablename__ = "import_mapping"

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: the source's name, as staff chose it; unique
    name: Mapped[str] = mapped_column(sa.String(100), unique=True, info={"personal": False})
    #: our supporter field -> the header of the column that holds it, in the supporters file
    supporter_columns: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, info={"personal": False})
    #: our gift field -> the header of its column, in the gifts file
    gift_columns: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, info={"personal": False})
    #: how a gift names its supporter: "source_id" (the supporters file's id) or "email"
    gifts_by: Mapped[str] = mapped_column(sa.String(16), default="source_id", info={"personal": False})
    #: when it was saved first and last, and by whom (a staff e-mail, or "cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, info={"personal": False}
    )
    updated_by: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})


class ImportStatus(enum.StrEnum):
    #: uploaded (and perhaps previewed): nothing of it written yet
    UPLOADED = "uploaded"
    #: its rows are written
    IMPORTED = "imported"


class ImportRun(Base):
    """One upload of a supporters file (and optionally a gifts file), kept as uploaded so
    that the mapping page, the preview and the import read the same bytes; then what
    importing it did. A file imported from the command line keeps no copy."""

    __tablename__ = "import_run"

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: when it was uploaded, and by whom (a staff account, or "cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, info={"personal": False})
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"), info={"personal": False})
    uploaded_by: Mapped[str] = mapped_column(sa.String(320), info={"personal": True})
    #: the supporters file: its name, SHA-256 and bytes (personal: names, addresses)
    file_name: Mapped[str] = mapped_column(sa.String(255), info={"personal": True})
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True, info={"personal": False})
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, info={"personal": True})
    #: the gifts file, when there is one
    gifts_file_name: Mapped[str | None] = mapped_column(sa.String(255), info={"personal": True})
    gifts_sha256: Mapped[str | None] = mapped_column(sa.String(64), info={"personal": False})
    gifts_content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, info={"personal": True})
    #: the mapping (source) it is read with; chosen after the upload
    mapping_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_mapping.id"), info={"personal": False})
    status: Mapped[ImportStatus] = mapped_column(
        enum_column(ImportStatus, "import_status"), default=ImportStatus.UPLOADED, info={"personal": False}
    )
    #: when it was imported, and by whom
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), info={"personal": False})
    imported_by: Mapped[str | None] = mapped_column(sa.String(320), info={"personal": True})
    #: what the import did: rows per outcome, supporters and gifts ({"supporters": {"new": 3, …}, …})
    counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, info={"personal": False})

    mapping: Mapped[ImportMapping | None] = relationship()


class ImportedRow(Base):
    """One row of a source imported once: its identity within the source (a hash of its
    id column, or of the whole row when the source has no ids), a hash of what it said,
    and what it became. Unique per source, kind and identity, so a file imported twice,
    or two files that overlap, write each row once."""

    __tablename__ = "imported_row"
    __table_args__ = (
        sa.UniqueConstraint("mapping_id", "kind", "identity_key", name="uq_imported_row_identity"),
        sa.CheckConstraint("kind IN ('supporter', 'gift')", name="kind_known"),
        sa.Index("ix_imported_row_supporter_id", "supporter_id"),
        sa.Index("ix_imported_row_gift_id", "gift_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, info={"personal": False})
    #: the source it came from
    mapping_id: Mapped[int] = mapped_column(sa.ForeignKey("import_mapping.id"), info={"personal": False})
    #: "supporter" or "gift"
    kind: Mapped[str] = mapped_column(sa.String(10), info={"personal": False})
    #: SHA-256 of the row's source id ("id:…"), or of its values when it has none ("row:…")
    identity_key: Mapped[str] = mapped_column(sa.String(64), info={"personal": False})
    #: SHA-256 of the row's values as imported: the same id with other values is "changed"
    row_hash: Mapped[str] = mapped_column(sa.String(64), info={"personal": False})
    #: the import that wrote it
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("import_run.id"), info={"personal": False})
    #: the supporter it became or matched (a gift row: its gift's supporter), and the gift
    supporter_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("supporter.id", ondelete="SET NULL"), info={"personal": False}
    )
    gift_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gift.id", ondelete="SET NULL"), info={"personal": False})
