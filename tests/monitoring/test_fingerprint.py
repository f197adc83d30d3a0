import traceback
from pathlib import Path

import django
from django.conf import settings

from monitoring.fingerprint import (
    fingerprint,
    fingerprint_text,
    parse_traceback_text,
)
from tests.monitoring.helpers import caught, site_a, site_b

IN_APP = str(settings.BASE_DIR / "tests" / "monitoring" / "generated.py")
LIBRARY = str(Path(django.__file__).resolve().parents[1] / "lib.py")  # in site-packages


def raised_from(source: str, filename: str, func: str = "entry", message: str = "x"):
    """Compile `source` as if it lived in `filename`, call `func`, return what it raised."""
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return caught(namespace[func], message)


def test_same_call_site_with_another_message_is_one_group():
    first = fingerprint(caught(site_a, "invoice 17 failed"))
    second = fingerprint(caught(site_a, "invoice 9000 failed, amount 12.50"))
    assert first == second
    digest, culprit = first
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert culprit == "tests.monitoring.helpers.fail"


def test_moved_lines_keep_the_group():
    before = "def entry(m):\n    raise KeyError(m)\n"
    after = (
        "\n\n# a comment moves everything down\n\ndef entry(m):\n    n = m\n    raise KeyError(n)\n"
    )
    assert fingerprint(raised_from(before, IN_APP)) == fingerprint(raised_from(after, IN_APP))


def test_different_call_sites_are_different_groups():
    assert fingerprint(caught(site_a))[0] != fingerprint(caught(site_b))[0]


def test_different_exception_types_are_different_groups():
    source = "def entry(m):\n    raise {}(m)\n"
    key_error = raised_from(source.format("KeyError"), IN_APP)
    type_error = raised_from(source.format("TypeError"), IN_APP)
    assert fingerprint(key_error)[0] != fingerprint(type_error)[0]


def test_library_frames_do_not_change_the_group():
    # The same in-app entry point, failing in two versions of a library function.
    library_v1 = "def entry(m):\n    raise KeyError(m)\n"
    library_v2 = "def helper(m):\n    raise KeyError(m)\n\ndef entry(m):\n    helper(m)\n"
    app = "def entry(m):\n    lib(m)\n"
    groups = set()
    for library in (library_v1, library_v2):
        namespace: dict = {}
        exec(compile(library, LIBRARY, "exec"), namespace)
        app_ns: dict = {"lib": namespace["entry"]}
        exec(compile(app, IN_APP, "exec"), app_ns)
        groups.add(fingerprint(caught(app_ns["entry"], "m")))
    assert len(groups) == 1
    assert groups.pop()[1] == "tests.monitoring.generated.entry"


def test_without_in_app_frames_the_last_library_frames_count():
    one = raised_from("def entry(m):\n    raise KeyError(m)\n", LIBRARY)
    other = raised_from(
        "def entry(m):\n    inner(m)\n\ndef inner(m):\n    raise KeyError(m)\n", LIBRARY
    )
    # caught() is in-app, so compare the frames below it: build exceptions with no in-app frame.
    one.__traceback__ = one.__traceback__.tb_next
    other.__traceback__ = other.__traceback__.tb_next
    digest_one, culprit_one = fingerprint(one)
    digest_other, culprit_other = fingerprint(other)
    assert digest_one != digest_other
    assert culprit_one == "lib.entry" and culprit_other == "lib.inner"


def test_exception_without_traceback_groups_by_type():
    assert fingerprint(ValueError("a")) == fingerprint(ValueError("b"))
    assert fingerprint(ValueError("a"))[0] != fingerprint(KeyError("a"))[0]


def test_django_q_result_text_gives_the_same_group_as_the_live_exception():
    exc = caught(site_a, "boom 42")
    text = f"{exc} : {''.join(traceback.format_exception(exc))}"
    parsed = parse_traceback_text(text, default_type="TaskFailed")
    assert parsed.exception_type == "ValueError"
    assert parsed.message == "boom 42"
    assert fingerprint_text(parsed) == fingerprint(exc)


def test_chained_traceback_text_reads_the_final_exception():
    def outer():
        try:
            site_a("inner")
        except ValueError as exc:
            raise RuntimeError("outer\nsecond line") from exc

    exc = caught(outer)
    text = "".join(traceback.format_exception(exc))
    parsed = parse_traceback_text(text, default_type="TaskFailed")
    assert parsed.exception_type == "RuntimeError"
    assert parsed.message == "outer\nsecond line"
    assert fingerprint_text(parsed) == fingerprint(exc)


def test_text_without_traceback_uses_the_default_type():
    parsed = parse_traceback_text(
        "Task exceeded maximum timeout value (5 seconds)", default_type="TaskFailed"
    )
    assert parsed.exception_type == "TaskFailed" and parsed.frames == []
    assert parsed.message.startswith("Task exceeded")
