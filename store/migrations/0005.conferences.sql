-- What the conference feature adds to the conference tables of 0003: the subscriber's
-- leg the conference belongs to, its controller, and an ordered event for every step.
-- depends: 0003.billing 0004.call_signals

ALTER TABLE conferences
    ADD COLUMN origin_call_sid     text REFERENCES calls (sid) ON DELETE SET NULL,
    ADD COLUMN controller_call_sid text REFERENCES calls (sid) ON DELETE SET NULL,
    ADD COLUMN next_event_seq      integer NOT NULL DEFAULT 1;

CREATE TABLE conference_events (
    conference_sid  text NOT NULL REFERENCES conferences (sid) ON DELETE CASCADE,
    seq             integer NOT NULL,
    kind            text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conference_sid, seq)
);
