"""Stand-ins for the systems around ticketflow: a SOAP ERP, a carrier's tracking API, an
older helpdesk and a chat platform, with seeded demo data and run-time fault injection.

Start them with ``python -m sandbox`` or, in tests, ``sandbox.run.start_sandbox()``.
"""
