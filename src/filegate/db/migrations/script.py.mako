"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Owner: <who answers for this migration>
Expected result: <what the schema and data look like afterwards, with row counts if data moves>
Rollback: <what downgrade() does, and what it cannot restore>
Expected duration: <upgrade() as measured by `filegate db rehearse`, e.g. "0.4 s on 200,000 rows of files (PostgreSQL)">
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
from filegate.db.invariants import Probe

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}


def expected(probe: Probe) -> list[str]:
    """The expected result as checks; `filegate db rehearse` runs them after upgrade()."""
    return ["write the checks of the expected result (see filegate.db.invariants.Probe)"]
