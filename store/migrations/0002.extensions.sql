-- Extensions (the account's employees and their SIP credentials) and the registrar's
-- bindings. A SIP domain names the account a phone registers to; the digest realm is
-- that domain, and a password is kept only as its HA1 digests.
-- depends: 0001.initial

ALTER TABLE accounts ADD COLUMN sip_domain text UNIQUE
    CHECK (sip_domain ~ '^[A-Za-z0-9.\-]{1,253}$');

CREATE TABLE extensions (
    account_sid   text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    extension     text NOT NULL CHECK (extension ~ '^[0-9]{2,8}$'),
    display_name  text NOT NULL DEFAULT '',
    -- HA1 = H(username ":" realm ":" password), one per digest algorithm we offer.
    ha1_md5       text NOT NULL CHECK (ha1_md5 ~ '^[0-9a-f]{32}$'),
    ha1_sha256    text NOT NULL CHECK (ha1_sha256 ~ '^[0-9a-f]{64}$'),
    realm         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_sid, extension)
);

CREATE TABLE registrations (
    account_sid text NOT NULL,
    extension   text NOT NULL,
    contact     text NOT NULL,
    expires_at  timestamptz NOT NULL,
    call_id     text NOT NULL,
    cseq        integer NOT NULL,
    received    text,
    transport   text NOT NULL DEFAULT 'udp',
    q           real,
    instance    text,
    user_agent  text,
    node        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_sid, extension, contact),
    FOREIGN KEY (account_sid, extension) REFERENCES extensions ON DELETE CASCADE
);
CREATE INDEX registrations_expiry ON registrations (expires_at);
