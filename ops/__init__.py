"""The hub and the operations domain."""
