"""The staff dashboard: one access check guards the whole blueprint."""
