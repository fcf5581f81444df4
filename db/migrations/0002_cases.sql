-- Cases: every report from every channel, the agencies that own them, the catalogue of
-- categories with its routing rules and SLAs, and each case's append-only history and notes.

CREATE TABLE agencies (
    code     text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,32}$'),
    name_id  text NOT NULL CHECK (name_id <> ''),
    name_en  text NOT NULL CHECK (name_en <> '')
);

CREATE TABLE case_categories (
    code             text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{1,32}$'),
    label_id         text NOT NULL CHECK (label_id <> ''),
    label_en         text NOT NULL CHECK (label_en <> ''),
    default_priority text NOT NULL CHECK (default_priority IN ('critical', 'high', 'medium', 'low')),
    active           boolean NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One rule per (category, region); region '' is the category's default. The most specific
-- rule wins at intake. SLA minutes are the time allowed from opening to resolution.
CREATE TABLE routing_rules (
    category      text NOT NULL REFERENCES case_categories (code) ON UPDATE CASCADE,
    region        text NOT NULL DEFAULT '',
    agency        text NOT NULL REFERENCES agencies (code) ON UPDATE CASCADE,
    sla_critical  integer NOT NULL CHECK (sla_critical > 0),
    sla_high      integer NOT NULL CHECK (sla_high > 0),
    sla_medium    integer NOT NULL CHECK (sla_medium > 0),
    sla_low       integer NOT NULL CHECK (sla_low > 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, region)
);

CREATE TABLE cases (
    id                    bigserial PRIMARY KEY,
    number                text GENERATED ALWAYS AS ('PSK-' || lpad(id::text, 7, '0')) STORED,
    channel               text NOT NULL CHECK (channel ~ '^[a-z_]{1,32}$'),
    category              text NOT NULL REFERENCES case_categories (code) ON UPDATE CASCADE,
    priority              text NOT NULL CHECK (priority IN ('critical', 'high', 'medium', 'low')),
    priority_rank         smallint GENERATED ALWAYS AS (
        CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
    ) STORED,
    priority_reason       text NOT NULL DEFAULT '',
    title                 text NOT NULL CHECK (title <> ''),
    description           text NOT NULL DEFAULT '',
    lat                   double precision CHECK (lat BETWEEN -90 AND 90),
    lon                   double precision CHECK (lon BETWEEN -180 AND 180),
    address               text,
    region                text,
    reporter_name         text,
    reporter_contact      text,
    anonymous             boolean NOT NULL DEFAULT false,
    status                text NOT NULL DEFAULT 'new' CHECK (status IN (
        'new', 'triaged', 'assigned', 'in_progress', 'resolved', 'closed', 'rejected', 'reopened'
    )),
    status_reason         text,
    agency                text REFERENCES agencies (code) ON UPDATE CASCADE,
    parent_id             bigint REFERENCES cases (id),
    duplicate_of          bigint REFERENCES cases (id),
    sla_due_at            timestamptz NOT NULL,
    sla_breached_at       timestamptz,
    tracking_hash         bytea UNIQUE CHECK (length(tracking_hash) = 32),
    external_source       text,
    external_id           text,
    external_pushed       text,
    message_id            text,
    attachments           jsonb NOT NULL DEFAULT '[]',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((lat IS NULL) = (lon IS NULL)),
    CHECK (parent_id IS NULL OR parent_id <> id),
    -- An anonymous case never holds who reported it.
    CHECK (NOT anonymous OR (reporter_name IS NULL AND reporter_contact IS NULL))
);

CREATE UNIQUE INDEX cases_number_key ON cases (number);
-- Idempotent intake: one case per external record and per email Message-ID.
CREATE UNIQUE INDEX cases_external_key ON cases (external_source, external_id)
    WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX cases_message_id_key ON cases (message_id) WHERE message_id IS NOT NULL;
-- The queue: ordered by priority, then SLA due time, then id (the keyset).
CREATE INDEX cases_queue_idx ON cases (priority_rank, sla_due_at, id);
CREATE INDEX cases_status_queue_idx ON cases (status, priority_rank, sla_due_at, id);
CREATE INDEX cases_agency_idx ON cases (agency, status);
-- Duplicate candidates: same category, recent, open.
CREATE INDEX cases_category_created_idx ON cases (category, created_at);
CREATE INDEX cases_contact_idx ON cases (lower(reporter_contact)) WHERE reporter_contact IS NOT NULL;
CREATE INDEX cases_parent_idx ON cases (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX cases_location_idx ON cases (lat, lon) WHERE lat IS NOT NULL;
-- The SLA watch looks only at clocks still running.
CREATE INDEX cases_sla_watch_idx ON cases (sla_due_at)
    WHERE sla_breached_at IS NULL
      AND status IN ('new', 'triaged', 'assigned', 'in_progress', 'reopened');
CREATE INDEX cases_external_push_idx ON cases (external_source)
    WHERE external_id IS NOT NULL;

CREATE TABLE case_history (
    id       bigserial PRIMARY KEY,
    case_id  bigint NOT NULL REFERENCES cases (id),
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    before   jsonb,
    after    jsonb
);

CREATE INDEX case_history_case_idx ON case_history (case_id, id);

CREATE TABLE case_notes (
    id       bigserial PRIMARY KEY,
    case_id  bigint NOT NULL REFERENCES cases (id),
    at       timestamptz NOT NULL DEFAULT now(),
    author   text NOT NULL,
    body     text NOT NULL CHECK (body <> '')
);

CREATE INDEX case_notes_case_idx ON case_notes (case_id, id);

-- History and notes are append-only, like the audit log.
CREATE FUNCTION case_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER case_history_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON case_history
    FOR EACH STATEMENT EXECUTE FUNCTION case_log_refuse_change();

CREATE TRIGGER case_notes_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON case_notes
    FOR EACH STATEMENT EXECUTE FUNCTION case_log_refuse_change();

-- The seeded catalogue; supervisors edit it through the API.
INSERT INTO agencies (code, name_id, name_en) VALUES
    ('posko', 'Posko (ruang kendali)', 'Command room'),
    ('bpbd', 'Badan Penanggulangan Bencana Daerah', 'Regional Disaster Management Agency'),
    ('dinsos', 'Dinas Sosial', 'Social Affairs Office'),
    ('dinsos_fakir', 'Dinas Sosial - Bidang Penanganan Fakir Miskin', 'Social Affairs - Poverty Directorate'),
    ('dinsos_disabilitas', 'Dinas Sosial - Rehabilitasi Sosial Penyandang Disabilitas', 'Social Affairs - Disability Rehabilitation'),
    ('dinsos_lansia', 'Dinas Sosial - Rehabilitasi Sosial Lanjut Usia', 'Social Affairs - Elderly Rehabilitation'),
    ('dp3a', 'Dinas Pemberdayaan Perempuan dan Perlindungan Anak', 'Women Empowerment and Child Protection Office'),
    ('dinkes', 'Dinas Kesehatan', 'Health Office'),
    ('damkar', 'Dinas Pemadam Kebakaran', 'Fire Service'),
    ('satpol_pp', 'Satuan Polisi Pamong Praja', 'Public Order Agency'),
    ('dkpp', 'Dinas Ketahanan Pangan dan Peternakan', 'Food Security and Animal Husbandry Office'),
    ('dpupr', 'Dinas Pekerjaan Umum dan Penataan Ruang', 'Public Works and Spatial Planning Office');

INSERT INTO case_categories (code, label_id, label_en, default_priority) VALUES
    ('disaster', 'Bencana', 'Disaster', 'high'),
    ('social_aid', 'Bantuan sosial', 'Social aid', 'medium'),
    ('poverty', 'Kemiskinan', 'Poverty', 'low'),
    ('disability', 'Disabilitas', 'Disability', 'medium'),
    ('child_protection', 'Perlindungan anak', 'Child protection', 'high'),
    ('elderly', 'Lanjut usia', 'Elderly', 'medium'),
    ('medical', 'Kesehatan / medis', 'Medical', 'high'),
    ('fire', 'Kebakaran', 'Fire', 'critical'),
    ('public_order', 'Ketertiban umum', 'Public order', 'medium'),
    ('animals', 'Hewan', 'Animals', 'low'),
    ('infrastructure', 'Infrastruktur', 'Infrastructure', 'medium'),
    ('other', 'Lainnya', 'Other', 'low');

-- SLA minutes per priority: critical, high, medium, low.
INSERT INTO routing_rules (category, agency, sla_critical, sla_high, sla_medium, sla_low) VALUES
    ('disaster', 'bpbd', 60, 240, 1440, 4320),
    ('social_aid', 'dinsos', 240, 1440, 4320, 10080),
    ('poverty', 'dinsos_fakir', 240, 1440, 4320, 10080),
    ('disability', 'dinsos_disabilitas', 240, 1440, 4320, 10080),
    ('child_protection', 'dp3a', 60, 240, 1440, 4320),
    ('elderly', 'dinsos_lansia', 240, 1440, 4320, 10080),
    ('medical', 'dinkes', 30, 120, 720, 2880),
    ('fire', 'damkar', 15, 60, 240, 1440),
    ('public_order', 'satpol_pp', 60, 240, 1440, 4320),
    ('animals', 'dkpp', 240, 1440, 4320, 10080),
    ('infrastructure', 'dpupr', 240, 1440, 4320, 10080),
    ('other', 'posko', 120, 480, 2880, 10080);
