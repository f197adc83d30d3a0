"""The alerts app's errors and their stable codes."""

from config.errors import DomainError


class AlertNotOpen(DomainError):
    code = "alert.not_open"


class AckLinkInvalid(DomainError):
    code = "alert.link_invalid"
    http_status = 404


class AckLinkGone(DomainError):
    """A genuine link that no longer acknowledges anything (`alert.link_expired`,
    `alert.link_used`, `alert.link_superseded`)."""

    code = "alert.link_gone"
    http_status = 410


class SilenceInvalid(DomainError):
    code = "silence.invalid"


class SilenceSelfApproval(DomainError):
    code = "silence.self_approval"


class DeliveryError(Exception):
    """A channel could not deliver. Transient ones are retried with backoff; permanent ones (a
    refused recipient, a refused URL) go to the target's fallback at once.

    Not a DomainError: a dead letter's retry that meets one is worth trying again later.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DeliveryExhausted(DeliveryError):
    """A delivery failed for good with no fallback to take it: its task fails with this, and
    the task's failure path keeps it as a dead letter."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class AckLinkUsed(AckLinkGone):
    code = "alert.link_used"


class AckLinkSuperseded(AckLinkGone):
    """The alert was acknowledged and fired again since the link was sent."""

    code = "alert.link_superseded"


class AckLinkExpired(AckLinkGone):
    code = "alert.link_expired"
