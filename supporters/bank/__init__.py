"""The bank statement: uploaded or imported by a cron, matched to pledges and supporters,
and the lines left for staff (formats, matching, imports, queries, the staff pages, the CLI)."""
