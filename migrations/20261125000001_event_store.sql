-- The event store: postgres-es's `events` table plus the columns the relay and tooling need.
-- postgres-es names its INSERT columns, so the extra columns take their defaults.

CREATE OR REPLACE FUNCTION sidekick_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE events (
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    event_id       uuid        NOT NULL DEFAULT sidekick_uuid_v7(),
    -- position is assigned at INSERT, not at COMMIT: it has gaps and does not follow
    -- commit order. The relay orders by (txid, position) and only reads transactions
    -- older than every running one, so it never skips an event (see store::relay).
    position       bigserial   NOT NULL,
    txid           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_commit_order ON events (txid, position);
CREATE INDEX events_by_aggregate_id ON events (aggregate_id, txid, position);

-- Twilio retries a webhook it did not see answered: one MessageSid, one event, ever.
CREATE UNIQUE INDEX events_inbound_message_sid
    ON events ((payload -> 'MessageReceived' ->> 'provider_sid'))
    WHERE event_type = 'MessageReceived';

-- Wakes the relay at commit (NOTIFY is delivered only when the transaction commits).
CREATE FUNCTION sidekick_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sidekick_events', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION sidekick_events_notify();

-- Our own aggregate snapshots (cqrs-es 0.5's snapshot store applies events twice).
CREATE TABLE aggregate_snapshots (
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    state          jsonb  NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Where the outbox relay has published up to.
CREATE TABLE relay_cursor (
    name        text   PRIMARY KEY,
    txid        xid8   NOT NULL,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
