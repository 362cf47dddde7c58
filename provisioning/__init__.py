"""Provisioning: creating and changing what an account owns (numbers, scripts, extensions)
and the demo account, as the command line and the console both do it.

May import `store` and the pure `media.sip.digest` (for passwords' HA1 digests).
"""
