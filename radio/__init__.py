"""Handy-talkie radio gateways (KISS TNC, AX.25/APRS)."""
