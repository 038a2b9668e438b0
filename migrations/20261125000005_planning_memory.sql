-- The planning and memory read models (projections/planning, projections/memory).
-- Every table carries user_id and sits under the same row-level security as the sync
-- read model (20261125000003): reached through sidekick_app, rows of
-- sidekick_current_user() only. Texts stay sealed; the one exception is
-- memory_items.search_text (see below).

-- pg_trgm gives trigram similarity for memory search. Extensions are per database,
-- but several processes may migrate at once; either winner is fine.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- planning: goals (the why behind tasks).
CREATE TABLE planning_goals (
    user_id      uuid NOT NULL,
    id           uuid NOT NULL,
    title_sealed text NOT NULL,
    status       text NOT NULL CHECK (status IN ('active', 'achieved', 'dropped')),
    -- A due moment is either an instant (due_at) or a local day (due_date), never both.
    due_at       timestamptz,
    due_date     date,
    created_at   timestamptz NOT NULL,
    closed_at    timestamptz,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);

-- planning: tasks and their steps (any depth), the full history: the aggregate
-- forgets closed tasks after a few days, this table never does.
CREATE TABLE planning_tasks (
    user_id             uuid   NOT NULL,
    id                  uuid   NOT NULL,
    parent_id           uuid,
    goal_id             uuid,
    position            bigint NOT NULL,
    title_sealed        text   NOT NULL,
    status              text   NOT NULL CHECK (status IN ('open', 'done', 'deferred', 'dropped')),
    estimate_minutes    integer,
    -- How long it really took, when the user said (estimate calibration).
    actual_minutes      integer,
    due_at              timestamptz,
    due_date            date,
    deferred_until_at   timestamptz,
    deferred_until_date date,
    defer_count         integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    done_at             timestamptz,
    -- When it was done or dropped.
    closed_at           timestamptz,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX planning_tasks_listing ON planning_tasks (user_id, created_at, id);
CREATE INDEX planning_tasks_children ON planning_tasks (user_id, parent_id, position);

-- planning: reminders with their next due time. `due_at` is what fires next: the
-- regular occurrence or an extra one from a snooze, whichever is sooner.
CREATE TABLE planning_reminders (
    user_id         uuid NOT NULL,
    id              uuid NOT NULL,
    task_id         uuid,
    text_sealed     text NOT NULL,
    -- The domain's Schedule as JSON ({"once":{"at":…}} or {"repeat":{"rule":…}}).
    schedule        jsonb NOT NULL,
    -- A short description of a repeating rule ("daily 08:00"); NULL for a one-off.
    recurrence      text,
    timezone        text NOT NULL,
    next_due_at     timestamptz,
    snoozed_until   timestamptz,
    due_at          timestamptz GENERATED ALWAYS AS (least(next_due_at, snoozed_until)) STORED,
    status          text NOT NULL CHECK (status IN ('active', 'snoozed', 'cancelled', 'done')),
    last_occurrence timestamptz,
    last_fired_at   timestamptz,
    -- Whether the last firing went out late (everything was down at its time).
    late            boolean NOT NULL DEFAULT false,
    fired_count     integer NOT NULL DEFAULT 0,
    -- Firings since the user last answered one (ADHD.md: back off after two).
    unanswered      integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX planning_reminders_listing ON planning_reminders (user_id, created_at, id);
CREATE INDEX planning_reminders_due ON planning_reminders (user_id, due_at)
    WHERE status IN ('active', 'snoozed');

-- planning: time-boxes, a task placed in a window of a (local) date. The title is
-- the task's, copied so the plan of a day is one read.
CREATE TABLE planning_time_boxes (
    user_id      uuid NOT NULL,
    id           uuid NOT NULL,
    date         date NOT NULL,
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    task_id      uuid NOT NULL,
    title_sealed text,
    placed_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX planning_time_boxes_day ON planning_time_boxes (user_id, date, start_at);

-- planning: focus sessions ("focus 25").
CREATE TABLE planning_focus_sessions (
    user_id         uuid NOT NULL,
    id              uuid NOT NULL,
    task_id         uuid,
    planned_minutes integer NOT NULL,
    started_at      timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    ended_at        timestamptz,
    actual_minutes  integer,
    PRIMARY KEY (user_id, id)
);

-- planning: completions per 15-minute UTC slot. Not per date: a date needs the
-- user's timezone, which the planner's events do not carry and which can change.
-- Every timezone in use is a whole number of quarter hours from UTC, so a slot lies
-- inside one local day in any zone, and "done today" and streaks are exact sums of
-- slots for whatever timezone the query gives. A task counts once, at its done_at.
CREATE TABLE planning_progress (
    user_id    uuid        NOT NULL,
    slot       timestamptz NOT NULL,
    done_count integer     NOT NULL CHECK (done_count > 0),
    PRIMARY KEY (user_id, slot)
);

-- memory: remembered facts. History stays: a superseded fact keeps its row
-- (superseded_by), a forgotten thread keeps a tombstone whose content, tags and
-- search text are erased.
--
-- search_text is the ONE place plaintext lives: content and tags opened with the
-- user's data key by the projector, so PostgreSQL can index words and trigrams.
-- It is deletable like any read-model row (forget, account deletion, replay after
-- the key is destroyed leaves it empty). Tags stay sealed in tags_sealed, as the
-- Memory aggregate's events carry them.
CREATE TABLE memory_items (
    user_id           uuid NOT NULL,
    id                uuid NOT NULL,
    -- The first fact on this subject; every later version shares it.
    thread_id         uuid NOT NULL,
    content_sealed    text,
    search_text       text NOT NULL DEFAULT '',
    tsv               tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, search_text)) STORED,
    tags_sealed       text[] NOT NULL DEFAULT '{}',
    category          text NOT NULL,
    importance        smallint NOT NULL CHECK (importance BETWEEN 1 AND 5),
    recall_count      integer NOT NULL DEFAULT 0,
    last_recalled_at  timestamptz,
    -- How often the fact was said: 1 + duplicates merged into it.
    mention_count     integer NOT NULL DEFAULT 1,
    source_message_id uuid,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    superseded_by     uuid,
    superseded_at     timestamptz,
    forgotten         boolean NOT NULL DEFAULT false,
    forgotten_at      timestamptz,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX memory_items_tsv ON memory_items USING gin (tsv);
CREATE INDEX memory_items_trgm ON memory_items USING gin (search_text gin_trgm_ops);
CREATE INDEX memory_items_listing ON memory_items (user_id, created_at, id);
CREATE INDEX memory_items_thread ON memory_items (user_id, thread_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['planning_goals', 'planning_tasks', 'planning_reminders',
                             'planning_time_boxes', 'planning_focus_sessions',
                             'planning_progress', 'memory_items'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY own_rows ON %I USING (user_id = sidekick_current_user()) WITH CHECK (user_id = sidekick_current_user())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO sidekick_app', t);
    END LOOP;
END $$;
