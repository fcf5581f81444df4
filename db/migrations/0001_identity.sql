-- People who sign in, their browser sessions, and the append-only audit trail.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL CHECK (username <> '' AND username = btrim(username)),
    display_name  text,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('operator', 'supervisor', 'technician', 'viewer')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- "Alice" and "alice" are one user.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

-- Only the SHA-256 of the cookie token is stored, so a leaked table opens no session.
CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE audit_log (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text,
    before jsonb,
    after  jsonb,
    detail jsonb
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_target_idx ON audit_log (target, id);

-- The audit trail is append-only: refuse every UPDATE, DELETE and TRUNCATE, even of no rows.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
