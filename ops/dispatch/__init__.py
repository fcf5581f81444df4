"""Dispatch: orders to field units through a durable outbox, acknowledgements and escalation."""
