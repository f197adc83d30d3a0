"""Staff's second factor (django-otp): TOTP devices, recovery codes, the admin's verify and
enrolment pages, and the admin's device reset. docs/security.md, "Two-factor authentication".
"""
