-- Command-side tables that are not read models: keys, phone routing, API tokens.

-- Per-user data keys, wrapped by SIDEKICK_MASTER_KEY. Deleting a row crypto-shreds the user.
CREATE TABLE user_keys (
    user_id     uuid PRIMARY KEY,
    wrapped_key text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which user a phone number belongs to: written before the account is registered so
-- two concurrent sign-ups from one number make one user.
CREATE TABLE phone_registry (
    phone      text PRIMARY KEY,
    user_id    uuid NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens for the JSON API; only a SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    token_hash   text PRIMARY KEY,
    user_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- At most one "text START to begin" reply per unknown number per day. Keyed by an
-- HMAC of the number: no plaintext number of a non-user is kept.
CREATE TABLE unknown_sender_replies (
    fingerprint     text PRIMARY KEY,
    last_replied_on date NOT NULL
);

-- Events a projector could not apply after every retry: kept for an operator.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    consumer    text NOT NULL,
    event_id    uuid,
    subject     text NOT NULL,
    error       text NOT NULL,
    payload     text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
