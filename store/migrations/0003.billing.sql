-- Rate decks, charges, and the conferences a `#` transfer creates.
--
-- Every ended leg (a row of `calls`) gets exactly one charge: the charge's primary key
-- is the leg's sid, so a repeated or concurrent rating cannot add a second one. The rate
-- a charge was computed with is copied onto it, so changing a deck never changes an old
-- bill; re-rating on request keeps the replaced versions in `charge_revisions`.
--
-- `conferences` and `conference_participants` are what a conference's bill reads (the
-- customer bills a conference as an outgoing call to the number the first employee
-- originally called, plus one to each participant's number); the conference feature
-- writes them (`store/conferences.py`) and may add columns in its own migrations.
-- depends: 0002.extensions

-- What each end of a leg is; NULL for rows written before this migration or by code
-- that does not say, in which case the rater infers it (an account's extension, a
-- `sip:` or `client:` address, else a phone number).
ALTER TABLE calls
    ADD COLUMN from_kind text CHECK (from_kind IN ('extension', 'number', 'sip', 'client')),
    ADD COLUMN to_kind   text CHECK (to_kind IN ('extension', 'number', 'sip', 'client'));
-- Periods (re-rating, CDR export, the sweep for legs whose rating was never enqueued).
CREATE INDEX calls_created ON calls (created_at);

CREATE TABLE rate_decks (
    sid         text PRIMARY KEY CHECK (sid ~ '^RD[0-9a-f]{32}$'),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    -- One currency per deck, so a bill rated from it has one total.
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A deck's rates: per number prefix (longest match wins), and one per leg class for
-- extension legs (free when absent) and inbound legs (zero when absent). A rate applies
-- to legs that started in [effective_from, effective_until); NULL is unbounded.
CREATE TABLE rates (
    deck_sid         text NOT NULL REFERENCES rate_decks (sid) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('number', 'extension', 'inbound')),
    prefix           text NOT NULL,
    description      text NOT NULL DEFAULT '',
    price_per_minute numeric NOT NULL CHECK (price_per_minute >= 0),
    connect_fee      numeric NOT NULL DEFAULT 0 CHECK (connect_fee >= 0),
    first_increment  integer NOT NULL CHECK (first_increment >= 1),
    next_increment   integer NOT NULL CHECK (next_increment >= 1),
    effective_from   timestamptz,
    effective_until  timestamptz,
    CHECK (CASE kind WHEN 'number' THEN prefix ~ '^[0-9]{1,15}$' ELSE prefix = '' END),
    CHECK (effective_from IS NULL OR effective_until IS NULL
           OR effective_until > effective_from)
);
CREATE UNIQUE INDEX rates_key
    ON rates (deck_sid, kind, prefix, coalesce(effective_from, '-infinity'));

ALTER TABLE accounts ADD COLUMN rate_deck_sid text REFERENCES rate_decks (sid);

CREATE TABLE charges (
    call_sid         text PRIMARY KEY REFERENCES calls (sid) ON DELETE CASCADE,
    account_sid      text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    revision         integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    -- 'rated': a rate of the deck applied. 'free': nothing to pay, `reason` says why
    -- (not answered; a class the deck does not price). 'unrated': no rate found,
    -- `reason` says why; it has no amount, and bills show it apart from their totals.
    status           text NOT NULL CHECK (status IN ('rated', 'free', 'unrated')),
    reason           text,
    leg_class        text NOT NULL CHECK (leg_class IN ('number', 'extension', 'inbound', 'sip')),
    -- What was rated: the E.164 number, the extension, the URI, or the inbound caller.
    number           text NOT NULL,
    started_at       timestamptz NOT NULL,
    duration         integer NOT NULL CHECK (duration >= 0),
    billable_seconds integer NOT NULL CHECK (billable_seconds >= 0),
    -- The rate used, copied.
    deck_sid         text,
    deck_name        text,
    prefix           text,
    description      text,
    price_per_minute numeric,
    connect_fee      numeric,
    first_increment  integer,
    next_increment   integer,
    currency         text CHECK (currency ~ '^[A-Z]{3}$'),
    amount           numeric(20, 4) CHECK (amount >= 0),
    rated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'unrated') = (amount IS NULL)),
    CHECK ((status = 'rated') = (price_per_minute IS NOT NULL)),
    CHECK (status = 'rated' OR reason IS NOT NULL)
);
CREATE INDEX charges_account_started ON charges (account_sid, started_at);

-- Charges replaced by a re-rating, as they were.
CREATE TABLE charge_revisions (
    call_sid    text NOT NULL REFERENCES charges (call_sid) ON DELETE CASCADE,
    revision    integer NOT NULL,
    charge      jsonb NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_sid, revision)
);

CREATE TABLE conferences (
    sid                     text PRIMARY KEY CHECK (sid ~ '^CF[0-9a-f]{32}$'),
    account_sid             text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    friendly_name           text NOT NULL,
    status                  text NOT NULL DEFAULT 'init'
                            CHECK (status IN ('init', 'in-progress', 'completed')),
    -- The first employee's own leg, and the number that employee originally called.
    first_employee_call_sid text REFERENCES calls (sid) ON DELETE SET NULL,
    origin_number           text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    ended_at                timestamptz,
    end_reason              text,
    CHECK ((status = 'completed') = (ended_at IS NOT NULL))
);
CREATE INDEX conferences_account_created ON conferences (account_sid, created_at DESC);
CREATE INDEX conferences_live ON conferences (account_sid) WHERE status <> 'completed';

-- One row per leg and conference: a leg that leaves and comes back keeps its row.
CREATE TABLE conference_participants (
    conference_sid text NOT NULL REFERENCES conferences (sid) ON DELETE CASCADE,
    call_sid       text NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    role           text NOT NULL CHECK (role IN ('subscriber', 'employee', 'external')),
    -- The participant's number or extension, as dialled.
    number         text NOT NULL,
    is_controller  boolean NOT NULL DEFAULT false,
    muted          boolean NOT NULL DEFAULT false,
    on_hold        boolean NOT NULL DEFAULT false,
    joined_at      timestamptz NOT NULL DEFAULT now(),
    left_at        timestamptz,
    PRIMARY KEY (conference_sid, call_sid),
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE INDEX conference_participants_call ON conference_participants (call_sid);
CREATE UNIQUE INDEX conference_participants_controller
    ON conference_participants (conference_sid) WHERE is_controller AND left_at IS NULL;
