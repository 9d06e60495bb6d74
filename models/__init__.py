"""Data shapes of ticketflow.

Contracts (pure pydantic) cross Temporal and the HTTP API; tables (``table=True`` SQLModel
classes) are the read model in the database and never cross Temporal.
"""
