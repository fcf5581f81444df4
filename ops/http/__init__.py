"""Web primitives shared by the hub's API and the wall.

Route declarations, roles, errors, sessions, the live feed, the origin check. This package
imports neither ``ops.web`` nor ``videowall``; both import it.
"""
