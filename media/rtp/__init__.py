"""RTP (RFC 3550): packets, sessions, jitter buffer, G.711, RFC 4733 events, in-band DTMF."""
