-- Safety flags: a self-harm signal in a message, waiting for a person to follow up.
-- Built by the sync projection from the account's SafetyFlagRaised/Resolved events.
--
-- Unlike the other read models this one is read across users, by operators
-- (`sidekick flags list`). Row-level security still applies: a user-scoped
-- transaction sees its own rows only, and an operator's transaction must say
-- what it is (`SET LOCAL sidekick.operator = 'on'`) to see everyone's. No API
-- route sets that.
CREATE TABLE safety_flags (
    user_id        uuid        NOT NULL,
    flag_id        uuid        NOT NULL,
    message_number bigint      NOT NULL,
    channel        text        NOT NULL,
    raised_at      timestamptz NOT NULL,
    paused_until   timestamptz NOT NULL,
    resolved_at    timestamptz,
    -- How a person followed up; sealed under the user's key like every other text.
    note_sealed    text,
    PRIMARY KEY (user_id, flag_id)
);
CREATE UNIQUE INDEX safety_flags_id ON safety_flags (flag_id);
CREATE INDEX safety_flags_open ON safety_flags (raised_at) WHERE resolved_at IS NULL;

ALTER TABLE safety_flags ENABLE ROW LEVEL SECURITY;
ALTER TABLE safety_flags FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON safety_flags
    USING (user_id = sidekick_current_user())
    WITH CHECK (user_id = sidekick_current_user());
CREATE POLICY operators_read ON safety_flags FOR SELECT
    USING (current_setting('sidekick.operator', true) = 'on');
GRANT SELECT, INSERT, UPDATE, DELETE ON safety_flags TO sidekick_app;

-- `sidekick flags resolve <flag_id>` finds the flag's user in the event store (the
-- truth, even before the projector has caught up).
CREATE INDEX events_safety_flag_raised
    ON events ((payload -> 'SafetyFlagRaised' ->> 'flag_id'))
    WHERE event_type = 'SafetyFlagRaised';
