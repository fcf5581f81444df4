-- Devices of every kind, their health history, their events and their alarms.

CREATE TABLE devices (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    kind        text NOT NULL CHECK (kind ~ '^[a-z0-9_]{1,64}$'),
    name        text,
    site        text,
    lat         double precision CHECK (lat BETWEEN -90 AND 90),
    lon         double precision CHECK (lon BETWEEN -180 AND 180),
    tags        text[] NOT NULL DEFAULT '{}',
    adapter     text,
    attributes  jsonb NOT NULL DEFAULT '{}',
    configured  boolean NOT NULL DEFAULT false,  -- registered by a person, not only seen
    state       text NOT NULL DEFAULT 'unknown'
                CHECK (state IN ('unknown', 'online', 'degraded', 'offline')),
    reason      text,
    figures     jsonb NOT NULL DEFAULT '{}',
    last_seen   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX devices_kind_idx ON devices (kind);
CREATE INDEX devices_site_idx ON devices (site);
CREATE INDEX devices_state_idx ON devices (state);

-- Built for many writes: no foreign key, no primary key, appended by COPY, pruned by age.
CREATE TABLE health_samples (
    device_id text NOT NULL,
    at        timestamptz NOT NULL,
    state     text NOT NULL,
    figures   jsonb NOT NULL
);

CREATE INDEX health_samples_device_at_idx ON health_samples (device_id, at);
CREATE INDEX health_samples_at_brin ON health_samples USING brin (at);

-- What happened to a device, for people: state changes, alarms, commands.
CREATE TABLE device_events (
    id        bigserial PRIMARY KEY,
    device_id text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX device_events_device_idx ON device_events (device_id, id);
CREATE INDEX device_events_at_idx ON device_events (at);

CREATE TABLE alarms (
    id               bigserial PRIMARY KEY,
    device_id        text NOT NULL,
    code             text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message          text NOT NULL,
    raised_at        timestamptz NOT NULL DEFAULT now(),
    last_raised_at   timestamptz NOT NULL DEFAULT now(),
    times            integer NOT NULL DEFAULT 1,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    escalated_at     timestamptz,
    cleared_at       timestamptz,
    cleared_by       text,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);

-- One open alarm per device and code: raising it again counts instead of duplicating.
CREATE UNIQUE INDEX alarms_open_key ON alarms (device_id, code) WHERE cleared_at IS NULL;
CREATE INDEX alarms_raised_idx ON alarms (raised_at);
