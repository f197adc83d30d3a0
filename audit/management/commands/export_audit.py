import datetime as dt
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.export import FORMATS, audit_export, export_range


def _moment(text: str):
    value = parse_datetime(text)
    if value is None and (day := parse_date(text)) is not None:
        value = dt.datetime(day.year, day.month, day.day)
    if value is None:
        raise CommandError(f"not a date or time: {text!r} (use ISO 8601, e.g. 2026-11-01)")
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


class Command(BaseCommand):
    help = (
        "Export audit events (--since inclusive, --until exclusive) as CSV or JSON lines, with "
        "a manifest (OUTPUT.manifest.json) for offline verification by "
        "scripts/verify_audit_export.py."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_moment)
        parser.add_argument("--until", type=_moment)
        parser.add_argument("--from", dest="from_id", type=int)
        parser.add_argument("--to", dest="to_id", type=int)
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="jsonl")
        parser.add_argument(
            "--output",
            type=Path,
            help="File to write (default: stdout; the manifest then goes to stderr).",
        )

    def handle(self, *args, since, until, from_id, to_id, fmt, output, **options):
        r = export_range(since=since, until=until, from_id=from_id, to_id=to_id)
        if output is None:
            manifest = audit_export(fmt=fmt, r=r, out=sys.stdout.buffer)
            sys.stdout.buffer.flush()
            self.stderr.write(json.dumps(manifest, indent=2))
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("wb") as out:
            manifest = audit_export(fmt=fmt, r=r, out=out)
        manifest["file"] = output.name
        manifest_path = output.with_name(output.name + ".manifest.json")
        manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
        self.stdout.write(
            f"{manifest['count']} events (#{manifest['from_id']} to #{manifest['to_id']}) "
            f"written to {output}; manifest {manifest_path}"
        )
