-- The role pgsqlchk logs in as: it may connect and read monitoring views.
-- Run once on the primary as a superuser (roles replicate to the standbys):
--   psql -d postgres -f sql/pgsqlchk-role.sql
--
-- The classic check only calls pg_is_in_recovery(), which PUBLIC may
-- execute, in the database `postgres`, which PUBLIC may connect to.
-- No password either: pg_hba.conf lets it in by peer authentication over the
-- unix socket, and only from the OS user that pg_ident.conf maps to it.
--
-- CONNECTION LIMIT caps the slots the checks take: xinetd's `instances` for
-- the HTTP check (xinetd/pgsqlchk, or MaxConnections in
-- systemd/pgsqlchk.socket) plus the agent's (xinetd/pgsqlchk-agent) stay at
-- or below it, so a check storm can never take the slots that clients were
-- promised (sql/app-connection-limit.sql).
CREATE ROLE pgsqlchk
    LOGIN
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
    CONNECTION LIMIT 14;

-- Lag behind the primary (`lag=`, the agent's weights) and the WAL
-- receiver's state come from pg_stat_wal_receiver, whose columns only
-- pg_read_all_stats may read; pg_monitor holds it, and nothing that writes.
-- INHERIT, so the grant applies without SET ROLE.
GRANT pg_monitor TO pgsqlchk;

-- Even a mistaken grant later cannot make this role write or wait long.
ALTER ROLE pgsqlchk SET default_transaction_read_only = on;
ALTER ROLE pgsqlchk SET statement_timeout = '2s';
