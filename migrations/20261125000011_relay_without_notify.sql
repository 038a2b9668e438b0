-- The relay no longer LISTENs: a commit of events wakes the relay of its own process
-- directly, and other processes' commits are found by polling (crates/store/src/relay.rs).
-- NOTIFY made every event commit take one database-wide lock through its WAL flush,
-- so event commits could not share a flush (BENCHMARKS.md, "What limits it").
DROP TRIGGER IF EXISTS events_notify ON events;
DROP FUNCTION IF EXISTS sidekick_events_notify();
