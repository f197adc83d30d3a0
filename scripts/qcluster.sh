#!/bin/sh
# Runs the django-q2 cluster and turns SIGTERM into SIGINT for it.
# django-q2 can hang on SIGTERM (django-q2 issue #346: its signal handler stops the cluster
# from signal context); on SIGINT it stops cleanly in about a second. honcho, systemd and
# most supervisors send SIGTERM.
# The project's .venv when there is one (make run), else the python on the PATH (a deployment).
python=.venv/bin/python
[ -x "$python" ] || python=python
# Its own process group, so a signal sent to ours (as honcho does) reaches only this script.
setsid "$python" manage.py qcluster "$@" &
child=$!
trap 'kill -INT "$child" 2>/dev/null' TERM INT
wait "$child"
status=$?
# wait returns early when a trapped signal arrives: wait again for the real exit.
kill -0 "$child" 2>/dev/null && wait "$child" && status=$?
exit "$status"
