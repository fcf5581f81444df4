"""Shifts: the room's shift schedule and the clock that keeps units' duty in step with it."""
