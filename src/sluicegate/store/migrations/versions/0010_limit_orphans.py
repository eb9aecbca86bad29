"""Usage limits of deleted subjects: removed, once.

Revision ID: 0010_limit_orphans
Revises: 0009_dashboard_sessions
Create Date: 2026-12-04

Until now deleting a workspace or a catalog provider left its limit_settings row and its saved budget
usage (limit_usage) behind: out of reach of the admin API and the CLI (an unknown subject is a 404), and
inherited by the next provider given the same slug. Deletions now take them along in their transaction
(store/limit_tables.delete_subject_limits); this removes what earlier ones left. An API key is never
deleted (Portkey's DELETE revokes it, and its row stays), so its limits stay unless its row is gone.
Data only, no schema change; the downgrade has nothing to restore. A frozen snapshot written by hand, like
the others: the tables are named here, not imported.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010_limit_orphans"
down_revision: Union[str, Sequence[str], None] = "0009_dashboard_sessions"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_LIMITS_STATE_ID = 3
_settings = sa.table("limit_settings", sa.column("subject_kind"), sa.column("subject_id"))
_usage = sa.table("limit_usage", sa.column("counter"))
# Where each kind's subject id lives.
_SUBJECTS = {
    "key": sa.table("api_keys", sa.column("id")).c.id,
    "workspace": sa.table("workspaces", sa.column("id")).c.id,
    "provider": sa.table("providers", sa.column("slug")).c.slug,
}


def upgrade() -> None:
    conn = op.get_bind()
    settings = {(row.subject_kind, row.subject_id) for row in conn.execute(sa.select(_settings))}
    # A counter is "kind:id:…" (limits/checks.counter_key); a handful of rows per subject with a budget.
    counters = {row.counter: tuple(row.counter.split(":", 2)[:2]) for row in conn.execute(sa.select(_usage))}
    gone = {subject for subject in settings | set(counters.values()) if not _exists(conn, subject)}
    for kind, subject_id in gone & settings:
        conn.execute(sa.delete(_settings).where(_settings.c.subject_kind == kind,
                                                _settings.c.subject_id == subject_id))
    for counter, subject in counters.items():
        if subject in gone:
            conn.execute(sa.delete(_usage).where(_usage.c.counter == counter))
    if gone:  # running servers of the previous version reload their limits
        conn.execute(sa.text("UPDATE catalog_state SET version = version + 1 WHERE id = :id"),
                     {"id": _LIMITS_STATE_ID})


def _exists(conn: sa.Connection, subject: tuple[str, ...]) -> bool:
    column = _SUBJECTS.get(subject[0]) if len(subject) == 2 else None
    if column is None:  # not a counter of ours: leave it alone
        return True
    return conn.execute(sa.select(column).where(column == subject[1])).first() is not None


def downgrade() -> None:
    pass
