"""Plumbing shared by the WBS services: database access with a transactional outbox, reliable
event handlers, quiet HTTP entrypoints, sticky RPC and configuration. Never domain logic.

Importing it makes this process's AMQP connections read frames ahead (`wbs_plumbing.amqpreads`).
"""
from wbs_plumbing import amqpreads

amqpreads.install()
