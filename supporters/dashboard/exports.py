"""Dashboard: exports pages (routes are added by the feature's slice)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("exports", __name__, url_prefix="/exports")
