"""The `ticketflow` command line."""
