"""Intake channels that are not web forms: panic buttons, email and the external connector."""
