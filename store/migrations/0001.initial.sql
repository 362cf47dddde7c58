-- Accounts, their numbers and script bins; calls with their inbox of media events,
-- outbox of media commands and ordered event log; recordings.
--
-- Later work adds conferences and participants (referencing calls), extensions and
-- registrations and in-call options (referencing accounts), rate decks and charges
-- (a charge per call leg): every leg of every call, bridged or conferenced, is a row
-- in `calls`, linked to the call that created it through `parent_call_sid`.
-- depends:

CREATE TABLE accounts (
    sid               text PRIMARY KEY CHECK (sid ~ '^AC[0-9a-f]{32}$'),
    friendly_name     text NOT NULL,
    status            text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'suspended', 'closed')),
    -- SHA-256 of the auth token, to authenticate API requests without storing it.
    auth_token_hash   text NOT NULL,
    -- The token sealed with the platform's secret key: webhooks are signed with it.
    auth_token_sealed bytea NOT NULL,
    country           text NOT NULL DEFAULT 'US' CHECK (country ~ '^[A-Z]{2}$'),
    settings          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE phone_numbers (
    sid                    text PRIMARY KEY CHECK (sid ~ '^PN[0-9a-f]{32}$'),
    account_sid            text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    number                 text NOT NULL UNIQUE CHECK (number ~ '^\+?[0-9]{2,20}$'),
    friendly_name          text NOT NULL DEFAULT '',
    voice_url              text,
    voice_method           text NOT NULL DEFAULT 'POST' CHECK (voice_method IN ('GET', 'POST')),
    voice_fallback_url     text,
    voice_fallback_method  text NOT NULL DEFAULT 'POST'
                           CHECK (voice_fallback_method IN ('GET', 'POST')),
    status_callback        text,
    status_callback_method text NOT NULL DEFAULT 'POST'
                           CHECK (status_callback_method IN ('GET', 'POST')),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX phone_numbers_account ON phone_numbers (account_sid);

CREATE TABLE script_bins (
    sid           text PRIMARY KEY CHECK (sid ~ '^EH[0-9a-f]{32}$'),
    account_sid   text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    friendly_name text NOT NULL,
    language      text NOT NULL DEFAULT 'twiml' CHECK (language IN ('twiml', 'voicexml')),
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_sid, friendly_name)
);

CREATE TABLE calls (
    sid              text PRIMARY KEY CHECK (sid ~ '^CA[0-9a-f]{32}$'),
    account_sid      text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    parent_call_sid  text REFERENCES calls (sid) ON DELETE SET NULL,
    direction        text NOT NULL
                     CHECK (direction IN ('inbound', 'outbound-api', 'outbound-dial')),
    from_number      text NOT NULL,
    to_number        text NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'ringing', 'in-progress', 'completed',
                                       'busy', 'failed', 'no-answer', 'canceled')),
    phone_number_sid text REFERENCES phone_numbers (sid) ON DELETE SET NULL,
    media_node       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    answered_at      timestamptz,
    ended_at         timestamptz,
    end_reason       text,
    -- Exactly-once application of media events and numbering of what we send back.
    last_event_seq   integer NOT NULL DEFAULT 0 CHECK (last_event_seq >= 0),
    next_command_seq integer NOT NULL DEFAULT 1 CHECK (next_command_seq >= 1),
    next_log_seq     integer NOT NULL DEFAULT 1 CHECK (next_log_seq >= 1),
    -- The script's execution state (document, position, what it waits for).
    script           jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK (ended_at IS NULL OR ended_at >= created_at)
);
CREATE INDEX calls_account_created ON calls (account_sid, created_at DESC);
CREATE INDEX calls_parent ON calls (parent_call_sid) WHERE parent_call_sid IS NOT NULL;
CREATE INDEX calls_live ON calls (account_sid) WHERE ended_at IS NULL;

-- Events from media nodes, stored before they are applied: a gap in `seq` waits for
-- the missing event, a duplicate is absorbed by the primary key. No foreign key: the
-- first event of an incoming call arrives before the call row exists.
CREATE TABLE media_events (
    call_sid    text NOT NULL,
    seq         integer NOT NULL CHECK (seq >= 1),
    node        text NOT NULL,
    type        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz,
    PRIMARY KEY (call_sid, seq)
);

-- Commands for media nodes, written in the transaction that decided them and sent
-- after it commits; a worker that dies in between leaves them for the next one.
CREATE TABLE media_commands (
    call_sid   text NOT NULL,
    seq        integer NOT NULL CHECK (seq >= 1),
    node       text NOT NULL,
    type       text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    PRIMARY KEY (call_sid, seq)
);
CREATE INDEX media_commands_unsent ON media_commands (call_sid, seq) WHERE sent_at IS NULL;

-- The ordered story of a call: events applied, verbs run, webhooks, errors, statuses.
CREATE TABLE call_events (
    call_sid   text NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 1),
    kind       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (call_sid, seq)
);

CREATE TABLE recordings (
    sid         text PRIMARY KEY CHECK (sid ~ '^RE[0-9a-f]{32}$'),
    account_sid text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    call_sid    text NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    path        text NOT NULL,
    duration    integer NOT NULL CHECK (duration >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_call ON recordings (call_sid);
