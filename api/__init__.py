"""The HTTP API agents, customers' front ends and integrations talk to."""
