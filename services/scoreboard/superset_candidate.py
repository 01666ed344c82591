"""Give one candidate a Superset login that sees only their own rows (row-level security).

Runs with Superset's own interpreter (not proctor's), like ``superset_admin.py``. From the
environment: PROCTOR_SUPERSET_CANDIDATE (the candidate id), its password
(PROCTOR_SUPERSET_CANDIDATE_PASSWORD) and the datasets of the candidate's page
(PROCTOR_SUPERSET_CANDIDATE_TABLES, comma separated). Makes, or brings up to date: a role
``candidate:<id>`` with read access to those datasets, a user named after the candidate
with that role and Gamma, and a row-level security rule ``candidate_id = '<id>'`` on the
datasets for the role. Superset adds the rule to every query such a user runs.
"""

from __future__ import annotations

import os
import re
import sys

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def main() -> int:
    candidate = os.environ["PROCTOR_SUPERSET_CANDIDATE"]
    password = os.environ["PROCTOR_SUPERSET_CANDIDATE_PASSWORD"]
    tables = [t for t in os.environ["PROCTOR_SUPERSET_CANDIDATE_TABLES"].split(",") if t]
    if not _ID.match(candidate):
        print(f"candidate id {candidate!r}: letters, digits and _.@- only", file=sys.stderr)
        return 2
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db
        from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
        from superset.utils.core import RowLevelSecurityFilterType

        sm = app.appbuilder.sm
        gamma = sm.find_role("Gamma")
        if gamma is None:
            print("the Gamma role is missing: run `superset init` first", file=sys.stderr)
            return 1
        datasets = db.session.query(SqlaTable).filter(SqlaTable.table_name.in_(tables)).all()
        missing = set(tables) - {d.table_name for d in datasets}
        if missing:
            print(f"datasets not imported yet: {sorted(missing)}", file=sys.stderr)
            return 1
        role_name = f"candidate:{candidate}"
        role = sm.find_role(role_name) or sm.add_role(role_name)
        for ds in datasets:
            pv = sm.add_permission_view_menu("datasource_access", ds.get_perm())
            sm.add_permission_role(role, pv)
        user = sm.find_user(username=candidate)
        if user is None:
            user = sm.add_user(
                candidate,
                candidate,
                "candidate",
                f"{candidate}@candidate.invalid",
                [gamma, role],
                password=password,
            )
            if not user:
                print(f"could not create user {candidate!r}", file=sys.stderr)
                return 1
        else:
            user.roles = [gamma, role]
            sm.update_user(user)
            sm.reset_password(user.id, password)
        name = f"candidate:{candidate} sees only their rows"
        rule = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
        if rule is None:
            rule = RowLevelSecurityFilter(name=name)
            db.session.add(rule)
        rule.filter_type = RowLevelSecurityFilterType.REGULAR
        rule.clause = f"candidate_id = '{candidate}'"
        rule.description = "Made by proctor: a candidate's login sees only their own page."
        rule.tables = datasets
        rule.roles = [role]
        db.session.commit()
        print(f"candidate {candidate!r}: role {role_name}, {len(datasets)} datasets, RLS rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
