"""Clients for the systems around ticketflow: the ERP, carriers, another helpdesk and chat
platforms.

``interfaces`` says what ticketflow needs from each kind of system, ``registry`` picks an
implementation by name from settings, ``errors`` is the one error hierarchy they all raise,
``signing`` checks the chat platform's inbound webhook. Every client is synchronous and
thread-safe, meant for sync activities on a thread pool, and never retries by itself.
"""
