"""E-mail: the outbox and its worker, and the receipts queued into it."""
