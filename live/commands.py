"""Operator commands of the live process, acting through its database: ``status``, ``halt`` and ``resume``.

The live loop reads the ``control`` row before every bar and places no order while it is halted (the spec's
human override, 2.4). ``halt`` and ``resume`` are recorded with who and why, and raise a P0 / P2 alert. The
database is ``--db URL``, else ``DATABASE_URL``, else ``sqlite:///./trading_bot.db``; it is migrated to the
current schema first (idempotent).
"""
from __future__ import annotations

import getpass


def _repo(url):
    from live.db.migrate import upgrade
    from live.db.repo import Repository
    from live.db.session import make_engine

    engine = make_engine(url)
    upgrade(engine)
    return Repository(engine)


def _print_status(st, out) -> None:
    state = "HALTED" if st.halted else "running (not halted)"
    print(f"state: {state}", file=out)
    if st.reason or st.updated_by:
        when = f" at {st.updated_at:%Y-%m-%d %H:%M:%S} UTC" if st.updated_at else ""
        print(f"last change: by {st.updated_by}{when}" + (f": {st.reason}" if st.reason else ""), file=out)
    print(f"orders not final: {st.open_orders}", file=out)
    print(f"unacknowledged alerts: {st.unacked_alerts}", file=out)


def cmd_status(args) -> int:
    import sys

    _print_status(_repo(args.db).status(), sys.stdout)
    return 0


def cmd_halt(args) -> int:
    import sys

    st = _repo(args.db).set_halt(args.reason, updated_by=args.by or getpass.getuser())
    _print_status(st, sys.stdout)
    return 0


def cmd_resume(args) -> int:
    import sys

    st = _repo(args.db).clear_halt(updated_by=args.by or getpass.getuser(), reason=args.reason)
    _print_status(st, sys.stdout)
    return 0


def add_commands(sub) -> None:
    for name, func, text in (
        ("status", cmd_status, "show whether the live process is halted, open orders and unacknowledged alerts"),
        ("halt", cmd_halt, "emergency stop: the live process places no order until 'resume' (human override)"),
        ("resume", cmd_resume, "clear a halt so the live process trades again"),
    ):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("--db", metavar="URL", help="database URL (default $DATABASE_URL or "
                       "sqlite:///./trading_bot.db)")
        if name != "status":
            p.add_argument("--by", help="who (default: the current user)")
        if name == "halt":
            p.add_argument("--reason", required=True, help="why, recorded with the halt and its P0 alert")
        elif name == "resume":
            p.add_argument("--reason", help="why, recorded with the resume")
        p.set_defaults(func=func)
