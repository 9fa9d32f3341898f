# types_matrix.sh: the type matrix the MariaDB tests share (sourced, not a
# test): a table with a column of every MariaDB type docs/type-mapping.md
# maps, and five rows of edge values (ids 1, 2, 3, 5, 6; the tests add an
# all-NULL row 4 themselves).

# The CREATE TABLE statement of `types`.
types_matrix_ddl() {
	cat <<'SQL'
CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
  mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, bu BIGINT UNSIGNED, bo BOOLEAN, zf INT(5) UNSIGNED ZEROFILL,
  d10 DECIMAL(10,6), d65 DECIMAL(65,30), d20 DECIMAL(20,6), d18 DECIMAL(18,4),
  d5 DECIMAL(5,0), du DECIMAL(12,3) UNSIGNED,
  f FLOAT, f73 FLOAT(7,3), dbl DOUBLE,
  da DATE, t0 TIME, t3 TIME(3), t6 TIME(6), dt0 DATETIME, dt6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL, y YEAR,
  c CHAR(10), v VARCHAR(20), tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  cl CHAR(5) CHARACTER SET latin1, vl VARCHAR(20) CHARACTER SET latin1,
  va VARCHAR(10) CHARACTER SET ascii, v3 VARCHAR(10) CHARACTER SET utf8mb3,
  b4 BINARY(4), vb VARBINARY(10), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  e ENUM('a','b','c'), s SET('x','y','z'), el ENUM('é','ü') CHARACTER SET latin1,
  b1 BIT(1), b10 BIT(10), b64 BIT(64),
  j JSON, g GEOMETRY, p POINT,
  u UUID, i6 INET6, i4 INET4)
SQL
}

# types_matrix_rows ENUM1 DATE5: the INSERT of the five rows, row 1's ENUM
# column e and row 5's DATE column da given as SQL literals (test_my_types
# reads ENUM's '' error value and year 1, which a MariaDB target cannot be
# given; the others use 'a' and '1001-01-01').  Strings are as the server
# reads them (NO_BACKSLASH_ESCAPES off); run with time_zone '+00:00'.
types_matrix_rows() {
	local sql
	sql=$(
		cat <<'SQL'
INSERT INTO types VALUES
 (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 0, 0,
  -0.000001, -99999999999999999999999999999999999.999999999999999999999999999999,
  -99999999999999.999999, -99999999999999.9999, -99999, 0,
  0.1, -1.5, 1e23,
  '1000-01-01', '-838:59:59', '-00:00:00.001', '-00:00:00.5', '1000-01-01 00:00:00',
  '2024-02-29 12:34:56.5', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999', 1901,
  'ab  ', '😀', '', 'x\ty', 'l1\nl2\r', 'back\\slash "q" it''s', 'é', '€‰ÿ', 'plain', 'ü',
  X'61000000', X'00', X'', X'000102ff', X'5c0a', REPEAT(X'ab', 70000),
  $1, '', 'é', b'0', b'1000000000', 0,
  '{"a": [1, 2.5, "x"], "b": null}', ST_GeomFromText('POINT(1 2)'),
  ST_GeomFromText('POINT(-1.5 2.25)', 4326),
  '550e8400-e29b-41d4-a716-446655440000', '::1', '0.0.0.0'),
 (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
  9223372036854775807, 18446744073709551615, 1, 42,
  9999.999999, 99999999999999999999999999999999999.999999999999999999999999999999,
  0.000001, -1234.5678, 99999, 999999999.999,
  1e-40, 9999.999, -0e0,
  '9999-12-31', '838:59:59', '838:59:59.999', '838:59:59.999999', '9999-12-31 23:59:59',
  '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2021-06-15 12:34:56.5', 2155,
  '', '', 'a', REPEAT('é', 300), '', REPEAT('😀', 1000), '', '', '', '',
  X'00000000', X'', X'00', X'', X'', X'',
  'c', 'x,y,z', 'ü', b'1', b'1111111111', ~0,
  '[]', ST_GeomFromText('LINESTRING(0 0, 1 1)'), NULL,
  '6ccd780c-baba-1026-9564-5b8c656024db', '::ffff:192.0.2.1', '255.255.255.255'),
 (3, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, 2, 1,
  -0.5, 0.000000000000000000000000000001, -0.000001, 0.0001, -1, 0.001,
  3.4e38, 0.001, 1e-300,
  '2024-02-29', '-00:00:01', '-12:34:56.789', '-00:00:00.000001', '2000-01-01 00:00:00',
  '2000-01-01 00:00:00.120000', '2000-01-01 00:00:00', '1970-01-01 00:00:01.001', 2000,
  ' lead', 'Grüße ☃ 日本', 'l', CONCAT('form', CHAR(12), 'feed'),
  CONCAT('bell', CHAR(8), 'vt', CHAR(11)), '\\N', 'ÿ', '"', '~', '日本',
  X'20202020', X'2000', X'20', X'00', X'00', X'00',
  'a', 'z,y', NULL, b'1', b'0000000001', 9223372036854775808,
  '"é😀"', ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))'), ST_GeomFromText('POINT(0 0)'),
  '00000000-0000-0000-0000-000000000000', '2001:db8::ff00:42:8329', '192.0.2.1'),
 (5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12345678901234567890, 0, 0,
  -9999.999999, -0.000000000000000000000000000001, 12345678901234.000001,
  1000000000.5, 0, 12.5,
  16777217, -0.001, 0.3333333333333333,
  $2, '00:00:00', '00:00:00.5', '23:59:59.5', '2001-02-03 04:05:06',
  '2001-02-03 04:05:06.7', '2001-02-03 04:05:06', '2001-02-03 04:05:06.7', 1999,
  'x', 'it''s', 't', 'NULL', '\\.', '{"not": "json"}', 'É', 'naïve', 'A', 'ß',
  X'ff', X'ffffffffffffffffffff', X'ff', X'ff', X'ff', X'ff',
  'b', 'y', 'é', b'0', b'0101010101', 1,
  '{"k": "\\u00e9\\n", "n": -0, "e": 1E400, "dup": 1, "dup": 2}',
  ST_GeomFromText('MULTIPOINT(1 1, 2 2)'), NULL,
  'ffffffff-ffff-ffff-ffff-ffffffffffff', 'fe80::1', '10.0.0.1'),
 (6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 99999,
  1.5, 1, 1, 1, 1, 1,
  -3.4e38, 1, 123456789012345678,
  '2021-06-15', '100:00:00', '-01:00:00.5', '12:00:00.25', '2021-06-15 00:00:00',
  '2021-06-15 00:00:00.000001', '2021-06-15 00:00:00', '2021-06-15 00:00:00.01', 1970,
  'tab\there', 'cr\rlf\n', '\\x', 'a\\tb', '', '', '', '', '', '',
  X'00ff00ff', X'0a0d09', X'5c78', X'', X'', X'',
  NULL, 'x', NULL, NULL, NULL, NULL,
  '{}', NULL, NULL,
  '11111111-2222-1333-8444-555555555555', '1:0:0:2::3', NULL);
SQL
	)
	sql=${sql//\$1/$1}
	printf '%s\n' "${sql//\$2/$2}"
}
