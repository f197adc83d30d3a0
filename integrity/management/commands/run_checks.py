import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config import registry
from integrity import services
from integrity.models import CheckRun

# Exit status 1 when a check ends at or above --fail-on (the design's "findings at or above").
FAIL_ON = {"warning": {"warn", "fail", "error"}, "error": {"fail", "error"}}


class Command(BaseCommand):
    help = (
        "Run the registered integrity and financial checks, store the run and print findings. "
        "Exit status: 0 all at or below --fail-on, 1 a check warned/failed/errored at or above "
        "it, 2 bad arguments."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--tag",
            action="append",
            default=[],
            help="Run checks with this tag (repeatable): integrity, finance, audit.",
        )
        parser.add_argument(
            "--check", action="append", default=[], help="Run this check (repeatable)."
        )
        parser.add_argument("--fail-on", choices=sorted(FAIL_ON), default="error")
        parser.add_argument("--json", action="store_true", help="Print the run as JSON.")
        parser.add_argument("--list", action="store_true", help="List the checks and exit.")
        parser.add_argument("--as", dest="username", help="Record the run as this user.")

    def handle(self, *args, **options):
        if options["list"]:
            for check in registry.all_checks().values():
                self.stdout.write(
                    f"{check.name:40} {check.tag:10} {check.severity:9} {check.description}"
                )
            return
        actor = None
        if options["username"]:
            try:
                actor = get_user_model().objects.get(username=options["username"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {options['username']!r}.", returncode=2) from None
        try:
            run = services.checks_run(
                trigger=CheckRun.Trigger.COMMAND,
                actor=actor,
                tags=options["tag"],
                checks=options["check"],
            )
        except services.CheckRunError as exc:
            raise CommandError(exc.message, returncode=2) from None
        results = list(run.results.order_by("check_name"))
        findings = list(run.findings.order_by("check_name", "id"))
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(run, results, findings), indent=2, default=str))
        else:
            self._print(run, results, findings)
        bad = [r for r in results if r.status in FAIL_ON[options["fail_on"]]]
        if bad:
            raise CommandError(
                f"{len(bad)} check(s) at or above {options['fail_on']}: "
                + ", ".join(f"{r.check_name} ({r.status})" for r in bad),
                returncode=1,
            )

    def _print(self, run, results, findings):
        by_check: dict[str, list] = {}
        for f in findings:
            by_check.setdefault(f.check_name, []).append(f)
        for r in results:
            style = {"pass": self.style.SUCCESS, "warn": self.style.WARNING}.get(
                r.status, self.style.ERROR
            )
            self.stdout.write(
                style(f"{r.status.upper():5}") + f" {r.check_name} "
                f"({r.failing_count} failing, {r.duration_ms} ms)"
            )
            if r.error:
                self.stdout.write(f"      error: {r.error}")
            for f in by_check.get(r.check_name, []):
                mark = " [explained]" if f.explanation_id else ""
                self.stdout.write(f"      - {f.severity}: {f.message}{mark}")
                if f.sample:
                    self.stdout.write(f"        sample: {', '.join(map(str, f.sample))}")
        self.stdout.write(
            f"Check run #{run.pk}: {run.status} in {run.duration_ms} ms {run.summary}"
        )


def _as_json(run, results, findings) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "duration_ms": run.duration_ms,
        "summary": run.summary,
        "results": [
            {
                "check": r.check_name,
                "tag": r.tag,
                "status": r.status,
                "failing_count": r.failing_count,
                "explained_count": r.explained_count,
                "duration_ms": r.duration_ms,
                "error": r.error,
            }
            for r in results
        ],
        "findings": [
            {
                "id": f.pk,
                "check": f.check_name,
                "severity": f.severity,
                "message": f.message,
                "count": f.count,
                "object_type": f.object_type,
                "object_id": f.object_id,
                "sample": f.sample,
                "details": f.details,
                "explained": bool(f.explanation_id),
            }
            for f in findings
        ],
    }
