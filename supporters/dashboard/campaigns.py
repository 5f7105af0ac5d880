"""Dashboard: campaigns pages (routes are added by the feature's slice)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
