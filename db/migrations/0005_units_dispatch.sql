-- Field units, their position history, and dispatch orders with their durable outbox.

CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

CREATE TABLE units (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    callsign         text NOT NULL CHECK (callsign ~ '^[A-Za-z0-9/-]{1,16}$'),
    name             text NOT NULL CHECK (name <> ''),
    kind             text NOT NULL CHECK (kind IN (
        'volunteer', 'social_worker', 'companion', 'fire', 'public_order', 'medic', 'logistics'
    )),
    skills           text[] NOT NULL DEFAULT '{}',
    home_center      text,
    on_duty          boolean NOT NULL DEFAULT true,
    status           text NOT NULL DEFAULT 'available' CHECK (status IN (
        'available', 'dispatched', 'en_route', 'on_scene', 'returning', 'out_of_service'
    )),
    status_reason    text,
    -- Ordered ways to reach the unit: [{"channel": "mqtt"|"radio"|"satellite", "address": "…"}].
    channels         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(channels) = 'array'),
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    position_at      timestamptz,
    position_source  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((lat IS NULL) = (lon IS NULL) AND (lat IS NULL) = (position_at IS NULL))
);

CREATE UNIQUE INDEX units_callsign_key ON units (upper(callsign));
-- Nearest-unit search: KNN over the earth cube of the last known position.
CREATE INDEX units_position_gist ON units USING gist (ll_to_earth(lat, lon))
    WHERE lat IS NOT NULL;
-- Available units that never reported a position: ranked last, found without a scan.
CREATE INDEX units_unplaced_idx ON units (id)
    WHERE lat IS NULL AND status = 'available' AND on_duty;

-- Every position ever reported, from every source. Written in batches by COPY; no foreign key
-- or trigger slows the write path (the writer only copies rows of units that exist).
CREATE TABLE unit_positions (
    unit_id      text NOT NULL,
    at           timestamptz NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    source       text NOT NULL,
    received_at  timestamptz NOT NULL
);

CREATE INDEX unit_positions_unit_idx ON unit_positions (unit_id, at DESC);
CREATE INDEX unit_positions_at_brin ON unit_positions USING brin (received_at);

-- One order per dispatch: its id travels with every copy sent to the field.
CREATE TABLE dispatch_orders (
    id             text PRIMARY KEY CHECK (id ~ '^[0-9a-z]{8,32}$'),
    case_id        bigint NOT NULL REFERENCES cases (id),
    message        text NOT NULL CHECK (message <> ''),
    auto_escalate  boolean NOT NULL,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN (
        'open', 'acknowledged', 'failed', 'cancelled'
    )),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz
);

CREATE INDEX dispatch_orders_case_idx ON dispatch_orders (case_id);
CREATE INDEX dispatch_orders_open_idx ON dispatch_orders (created_at) WHERE status = 'open';

-- One unit asked to go by an order; escalation adds the next unit to the same order.
CREATE TABLE dispatch_assignments (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL REFERENCES dispatch_orders (id),
    unit_id          text NOT NULL REFERENCES units (id),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'acknowledged', 'exhausted', 'cancelled'
    )),
    escalated_from   bigint REFERENCES dispatch_assignments (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    ack_channel      text,
    UNIQUE (order_id, unit_id)
);

CREATE INDEX dispatch_assignments_unit_idx ON dispatch_assignments (unit_id, status);

-- The durable outbox: one copy of an order to one unit over one channel, and its ladder state.
-- Channel senders claim 'queued' rows (FOR UPDATE SKIP LOCKED), send, and mark them 'sent' in
-- the same transaction; the watcher times out rows past their deadline.
CREATE TABLE dispatch_outbox (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL REFERENCES dispatch_orders (id),
    assignment_id    bigint NOT NULL REFERENCES dispatch_assignments (id),
    unit_id          text NOT NULL,
    channel          text NOT NULL CHECK (channel ~ '^[a-z_]{1,32}$'),
    address          text NOT NULL,
    step             smallint NOT NULL CHECK (step >= 0),
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN (
        'queued', 'sent', 'delivered', 'acknowledged', 'timed_out', 'cancelled'
    )),
    attempts         integer NOT NULL DEFAULT 0,
    deadline         timestamptz NOT NULL,
    queued_at        timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    delivered_at     timestamptz,
    acknowledged_at  timestamptz,
    closed_at        timestamptz,
    last_error       text,
    UNIQUE (assignment_id, step)
);

CREATE INDEX dispatch_outbox_queued_idx ON dispatch_outbox (channel, id) WHERE state = 'queued';
CREATE INDEX dispatch_outbox_live_idx ON dispatch_outbox (deadline)
    WHERE state IN ('queued', 'sent', 'delivered');
CREATE INDEX dispatch_outbox_order_idx ON dispatch_outbox (order_id, id);

-- What happened to an order, in order: the ladder's history and the supervisor's alarms.
CREATE TABLE dispatch_events (
    id        bigserial PRIMARY KEY,
    order_id  text NOT NULL REFERENCES dispatch_orders (id),
    at        timestamptz NOT NULL DEFAULT now(),
    unit_id   text,
    channel   text,
    kind      text NOT NULL,
    detail    text NOT NULL DEFAULT ''
);

CREATE INDEX dispatch_events_order_idx ON dispatch_events (order_id, id);
