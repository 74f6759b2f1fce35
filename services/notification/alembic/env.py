"""Alembic environment of the notification service (see wbs_plumbing.migrations)."""
from wbs_plumbing.migrations import run_env

from notification.models import Base

run_env(Base.metadata)
