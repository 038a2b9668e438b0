-- Web sign-in: texted one-time codes, their rate limits, server-side sessions and the
-- optional second factor (TOTP). Command-side tables like api_tokens: reached only by
-- the web role through crates/store, never under a user's row-level-security scope.

-- One live sign-in code per number. Keyed by an HMAC of the number (the master key's
-- fingerprint), so a number without an account leaves no plaintext trace. A number
-- without an account gets a row too (user_id NULL, a code nobody was sent): verifying
-- against it behaves exactly like a wrong code, which is what keeps the answers the
-- same whether or not the number has an account.
CREATE TABLE signin_codes (
    phone_key  text PRIMARY KEY,
    user_id    uuid,
    code_hash  text        NOT NULL,
    attempts   int         NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX signin_codes_user ON signin_codes (user_id);
CREATE INDEX signin_codes_expiry ON signin_codes (expires_at);

-- Fixed-window request counters (per number, per client address), shared by every
-- web process of a deployment. Buckets are fingerprints, never plaintext.
CREATE TABLE auth_rate_limits (
    bucket       text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits         int         NOT NULL
);
CREATE INDEX auth_rate_limits_window ON auth_rate_limits (window_start);

-- Browser sessions. Only a SHA-256 of the cookie's token is kept. The CSRF token is
-- the synchronizer token of this session (useless without the cookie). A session
-- waiting for its second factor signs nobody in until it is upgraded.
CREATE TABLE web_sessions (
    token_hash            text PRIMARY KEY,
    user_id               uuid        NOT NULL,
    csrf_token            text        NOT NULL,
    second_factor_pending boolean     NOT NULL DEFAULT false,
    factor_attempts       int         NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    last_seen_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- A user's TOTP secret, sealed under their data key (destroying the key shreds it).
-- confirmed_at NULL: enrolment started, not yet proven with a code, not enforced.
-- last_step: the newest time step accepted, so a code works once.
CREATE TABLE totp_factors (
    user_id       uuid PRIMARY KEY,
    secret_sealed text        NOT NULL,
    confirmed_at  timestamptz,
    last_step     bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One-time recovery codes for when the authenticator is lost; HMACs only.
CREATE TABLE totp_recovery_codes (
    user_id   uuid NOT NULL,
    code_hash text NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
