"""The demo content `make run` seeds, and the `flask demo` commands."""
