"""Alembic environment of the verification service (see wbs_plumbing.migrations)."""
from wbs_plumbing.migrations import run_env

from verification.models import Base

run_env(Base.metadata)
