"""Runtime core: config, bus, adapters and their supervisor. Imports no other Posko package."""
