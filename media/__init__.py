"""The media engine: SIP signalling, RTP, DTMF, players, recorders, bridges and mixers.

It knows nothing of TwiML, accounts or billing and imports nothing from the rest of the
repository; it takes commands and emits events in the wire format of ``media.protocol``.
"""
