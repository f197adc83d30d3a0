#!/usr/bin/env bash
# Known vulnerabilities in the installed environment (make audit-deps, part of make test).
#
# pip-audit audits the packages installed in the venv (--local), not the project itself
# (--skip-editable). Exit status:
#   1  a known vulnerability was found (listed), or pip-audit failed for another reason;
#   0  none found, or the look-up could not be made (no network, the service refused, or
#      the index answered nothing for the packages): then a warning says so and how many
#      packages went unaudited.
# Variables: PIP_AUDIT (the pip-audit to run, default .venv/bin/pip-audit), PYTHON (reads
# its report, default .venv/bin/python), PIP_AUDIT_ARGS (more options, e.g. "-s osv" or
# "--ignore-vuln GHSA-xxxx" for an accepted finding, with a comment saying why).
set -u
PIP_AUDIT=${PIP_AUDIT:-.venv/bin/pip-audit}
PYTHON=${PYTHON:-.venv/bin/python}
report=$(mktemp)
errors=$(mktemp)
trap 'rm -f "$report" "$errors"' EXIT

# shellcheck disable=SC2086 # PIP_AUDIT_ARGS is a list of options
"$PIP_AUDIT" --local --skip-editable --progress-spinner off --format json --output "$report" \
	${PIP_AUDIT_ARGS:-} 2>"$errors"
status=$?

if [ ! -s "$report" ]; then
	# No report: pip-audit stopped before auditing. A connection failure is a look-up that
	# could not be made; anything else (a bad option, a broken environment) is a failure.
	if grep -qiE "network may be blocking|connection|timed out|resolve|unreachable" "$errors"; then
		echo "warning: audit-deps could not look up known vulnerabilities (no network?); not failing:"
		tail -n 3 "$errors" | sed 's/^/  /'
		exit 0
	fi
	echo "audit-deps: pip-audit failed (exit $status):"
	cat "$errors"
	exit 1
fi

"$PYTHON" - "$report" <<'PY'
import json
import sys

dependencies = json.load(open(sys.argv[1]))["dependencies"]
vulnerable = [d for d in dependencies if d.get("vulns")]
skipped = [d for d in dependencies if "skip_reason" in d]
for d in vulnerable:
    for v in d["vulns"]:
        fixed = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {fixed})")
if skipped:
    print(
        f"warning: audit-deps could not look up {len(skipped)} of {len(dependencies)} packages "
        f"(the vulnerability service or index did not answer for them), e.g. "
        f"{skipped[0]['skip_reason']}"
    )
if vulnerable:
    count = sum(len(d["vulns"]) for d in vulnerable)
    print(f"audit-deps: {count} known vulnerabilities in {len(vulnerable)} packages")
    sys.exit(1)
audited = len(dependencies) - len(skipped)
print(f"audit-deps: no known vulnerabilities in the {audited} packages looked up")
PY
