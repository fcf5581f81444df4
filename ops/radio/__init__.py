"""The room's side of radio: the radio log, the gateways' view, operators' commands, the directory.

The adapters that speak to TNCs and transceivers live in ``radio/`` and import ``ops.core`` only;
this domain wires them into the hub (``setup``), writes what they log, and turns the console's
requests into their bus commands.
"""
