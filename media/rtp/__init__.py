"""RTP (RFC 3550): packets, sessions, jitter buffer, G.711, RFC 4733 events, in-band DTMF.

The socket-free core: wire structures with ``parse()``/``serialize()`` (`packet`,
`rtcp`, `telephone_event`), wrap-around arithmetic (`sequence`), G.711 tables (`g711`),
the jitter buffer (`jitterbuffer`), RFC 4733 digit reception (`telephone_event`) and the
in-band detector (`dtmf_detector`). None of them reads a clock or touches a socket:
arrival times and "now" are passed in. Sessions and transports, when added here, are the
imperative shell around them.

Imports: the standard library, numpy and other modules of `media`; nothing from the rest
of the repository.
"""
