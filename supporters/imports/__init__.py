"""Importing supporters and their gifts from another system (docs/dashboard.md)."""
