-- A change to a subject takes its row lock, waiting at most `wait_ms` (a batch's
-- dispatcher gate may hold share locks on it while its sends are out), then reads
-- what the change needs: the facts, the wrapped data key and the latest deadline of
-- a send to the person still in flight. One round trip instead of six, on the path
-- every consent event takes. The in-flight read is a statement of its own, after
-- the lock, so it sees sends committed while the lock was waited for.
--
-- SECURITY INVOKER (the default): row-level security applies as to any query of
-- the caller, with the tenant and group scope of its transaction. The search path
-- is pinned (pg_catalog first), so no operator or function a role creates in
-- another schema can stand in for a built-in one here.
CREATE FUNCTION assent_lock_subject(p_tenant TEXT, p_subject TEXT, p_wait_ms INTEGER,
                                    p_now TIMESTAMP)
RETURNS TABLE (id TEXT, person_id TEXT, channels TEXT, restricted_at TIMESTAMP,
               erased_at TIMESTAMP, wrapped_key BYTEA, sends_until TIMESTAMP)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public AS $$
DECLARE
    previous TEXT := current_setting('lock_timeout');
    s RECORD;
BEGIN
    PERFORM set_config('lock_timeout', format('%sms', p_wait_ms), true);
    SELECT x.id, x.person_id, x.channels, x.restricted_at, x.erased_at INTO s
      FROM subjects x WHERE x.tenant_id = p_tenant AND x.id = p_subject
      FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM set_config('lock_timeout', previous, true);
        RETURN;
    END IF;
    PERFORM set_config('lock_timeout', previous, true);
    RETURN QUERY SELECT s.id, s.person_id, s.channels, s.restricted_at, s.erased_at,
        (SELECT k.wrapped_key FROM subject_keys k
          WHERE k.tenant_id = p_tenant AND k.subject_id = p_subject),
        (SELECT max(f.deadline) FROM sends_in_flight f
          WHERE f.deadline > p_now
            AND ((f.tenant_id = p_tenant AND f.subject_id = p_subject)
                 OR (s.person_id IS NOT NULL
                     AND f.group_id = NULLIF(current_setting('app.group_id', true), '')
                     AND f.person_id = s.person_id)));
END
$$;
