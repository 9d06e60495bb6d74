"""Temporal activities: every external call of ticketflow lives here, in classes that hold
their clients. Import the module you need; this package imports nothing on its own so that
workflow code can refer to activity names without pulling in drivers."""
