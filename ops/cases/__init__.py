"""Cases: every report from every channel, routed to an agency, watched by an SLA clock."""
