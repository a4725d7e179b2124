"""The hub's logic, between thin HTTP handlers and the store (no SQL here, no HTTP)."""
