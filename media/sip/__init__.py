"""SIP (RFC 3261): messages, transport, transactions, dialogs, digest auth, registrar, SDP."""
