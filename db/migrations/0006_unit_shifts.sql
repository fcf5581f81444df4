-- A unit may follow a shift: the shift clock puts it on duty while its shift is on and off duty
-- otherwise. NULL: its duty is set by hand only.

ALTER TABLE units
    ADD COLUMN shift text CHECK (shift ~ '^[a-z][a-z0-9_-]{0,31}$');

-- The shift clock's scan at every boundary.
CREATE INDEX units_shift_idx ON units (shift) WHERE shift IS NOT NULL;

-- The last shift the clock applied (one row). A hub that restarts in the middle of a shift finds
-- it already applied and leaves alone what operators changed by hand since the shift began.
CREATE TABLE shift_clock (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    shift      text NOT NULL,
    started_at timestamptz NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
