-- The credential vault and what the OAuth connect flow keeps between requests.
--
-- Tokens never appear in events or logs. They are sealed (AES-256-GCM) under the
-- user's data key with the user id and the service as associated data, so a
-- ciphertext copied into another user's or another service's row fails to open,
-- and destroying the user's key (account deletion) makes every copy unreadable.

-- One connection per user and service. Reached like the read models: through
-- sidekick_app under row-level security, rows of sidekick_current_user() only.
CREATE TABLE oauth_credentials (
    user_id        uuid NOT NULL,
    service        text NOT NULL CHECK (service IN ('google', 'microsoft', 'notion')),
    access_sealed  text NOT NULL,
    -- NULL when the provider issues no refresh token (Notion).
    refresh_sealed text,
    -- NULL when the access token does not expire (Notion).
    expires_at     timestamptz,
    scopes         text[] NOT NULL DEFAULT '{}',
    -- Who the user is at the provider (an email, a workspace name), sealed.
    label_sealed   text,
    status         text NOT NULL CHECK (status IN ('connected', 'needs_reconnect')),
    connected_at   timestamptz NOT NULL,
    -- Bumped on every token rotation: a refresh writes only over the version it read.
    version        bigint NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, service)
);

-- Features a user switched off. No row means on: a newly connected service
-- unlocks everything it can.
CREATE TABLE feature_switches (
    user_id    uuid NOT NULL,
    feature    text NOT NULL,
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, feature)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['oauth_credentials', 'feature_switches'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY own_rows ON %I USING (user_id = sidekick_current_user()) WITH CHECK (user_id = sidekick_current_user())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO sidekick_app', t);
    END LOOP;
END $$;

-- Authorization attempts in flight: the state parameter (only its SHA-256 kept),
-- the PKCE verifier (sealed) and what was asked for. Looked up by the state's hash
-- before the user is known, like api_tokens, so outside row-level security.
-- Single-use: the callback deletes the row it uses.
CREATE TABLE oauth_states (
    state_hash      text PRIMARY KEY,
    user_id         uuid NOT NULL,
    service         text NOT NULL,
    verifier_sealed text NOT NULL,
    features        text[] NOT NULL DEFAULT '{}',
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_states_user ON oauth_states (user_id);

-- Short links texted to a user ("connect calendar" → <public url>/c/<code>) that
-- start the connect flow for that user. Only the code's SHA-256 is kept. Usable
-- until they expire, not once: a phone's link preview must not use them up.
CREATE TABLE connect_links (
    code_hash  text PRIMARY KEY,
    user_id    uuid NOT NULL,
    service    text NOT NULL,
    features   text[] NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connect_links_user ON connect_links (user_id);

-- Account deletion purges these acting as the user (sidekick_vault::purge_user).
GRANT SELECT, DELETE ON oauth_states, connect_links TO sidekick_app;
