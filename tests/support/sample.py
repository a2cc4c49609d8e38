"""The small shop database `make demo` and `make sandbox` start with."""

SAMPLE_SQL = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, city text);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id integer REFERENCES customers,
    total numeric(10, 2),
    placed timestamptz
);
INSERT INTO customers (name, city)
    SELECT 'Customer ' || n, (ARRAY['Kyiv', 'Lisboa', 'Zürich', '東京'])[1 + n % 4]
    FROM generate_series(1, 500) AS n;
INSERT INTO orders (customer_id, total, placed)
    SELECT 1 + n % 500, (n * 7.31) % 1000, timestamptz '2026-01-01' + n * interval '37 minutes'
    FROM generate_series(1, 5000) AS n;
"""
