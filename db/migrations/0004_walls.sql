-- Video walls: named layouts of tiles, their saved presets, and the screens allowed to show them.

CREATE TABLE walls (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    title      text NOT NULL DEFAULT '',
    rows       integer NOT NULL CHECK (rows BETWEEN 1 AND 8),
    columns    integer NOT NULL CHECK (columns BETWEEN 1 AND 8),
    -- One JSON object per cell, row by row; length = rows * columns (checked by the service).
    tiles      jsonb NOT NULL CHECK (jsonb_typeof(tiles) = 'array'),
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wall_presets (
    wall       text NOT NULL REFERENCES walls (name) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    rows       integer NOT NULL CHECK (rows BETWEEN 1 AND 8),
    columns    integer NOT NULL CHECK (columns BETWEEN 1 AND 8),
    tiles      jsonb NOT NULL CHECK (jsonb_typeof(tiles) = 'array'),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wall, name)
);

-- A screen of a wall pairs once with a token (only its SHA-256 is stored) and then signs in as
-- its own viewer account; deleting that account unpairs the screen and ends its sessions.
CREATE TABLE wall_screens (
    wall         text NOT NULL REFERENCES walls (name) ON DELETE CASCADE,
    screen       text NOT NULL CHECK (screen ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    user_id      bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    PRIMARY KEY (wall, screen)
);
