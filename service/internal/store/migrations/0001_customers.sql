-- The customers table as the legacy backend had it: no unique constraint on
-- (merchant_id, external_id). The strategies that need one add it at start
-- (see store.Prepare), so each strategy can run against its own database.
CREATE TABLE customers (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id text        NOT NULL,
    external_id text        NOT NULL,
    email       text,
    name        text,
    -- Microsecond precision here; tokens carry whole seconds (iat).
    created_at  timestamptz NOT NULL DEFAULT now()
);
