-- The account's in-call options: which key does what during a call (the `#` flow).
-- An account without rows has the defaults: # transfer, * abort.
-- depends: 0005.conferences

CREATE TABLE in_call_options (
    account_sid text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    key         text NOT NULL CHECK (key ~ '^[0-9*#]$'),
    operation   text NOT NULL CHECK (operation IN ('transfer', 'abort', 'none')),
    PRIMARY KEY (account_sid, key)
);
