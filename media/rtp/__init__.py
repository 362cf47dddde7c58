"""RTP (RFC 3550): packets, sessions, jitter buffer, G.711, RFC 4733 events, in-band DTMF.

The socket-free core: wire structures with ``parse()``/``serialize()`` (`packet`,
`rtcp`, `telephone_event`), wrap-around arithmetic (`sequence`), G.711 tables (`g711`),
the jitter buffer (`jitterbuffer`), RFC 4733 digit reception (`telephone_event`) and the
in-band detector (`dtmf_detector`). None of them reads a clock or touches a socket:
arrival times and "now" are passed in. Sessions and transports, when added here, are the
imperative shell around them.

The per-packet state of every stream lives in one table of arrays (`table`) and is
updated by numba-compiled functions (`jitterbuffer`, `rtcp`); `batch` holds the compiled
passes the media plane runs over all legs per tick (the only place here that calls
epoll_wait, recv and send, through libc).

Imports: the standard library, numpy, numba and other modules of `media`; nothing from
the rest of the repository.
"""
