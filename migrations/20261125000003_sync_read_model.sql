-- Read models are reached only through a role that row-level security applies to.
-- The role is cluster-wide, so parallel migrations of several databases may race to
-- create it; either outcome is fine.
DO $$
BEGIN
    CREATE ROLE sidekick_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

DO $$
BEGIN
    EXECUTE format('GRANT sidekick_app TO %I', current_user);
EXCEPTION WHEN OTHERS THEN NULL;
END $$;

-- The user a read-model transaction acts for; unset means nobody, and sees nothing.
CREATE FUNCTION sidekick_current_user() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('sidekick.user_id', true), '')::uuid
$$;

-- Per-aggregate checkpoints of every projector, written in the same transaction as
-- the read-model change they describe.
CREATE TABLE projection_checkpoints (
    projection     text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    user_id        uuid   NOT NULL,
    sequence       bigint NOT NULL,
    PRIMARY KEY (projection, aggregate_type, aggregate_id)
);

-- sync: who the user is (routing, profile) ...
CREATE TABLE sync_users (
    user_id       uuid PRIMARY KEY,
    phone         text NOT NULL,
    name_sealed   text,
    timezone      text NOT NULL,
    quiet_start   text NOT NULL,
    quiet_end     text NOT NULL,
    opted_out     boolean NOT NULL DEFAULT false,
    signup_via    text NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX sync_users_phone ON sync_users (phone);

-- ... and the conversation timeline of both channels, with delivery status.
CREATE TABLE sync_messages (
    user_id      uuid NOT NULL,
    id           uuid NOT NULL,
    direction    text NOT NULL CHECK (direction IN ('in', 'out')),
    channel      text NOT NULL,
    kind         text,
    body_sealed  text NOT NULL,
    number       bigint,
    at           timestamptz NOT NULL,
    status       text NOT NULL,
    provider_sid text,
    error        text,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX sync_messages_timeline ON sync_messages (user_id, at, id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['projection_checkpoints', 'sync_users', 'sync_messages'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY own_rows ON %I USING (user_id = sidekick_current_user()) WITH CHECK (user_id = sidekick_current_user())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO sidekick_app', t);
    END LOOP;
END $$;

-- Delivery statuses only move forward: Twilio's callbacks can arrive out of order.
CREATE FUNCTION sidekick_status_rank(status text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status
        WHEN 'received'    THEN 0
        WHEN 'queued'      THEN 1
        WHEN 'sending'     THEN 2
        WHEN 'sent'        THEN 3
        WHEN 'undelivered' THEN 4
        WHEN 'failed'      THEN 4
        WHEN 'delivered'   THEN 5
        WHEN 'read'        THEN 6
        ELSE 0 END
$$;
