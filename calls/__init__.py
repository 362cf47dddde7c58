"""Call control: calls and their legs, the exactly-once application of media events,
and the commands sent back to media nodes. (Bridges, conferences, in-call options and
the #-transfer-to-conference flow join here.)

May import `store` and `media.protocol`; never `interpreter`, `voicexml` or `worker`.
"""
