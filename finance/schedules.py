"""The ledger's scheduled jobs. Hourly and daily financial checks arrive with the check
framework (integrity); nothing in the ledger itself needs a clock yet."""

SCHEDULES: list = []
