-- Case numbers past PSK-9999999: lpad() truncates a longer id ('10000000' -> '1000000'), which
-- made the eight-digit numbers clash. Pad only ids shorter than seven digits; existing numbers
-- are unchanged.
DROP INDEX cases_number_key;
ALTER TABLE cases DROP COLUMN number;
ALTER TABLE cases ADD COLUMN number text
    GENERATED ALWAYS AS ('PSK-' || lpad(id::text, greatest(7, length(id::text)), '0')) STORED;
CREATE UNIQUE INDEX cases_number_key ON cases (number);

-- Routing rule regions are compared without case: one rule per (category, lower(region)).
-- Case variants written before are merged, keeping the most recently changed one.
DELETE FROM routing_rules AS r
    USING routing_rules AS newer
    WHERE newer.category = r.category
      AND lower(newer.region) = lower(r.region)
      AND newer.region <> r.region
      AND (newer.updated_at, newer.region) > (r.updated_at, r.region);
CREATE UNIQUE INDEX routing_rules_region_key ON routing_rules (category, lower(region));
