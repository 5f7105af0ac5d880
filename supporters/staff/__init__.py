"""Staff accounts and sessions, signing in, and the dashboard's staff and audit-log pages."""
