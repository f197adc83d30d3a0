"""Content Security Policy violation reports, as browsers send them, read into one shape.

Two formats arrive at the report endpoint (monitoring.views.csp_report): the old `report-uri`
one (`application/csp-report`, `{"csp-report": {"document-uri": ..., ...}}`) and the Reporting
API's (`application/reports+json`, a list of `{"type": "csp-violation", "body": {...}}`).
Anyone can post anything here, so every value is clipped, URLs lose their query and fragment
(a signed link or a token must not reach the error log), and the group a report counts in is
made only of values from small fixed sets: the directive and the kind of thing blocked. A
flood of made-up reports therefore adds at most a few dozen groups (see csp_violation_record).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from csp.utils import DEFAULT_DIRECTIVES

VALUE_MAX = 500
# Reports read from one request; a browser sends one or a few.
REPORTS_PER_REQUEST_MAX = 20
_DIRECTIVES = frozenset(DEFAULT_DIRECTIVES) | {
    "script-src-elem",
    "script-src-attr",
    "style-src-elem",
    "style-src-attr",
    "trusted-types",
}
# Keywords browsers put in blocked-uri for what is not a URL.
_KEYWORDS = {"inline", "eval", "wasm-eval", "trusted-types-policy", "trusted-types-sink"}


class ReportError(ValueError):
    """The body is not a CSP report in either format."""


@dataclass(frozen=True)
class Violation:
    directive: str
    blocked: str
    blocked_kind: str
    document: str
    source_file: str
    line: str
    disposition: str
    sample: str

    @property
    def group_name(self) -> str:
        """The error group's type: from fixed sets only, so groups cannot be multiplied."""
        return f"CSPViolation[{self.directive} {self.blocked_kind}]"

    @property
    def document_path(self) -> str:
        return urlsplit(self.document).path[:255] if self.document else ""

    def describe(self) -> str:
        where = f" ({self.source_file}:{self.line})" if self.source_file else ""
        return f"{self.directive} blocked {self.blocked or 'a resource'} on {self.document}{where}"

    def as_payload(self) -> dict[str, str]:
        return {
            "directive": self.directive,
            "blocked": self.blocked,
            "document": self.document,
            "source_file": self.source_file,
            "line": self.line,
            "disposition": self.disposition,
            "sample": self.sample,
        }


def _text(value: Any) -> str:
    """A clipped string; a lone surrogate (valid JSON, not UTF-8) becomes "?"."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)[:VALUE_MAX].encode("utf-8", "replace").decode()


def _url(value: Any) -> str:
    """The URL without its query and fragment; keywords (inline, eval) and schemes as sent."""
    text = _text(value)
    if not text or "/" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:VALUE_MAX]


def _directive(body: dict[str, Any]) -> str:
    for key in ("effectiveDirective", "effective-directive", "violated-directive"):
        name = _text(body.get(key)).split(" ")[0].lower()
        if name:
            return name if name in _DIRECTIVES else "unknown"
    return "unknown"


def _kind(blocked: str, document: str) -> str:
    if blocked in _KEYWORDS:
        return blocked
    if not blocked:
        return "none"
    scheme = blocked.split(":", 1)[0].lower() if ":" in blocked else ""
    if scheme in ("data", "blob", "about", "chrome-extension", "moz-extension", "ws", "wss"):
        return "extension" if scheme.endswith("extension") else scheme
    if scheme in ("http", "https"):
        same = urlsplit(blocked).netloc == urlsplit(document).netloc
        return "self" if same else "external"
    return "other"


def _violation(body: dict[str, Any]) -> Violation:
    def first(*keys: str) -> Any:
        return next((body[k] for k in keys if body.get(k) not in (None, "")), None)

    document = _url(first("documentURL", "document-uri"))
    blocked = _url(first("blockedURL", "blocked-uri"))
    return Violation(
        directive=_directive(body),
        blocked=blocked,
        blocked_kind=_kind(blocked, document),
        document=document,
        source_file=_url(first("sourceFile", "source-file")),
        line=_text(first("lineNumber", "line-number")),
        disposition=_text(first("disposition")),
        sample=_text(first("sample", "script-sample"))[:100],
    )


# Refusals the policy makes on purpose, by the start of the blocked URL: not recorded, or every
# visit of the API's ReDoc page would open an error group and page someone. ReDoc's sidebar
# always shows Redocly's logo from their CDN; no page loads anything from outside the site.
EXPECTED_BLOCKED = ("https://cdn.redoc.ly/",)


def expected(violation: Violation) -> bool:
    return violation.blocked.startswith(EXPECTED_BLOCKED)


def parse_reports(data: Any) -> list[Violation]:
    """The violations in a decoded body of either format; ReportError when it holds none."""
    if isinstance(data, dict) and isinstance(data.get("csp-report"), dict):
        bodies = [data["csp-report"]]
    elif isinstance(data, list):
        bodies = [
            item["body"]
            for item in data[:REPORTS_PER_REQUEST_MAX]
            if isinstance(item, dict)
            and item.get("type") == "csp-violation"
            and isinstance(item.get("body"), dict)
        ]
    else:
        bodies = []
    if not bodies:
        raise ReportError("The body holds no CSP violation report.")
    return [_violation(body) for body in bodies]
