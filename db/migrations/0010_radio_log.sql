-- The radio log: every frame a gateway heard or sent, and every keying of a transmitter by hand.
-- Written in batches by the hub's log writer; no foreign key slows the write path (the links to
-- units, orders, copies and cases are what the radio channel knew when it logged the frame).
CREATE TABLE radio_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    gateway    text NOT NULL,
    channel    text,
    direction  text NOT NULL CHECK (direction IN ('in', 'out')),
    kind       text NOT NULL CHECK (kind IN (
        'position', 'message', 'ack', 'reject', 'bulletin', 'status', 'other', 'undecodable', 'ptt'
    )),
    callsign   text NOT NULL,
    text       text NOT NULL DEFAULT '',
    tnc2       text NOT NULL DEFAULT '',
    number     text,
    attempt    integer CHECK (attempt >= 1),
    unit_id    text,
    order_id   text,
    copy_id    bigint,
    case_id    bigint
);

-- The console pages newest first by id; every filter narrows that walk.
CREATE INDEX radio_log_callsign_idx ON radio_log (upper(callsign), id);
CREATE INDEX radio_log_unit_idx ON radio_log (unit_id, id) WHERE unit_id IS NOT NULL;
CREATE INDEX radio_log_order_idx ON radio_log (order_id, id) WHERE order_id IS NOT NULL;
CREATE INDEX radio_log_case_idx ON radio_log (case_id, id) WHERE case_id IS NOT NULL;
CREATE INDEX radio_log_gateway_idx ON radio_log (gateway, id);
CREATE INDEX radio_log_at_brin ON radio_log USING brin (at);
