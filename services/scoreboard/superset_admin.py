"""Create the scoreboard's admin in Superset, or reset its password to the current one.

Runs with Superset's own interpreter (not proctor's); the user name and password come
from the environment (PROCTOR_SUPERSET_USER, PROCTOR_SUPERSET_PASSWORD) so the password
never shows on a command line.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    user = os.environ["PROCTOR_SUPERSET_USER"]
    password = os.environ["PROCTOR_SUPERSET_PASSWORD"]
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.find_role("Admin")
        if role is None:
            print("the Admin role is missing: run `superset init` first", file=sys.stderr)
            return 1
        existing = sm.find_user(username=user)
        if existing is None:
            created = sm.add_user(
                user, "proctor", "admin", f"{user}@localhost.invalid", role, password=password
            )
            if not created:
                print(f"could not create user {user!r}", file=sys.stderr)
                return 1
            print(f"created admin {user!r}")
        else:
            sm.reset_password(existing.id, password)
            print(f"reset the password of {user!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
