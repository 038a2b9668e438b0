-- The scheduler's read model: what is due when, and who may get a check-in.
--
-- Built by the `schedule` projection (crates/projector/src/schedule.rs) from
-- planner, conversation and account events, so `replay --projection schedule`
-- rebuilds it. The scheduler role (crates/assistant/src/scheduler.rs) claims due
-- rows across users with leases, and writes only its own bookkeeping columns
-- (status once handled, due_at when it defers, attempts, lease, last_error).

-- One row per thing that may send one message: an occurrence of a reminder, the
-- start of a time-box, the end of a focus session, an inactivity check-in.
CREATE TABLE schedule_items (
    -- Derived from (user_id, kind, ref_id, occurrence_at), and used as the reply id
    -- of the message the item sends: a retried item queues the same reply, which
    -- the unique index at the end of this file lets exist once.
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('reminder', 'time_box', 'focus', 'nudge')),
    -- The reminder, time-box or focus session; the user for a nudge.
    ref_id        uuid        NOT NULL,
    -- When it was meant to happen (a nudge: the last activity it follows).
    occurrence_at timestamptz NOT NULL,
    -- When the scheduler should look at it next: the occurrence, later when deferred.
    due_at        timestamptz NOT NULL,
    -- Past this, sending is pointless (a time-box that ended): it is skipped.
    expires_at    timestamptz,
    -- The user named this time ("remind me at 22:30"): it may go out in quiet hours.
    explicit      boolean     NOT NULL DEFAULT false,
    -- A reminder's regular occurrence, or the extra one a snooze added.
    slot          text        NOT NULL DEFAULT 'regular' CHECK (slot IN ('regular', 'snooze')),
    repeating     boolean     NOT NULL DEFAULT false,
    status        text        NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'done', 'skipped', 'cancelled', 'failed')),
    -- Fired more than a minute after its time (the planner's LATE_AFTER).
    late          boolean     NOT NULL DEFAULT false,
    -- Deferred to the end of quiet hours at least once.
    held          boolean     NOT NULL DEFAULT false,
    attempts      integer     NOT NULL DEFAULT 0,
    locked_by     text,
    locked_until  timestamptz,
    last_error    text,
    -- Why it was skipped or deferred, for operators (never message text).
    note          text,
    done_at       timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, kind, ref_id, occurrence_at)
);

-- The claim query's scan: pending rows by due time.
CREATE INDEX schedule_items_due ON schedule_items (due_at) WHERE status = 'pending';
-- The projection's lookups by reminder / time-box / session, and per-user listings.
CREATE INDEX schedule_items_ref ON schedule_items (user_id, ref_id);

-- What the inactivity check-in needs that the aggregates do not keep.
CREATE TABLE schedule_users (
    user_id        uuid PRIMARY KEY,
    -- The last inbound message or completed task.
    last_active_at timestamptz,
    -- The last check-in queued.
    last_nudge_at  timestamptz,
    -- "nudges off". Projected from the account's NudgesSet event once it exists.
    nudges_enabled boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Row-level security as everywhere: a user-scoped transaction (the projection) sees
-- its own rows. The scheduler works across users and says so explicitly
-- (`SET LOCAL sidekick.scheduler = 'on'`, store::schedule); no API route sets it.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['schedule_items', 'schedule_users'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY own_rows ON %I USING (user_id = sidekick_current_user()) WITH CHECK (user_id = sidekick_current_user())', t);
        EXECUTE format('CREATE POLICY scheduler_all ON %I USING (current_setting(''sidekick.scheduler'', true) = ''on'') WITH CHECK (current_setting(''sidekick.scheduler'', true) = ''on'')', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO sidekick_app', t);
    END LOOP;
END $$;

-- A scheduled message (reminder, time-box start, focus check-in, nudge) is queued
-- at most once, ever: its reply id is derived from what it is for, and a second
-- ReplyQueued with the same id cannot commit. The Conversation aggregate alone only
-- drops a repeat while the first is still pending; this closes the window after it
-- was sent (a scheduler that died between queueing and marking its item done).
CREATE UNIQUE INDEX events_scheduled_reply_id
    ON events ((payload -> 'ReplyQueued' ->> 'reply_id'))
    WHERE event_type = 'ReplyQueued'
      AND (payload -> 'ReplyQueued' ->> 'kind') IN ('reminder', 'nudge');

-- A task's sealed title for a time-box start or a check-in, without scanning the
-- user's whole planner history.
CREATE INDEX events_task_title
    ON events (aggregate_id, (coalesce(payload -> 'TaskAdded' ->> 'task_id', payload -> 'TaskRenamed' ->> 'task_id')), sequence)
    WHERE event_type IN ('TaskAdded', 'TaskRenamed');
