-- Signals between the calls of one script: a <Dial> leg tells its parent that it
-- answered or ended. Written in the sender's transaction, applied in order and once
-- under the receiver's lock (like media events, but numbered by the database).
-- depends: 0002.extensions

CREATE TABLE call_signals (
    id          bigserial PRIMARY KEY,
    call_sid    text NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz
);
CREATE INDEX call_signals_pending ON call_signals (call_sid, id) WHERE applied_at IS NULL;
