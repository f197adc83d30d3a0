"""`manage.py role_matrix [--update FILE]`: the role matrix (config/rolematrix.py) as Markdown
tables, printed, or written between the markers of FILE (docs/security.md)."""

import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config import rolematrix as rm

START, END = "<!-- role-matrix:start -->", "<!-- role-matrix:end -->"
HEADS = ("clerk", "approver", "auditor", "operator", "admin", "anonymous")
YES, NO = "yes", "-"


def _cells(roles: frozenset[str], columns: tuple[str, ...] = rm.COLUMNS) -> list[str]:
    return [YES if role in roles else NO for role in columns]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _admin_cell(model: rm.AdminModel, role: str) -> str:
    can = [
        ("view", model.view),
        ("add", model.add),
        ("change", model.change),
        ("delete", model.delete),
    ]
    held = [name for name, roles in can if role in roles]
    return ", ".join(held) or NO


def render() -> str:
    lines = ["### API", ""]
    lines += _table(
        ["method", "path", *HEADS, "rule"],
        [[e.method, f"`{e.path}`", *_cells(e.roles), e.rule] for e in rm.API],
    )
    lines += ["", "### Admin pages by model", ""]
    lines += _table(
        ["model", *HEADS[:5]],
        [[f"`{m.model}`", *(_admin_cell(m, r) for r in rm.ROLES)] for m in rm.ADMIN_MODELS],
    )
    lines += ["", "### Admin actions", ""]
    lines += _table(
        ["model", "action", *HEADS[:5]],
        [
            [f"`{m.model}`", f"`{name}`", *_cells(roles, rm.ROLES)]
            for m in rm.ADMIN_MODELS
            for name, roles in m.actions.items()
        ],
    )
    lines += ["", "### Other admin pages", ""]
    lines += _table(
        ["URL name", *HEADS, "rule"],
        [[f"`{v.name}`", *_cells(v.roles), v.rule] for v in rm.ADMIN_VIEWS],
    )
    lines += ["", "### Other URLs", ""]
    lines += _table(
        ["method", "route", *HEADS, "rule"],
        [[e.method, f"`{e.path}`", *_cells(e.roles), e.rule] for e in rm.OTHER],
    )
    lines += ["", "### Management commands (run on the server: whose job each is)", ""]
    lines += _table(
        ["command", *HEADS[:5], "what"],
        [[f"`{c.name}`", *_cells(c.roles, rm.ROLES), c.what] for c in rm.COMMANDS],
    )
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise CommandError(f"the file has no {START} ... {END} section")
    return pattern.sub(lambda _: f"{START}\n{section}{END}", text)


class Command(BaseCommand):
    help = "Print the role matrix as Markdown, or write it into a file's marked section."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--update", metavar="FILE", help="rewrite FILE's marked section")

    def handle(self, *args: Any, **options: Any) -> None:
        section = render()
        if not options["update"]:
            self.stdout.write(section, ending="")
            return
        path = Path(options["update"])
        path.write_text(replace_section(path.read_text(), section))
        self.stdout.write(f"wrote the role matrix into {path}")
