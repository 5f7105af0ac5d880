"""E-mail: the outbox and its worker, and what is queued into it: receipts, newsletter confirmations."""
