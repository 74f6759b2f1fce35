"""Plumbing shared by the WBS services: database access with a transactional outbox, reliable
event handlers, quiet HTTP entrypoints, sticky RPC and configuration. Never domain logic."""
