-- TID range scans on armdb tables: a TID names a slot (block = slot / 291,
-- offset = the rest + 1), so ctid ranges are read from the key directory in
-- TID order; the same rows as a sequential scan's filter, in TID order.
SET armdb.shards = 1;
CREATE TABLE tr (a int, b text) USING armdb;
INSERT INTO tr SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
DELETE FROM tr WHERE a % 7 = 0;
UPDATE tr SET b = 'updated' WHERE a % 11 = 0;
RESET armdb.shards;

EXPLAIN (COSTS OFF)
SELECT ctid, a FROM tr WHERE ctid >= '(1,5)' AND ctid < '(2,10)';

-- the same rows as the filter of a sequential scan, for several ranges
CREATE FUNCTION tr_check(lo tid, hi tid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	by_range text;
	by_filter text;
	n bigint;
BEGIN
	SET LOCAL enable_tidscan = on;
	SELECT string_agg(ctid::text || ':' || a, ';' ORDER BY ctid), count(*)
	INTO by_range, n
	FROM tr WHERE ctid >= lo AND ctid <= hi;
	SET LOCAL enable_tidscan = off;
	SELECT string_agg(ctid::text || ':' || a, ';' ORDER BY ctid) INTO by_filter
	FROM tr WHERE ctid >= lo AND ctid <= hi;
	RETURN CASE WHEN by_range IS NOT DISTINCT FROM by_filter
		THEN 'same: ' || n || ' rows' ELSE 'DIFFERENT' END;
END $$;
SELECT lo, hi, tr_check(lo, hi)
FROM (VALUES ('(0,0)'::tid, '(0,5)'::tid), ('(0,290)', '(1,3)'),
			 ('(1,0)', '(1,65535)'), ('(2,100)', '(9,1)'), ('(3,500)', '(4,2)'),
			 ('(5,1)', '(4,1)'), ('(0,0)', '(4294967295,65535)')) v(lo, hi);

-- TID order, rows an UPDATE moved to new slots at the end
SELECT ctid, a, b FROM tr WHERE ctid < '(0,12)';
SELECT ctid, a, b FROM tr WHERE ctid > '(3,160)';

-- a scrollable cursor goes both ways, and turns at either end
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT ctid, a FROM tr WHERE ctid BETWEEN '(0,1)' AND '(0,9)';
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH FORWARD 20 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH ABSOLUTE 1 FROM c;
COMMIT;

-- a rescan (the inner side of a nested loop) starts over
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
SELECT count(*) FROM (VALUES (1), (2), (3)) v(x)
  JOIN LATERAL (SELECT a FROM tr WHERE ctid < '(0,20)' AND a > x) s ON true;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;

-- an empty table; the transaction's own changes, then the rollback's
CREATE TABLE tr_empty (a int) USING armdb;
SELECT count(*) FROM tr_empty WHERE ctid < '(10,1)';
BEGIN;
SELECT count(*) FROM tr WHERE ctid < '(1,0)';
DELETE FROM tr WHERE a < 50;
SELECT count(*) FROM tr WHERE ctid < '(1,0)';
ROLLBACK;
SELECT count(*) FROM tr WHERE ctid < '(1,0)';
DROP TABLE tr, tr_empty;
DROP FUNCTION tr_check(tid, tid);
