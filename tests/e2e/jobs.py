"""Task functions that the end-to-end tests enqueue for a real qcluster."""


def always_fails(reason: str) -> None:
    raise RuntimeError(f"this job always fails: {reason}")
