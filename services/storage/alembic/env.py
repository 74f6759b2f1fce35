"""Alembic environment of the storage service (see wbs_plumbing.migrations)."""
from wbs_plumbing.migrations import run_env

from storage.models import Base

run_env(Base.metadata)
