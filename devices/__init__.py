"""Device adapters, their health and their field simulators."""
