#!/bin/sh
# The release step of a deployment: run once per release, before the new web and worker
# processes start (the `release` process of Procfile.production; `make serve` runs it too).
# Where the release step runs in a container of its own, collectstatic belongs in the build
# instead: WhiteNoise serves the files from each web host's own STATIC_ROOT.
set -eu
python=.venv/bin/python
[ -x "$python" ] || python=python
"$python" manage.py migrate --noinput
"$python" manage.py sync_schedules
"$python" manage.py collectstatic --noinput
