/*
 * mycapture_fixtures: records the row-based binlog a real MariaDB writes
 * for a scripted workload and writes it as tests/unit/binlog_fixtures.h,
 * the input of tests/unit/check_binlog_rows.c, together with the values
 * that decoding it must produce.  Not built by default: run it by hand to
 * regenerate the fixtures (another server version, a changed workload).
 *
 *   mycapture_fixtures MARIADB_SOCKET OUTPUT.h [PG_CONNINFO]
 *
 * Connects as root over MARIADB_SOCKET, RESETs the binlog (a throwaway
 * server only!), creates database fx with one table per type family, runs
 * the workload below and then reads the binlog from position 4 through
 * libmariadb's replication API (mariadb_rpl_*), keeping the body of every
 * TABLE_MAP and ROWS event verbatim.  It does not decode rows: the
 * fixtures must not depend on the code they test.
 *
 * The expected text of every row version (what PostgreSQL prints for the
 * mapped type) is written here by hand, and checked twice before anything
 * is written: against MariaDB, by reading the row back with an expression
 * that prints it in PostgreSQL's form (CAST(.. AS CHAR), HEX(), BIN(),
 * fractional zeros trimmed, ...), and against PostgreSQL when PG_CONNINFO
 * is given, by casting the text (or, for floats, INET6 and UUID, MariaDB's
 * own text of the value) to the PostgreSQL type and back to text.  Any
 * difference aborts the run.
 *
 * Exact regeneration (as root; MariaDB 10.11 and PostgreSQL 15 from
 * Debian, throwaway servers owned by nobody on free ports -- take others
 * if 23917/23918 are in use -- removed afterwards):
 *
 *   cc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I/usr/include/postgresql \
 *      $(pkg-config --cflags libmariadb) -o /tmp/mycapture_fixtures \
 *      tests/tools/mycapture_fixtures.c $(pkg-config --libs libmariadb) -lpq
 *   rm -rf /tmp/myfx && mkdir /tmp/myfx && chown nobody /tmp/myfx
 *   runuser -u nobody -- mariadb-install-db --no-defaults --datadir=/tmp/myfx/data \
 *      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve
 *   runuser -u nobody -- mariadbd --no-defaults --datadir=/tmp/myfx/data \
 *      --socket=/tmp/myfx/sock --port=23917 --bind-address=127.0.0.1 \
 *      --pid-file=/tmp/myfx/pid --log-bin=/tmp/myfx/data/bin --binlog-format=ROW \
 *      --binlog-row-image=FULL --binlog-row-metadata=FULL --server-id=7 \
 *      --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
 *      --skip-name-resolve >/tmp/myfx/log 2>&1 &
 *   while [ ! -S /tmp/myfx/sock ]; do sleep 0.2; done
 *   runuser -u nobody -- /usr/lib/postgresql/15/bin/initdb -D /tmp/myfx/pg \
 *      -U postgres -A trust --encoding=UTF8 --locale=C
 *   runuser -u nobody -- /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/myfx/pg -w \
 *      -l /tmp/myfx/pglog -o "-c listen_addresses=127.0.0.1 -p 23918 \
 *      -c unix_socket_directories=/tmp/myfx" start
 *   /tmp/mycapture_fixtures /tmp/myfx/sock tests/unit/binlog_fixtures.h \
 *      "host=127.0.0.1 port=23918 user=postgres dbname=postgres"
 *   runuser -u nobody -- /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/myfx/pg -m fast -w stop
 *   kill $(cat /tmp/myfx/pid)   # and wait for it to exit
 *   rm -rf /tmp/myfx
 *
 * check_binlog_rows.c asserts on this workload; change both together.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <mysql.h>
#include <mariadb_rpl.h>

#define MAXCOLS 12

/*
 * One column: its DDL, the MariaDB expression (a printf format whose
 * %1$s is the column) that prints the value as PostgreSQL would, and the
 * PostgreSQL type to check the expected text with.  mysql "-" skips the
 * MariaDB check; pg NULL skips the PostgreSQL one; pg starting with '~'
 * feeds MariaDB's text of the value (not the expected text) to PostgreSQL.
 */
struct col {
	const char *name, *ddl, *mysql, *pg;
};

struct table {
	const char *name;
	const char *keys; /* inside the parentheses, after the columns */
	const char *opts; /* table options */
	struct col cols[MAXCOLS];
};

#define TXT  "CAST(%1$s AS CHAR)"
#define UTF8 "CONVERT(%1$s USING utf8mb4)"
#define HEXB "CONCAT('\\\\x', LOWER(HEX(%1$s)))"
#define TRIMF(x)                                                                                   \
	"IF(LOCATE('.', " x "), TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM " x ")), " x ")"
#define TIMEF TRIMF("CAST(%1$s AS CHAR)")
#define TSF   "CONCAT(" TRIMF("CAST(%1$s AS CHAR)") ", '+00')"
#define DBLF  "CAST(CAST(%1$s AS DOUBLE) AS CHAR)"
#define ID                                                                                         \
	{                                                                                          \
		"id", "INT NOT NULL", TXT, "integer"                                               \
	}

/* Generated at start-up: the 300-member ENUM and 64-member SET. */
static char ddl_enum300[4096], ddl_set64[1024];

static const struct table tables[] = {
    {"ints",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"t", "TINYINT", TXT, "smallint"},
      {"tu", "TINYINT UNSIGNED", TXT, "smallint"},
      {"s", "SMALLINT", TXT, "smallint"},
      {"su", "SMALLINT UNSIGNED", TXT, "integer"},
      {"m", "MEDIUMINT", TXT, "integer"},
      {"mu", "MEDIUMINT UNSIGNED", TXT, "integer"},
      {"i", "INT", TXT, "integer"},
      {"iu", "INT UNSIGNED", TXT, "bigint"},
      {"b", "BIGINT", TXT, "bigint"},
      {"bu", "BIGINT UNSIGNED", TXT, "numeric(20,0)"},
      {"y", "YEAR", TXT, "smallint"}}},
    {"decs",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"d1", "DECIMAL(1,0)", TXT, "numeric(1,0)"},
      {"d5", "DECIMAL(5,2)", TXT, "numeric(5,2)"},
      {"d10", "DECIMAL(10,6)", TXT, "numeric(10,6)"},
      {"d18", "DECIMAL(18,4)", TXT, "numeric(18,4)"},
      {"d20", "DECIMAL(20,6)", TXT, "numeric(20,6)"},
      {"d38", "DECIMAL(38,10)", TXT, "numeric(38,10)"},
      {"d65", "DECIMAL(65,30)", TXT, "numeric(65,30)"},
      {"du", "DECIMAL(12,3) UNSIGNED", TXT, "numeric(12,3)"}}},
    {"floats",
     "PRIMARY KEY (id)",
     NULL,
     {ID, {"f", "FLOAT", DBLF, "~real"}, {"d", "DOUBLE", DBLF, "~double precision"}}},
    {"temporal",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"da", "DATE", TXT, "date"},
      {"t0", "TIME", TIMEF, "interval"},
      {"t1", "TIME(1)", TIMEF, "interval"},
      {"t3", "TIME(3)", TIMEF, "interval"},
      {"t6", "TIME(6)", TIMEF, "interval"},
      {"dt0", "DATETIME", TIMEF, "timestamp"},
      {"dt3", "DATETIME(3)", TIMEF, "timestamp(3)"},
      {"dt6", "DATETIME(6)", TIMEF, "timestamp(6)"},
      {"ts0", "TIMESTAMP NULL DEFAULT NULL", TSF, "timestamptz"},
      {"ts6", "TIMESTAMP(6) NULL DEFAULT NULL", TSF, "timestamptz(6)"},
      {"y", "YEAR", TXT, "smallint"}}},
    /* created with mysql56_temporal_format=OFF: the pre-5.6 formats */
    {"oldtemporal",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"t", "TIME", TIMEF, "interval"},
      {"dt", "DATETIME", TIMEF, "timestamp"},
      {"ts", "TIMESTAMP NULL DEFAULT NULL", TSF, "timestamptz"}}},
    {"strs",
     "PRIMARY KEY (id)",
     "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
     {ID,
      {"c", "CHAR(10)", TXT, "text"},
      {"v", "VARCHAR(20)", TXT, "text"},
      {"vl", "VARCHAR(300)", TXT, "text"},
      {"tt", "TINYTEXT", TXT, "text"},
      {"t", "TEXT", TXT, "text"},
      {"mt", "MEDIUMTEXT", TXT, "text"},
      {"lt", "LONGTEXT", TXT, "text"},
      {"cl", "CHAR(255)", TXT, "text"}}},
    {"latin",
     "PRIMARY KEY (id)",
     "CHARACTER SET latin1",
     {ID,
      {"c", "CHAR(10)", UTF8, "text"},
      {"v", "VARCHAR(20)", UTF8, "text"},
      {"t", "TEXT", UTF8, "text"},
      {"cb", "CHAR(5) COLLATE latin1_bin", UTF8, "text"}}},
    {"mixcs",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"a", "VARCHAR(10) CHARACTER SET utf8mb3", UTF8, "text"},
      {"b", "VARCHAR(10) CHARACTER SET ascii", UTF8, "text"},
      {"c", "VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", UTF8, "text"},
      {"d", "VARCHAR(10) CHARACTER SET latin1", UTF8, "text"},
      {"e", "VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci", UTF8, "text"},
      {"f", "VARBINARY(10)", HEXB, "bytea"},
      {"g", "TEXT CHARACTER SET utf8mb3 COLLATE utf8mb3_bin", UTF8, "text"},
      {"h", "VARCHAR(10) CHARACTER SET ucs2", "-", NULL}}},
    {"bins",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"b4", "BINARY(4)", HEXB, "bytea"},
      {"vb", "VARBINARY(10)", HEXB, "bytea"},
      {"bl", "BLOB", HEXB, "bytea"},
      {"tb", "TINYBLOB", HEXB, "bytea"},
      {"mb", "MEDIUMBLOB", HEXB, "bytea"},
      {"lb", "LONGBLOB", HEXB, "bytea"},
      {"b16", "BINARY(16)", HEXB, "bytea"}}},
    {"enums",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"e", "ENUM('a','b','c')", TXT, "text"},
      {"eb", ddl_enum300, TXT, "text"},
      {"s", "SET('x','y','z')", TXT, "text"},
      {"s64", ddl_set64, TXT, "text"},
      {"el", "ENUM('é','ü') CHARACTER SET latin1", UTF8, "text"},
      {"s9", "SET('a','b','c','d','e','f','g','h','i')", TXT, "text"}}},
    {"bits",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"b1", "BIT(1)", "LPAD(BIN(%1$s), 1, '0')", "bit(1)"},
      {"b8", "BIT(8)", "LPAD(BIN(%1$s), 8, '0')", "bit(8)"},
      {"b10", "BIT(10)", "LPAD(BIN(%1$s), 10, '0')", "bit(10)"},
      {"b64", "BIT(64)", "LPAD(BIN(%1$s), 64, '0')", "bit(64)"}}},
    {"js", "PRIMARY KEY (id)", NULL, {ID, {"j", "JSON", TXT, "json"}}},
    {"geo",
     "PRIMARY KEY (id)",
     NULL,
     {ID, {"g", "GEOMETRY", HEXB, "bytea"}, {"p", "POINT", HEXB, "bytea"}}},
    {"ext",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"u", "UUID", TXT, "~uuid"},
      {"i6", "INET6", TXT, "~inet"},
      {"i4", "INET4", TXT, "~inet"}}},
    {"comp",
     "PRIMARY KEY (k2, id)",
     NULL,
     {ID, {"k2", "VARCHAR(10) NOT NULL", TXT, "text"}, {"val", "TEXT", TXT, "text"}}},
    {"pfx", "PRIMARY KEY (t(10), id)", NULL, {ID, {"t", "VARCHAR(100) NOT NULL", TXT, "text"}}},
    {"nopk", "", NULL, {ID, {"v", "INT", TXT, "integer"}}},
    {"minimal",
     "PRIMARY KEY (id)",
     NULL,
     {ID,
      {"a", "INT", TXT, "integer"},
      {"b", "VARCHAR(10)", TXT, "text"},
      {"c", "TEXT", TXT, "text"}}},
};

/*
 * The expected value of every column of every row version the binlog
 * carries.  version 0 is the inserted row, each UPDATE of the row makes
 * the next.  NULL is SQL NULL.  A value starting with a byte below 8 has a
 * status other than ok (the enum binlog_value_status numbers, written
 * into the header by name): S_ZERO "\1", S_BAD_DATE "\2", S_BAD_TEXT
 * "\3", S_NUL "\4", S_BAD_ENUM "\5", S_UNSUP "\6" (then no text: NULL).
 * "@name" values are generated (long strings), see gen_value().
 */
struct xrow {
	const char *table;
	int id, version;
	const char *v[MAXCOLS];
};

#define S_ZERO	   "\1"
#define S_BAD_DATE "\2"
#define S_NUL	   "\4"
#define S_UNSUP	   "\6"

static const struct xrow xrows[] = {
    /* ints: min, max, -1/+1 and YEAR 0, NULLs, zeros; 5 updated */
    {"ints",
     1,
     0,
     {"1", "-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808",
      "0", "1901"}},
    {"ints",
     2,
     0,
     {"2", "127", "255", "32767", "65535", "8388607", "16777215", "2147483647", "4294967295",
      "9223372036854775807", "18446744073709551615", "2155"}},
    {"ints", 3, 0, {"3", "-1", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "1", S_ZERO "0000"}},
    {"ints", 4, 0, {"4"}},
    {"ints", 5, 0, {"5", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "2000"}},
    {"ints",
     5,
     1,
     {"5", "5", "0", "0", "0", "0", "0", "0", "0", "0", "12345678901234567890", "2000"}},

    /* decs: max, min, halves and tiny values, group boundaries, NULLs */
    {"decs",
     1,
     0,
     {"1", "9", "999.99", "9999.999999", "99999999999999.9999", "99999999999999.999999",
      "9999999999999999999999999999.9999999999",
      "99999999999999999999999999999999999.999999999999999999999999999999", "999999999.999"}},
    {"decs",
     2,
     0,
     {"2", "-9", "-999.99", "-9999.999999", "-99999999999999.9999", "-99999999999999.999999",
      "-9999999999999999999999999999.9999999999",
      "-99999999999999999999999999999999999.999999999999999999999999999999", "0.000"}},
    {"decs",
     3,
     0,
     {"3", "0", "-0.50", "-0.500000", "0.0001", "0.000001", "-0.0000000001",
      "0.000000000000000000000000000001", "0.001"}},
    {"decs",
     3,
     1,
     {"3", "0", "-1.25", "-0.500000", "0.0001", "0.000001", "-0.0000000001",
      "0.000000000000000000000000000001", "0.001"}},
    {"decs",
     4,
     0,
     {"4", "-1", "1.50", "0.000001", "-1234.5678", "12345678901234.000001",
      "1234567890123456789.0123456789",
      "-12345678901234567890123456789012345.123456789012345678901234567890", "12.500"}},
    {"decs", 5, 0, {"5"}},
    {"decs",
     6,
     0,
     {"6", "0", "0.01", "1000.000001", "1000000000.5000", "-0.000009", "123456789.9876543210",
      "1.000000000000000000000000000001", "0.000"}},

    /* floats: shortest round-trip text, PostgreSQL's notation thresholds */
    {"floats", 1, 0, {"1", "0.1", "0.1"}},
    {"floats", 1, 1, {"1", "0.1", "2.5"}},
    {"floats", 2, 0, {"2", "3.4028235e+38", "1e+308"}},
    {"floats", 3, 0, {"3", "0", "0"}},
    {"floats", 4, 0, {"4", "1.1754944e-38", "2.2250738585072014e-308"}},
    {"floats", 5, 0, {"5", "1e-45", "5e-324"}},
    {"floats", 6, 0, {"6", "1.6777216e+07", "1.2345678901234568e+17"}},
    {"floats", 7, 0, {"7", "100", "1e+15"}},
    {"floats", 8, 0, {"8", "123456", "123456789012345"}},
    {"floats", 9, 0, {"9", "0.0001", "1e-05"}},
    {"floats", 10, 0, {"10", "-1.5", "0.3333333333333333"}},
    {"floats", 11, 0, {"11"}},
    {"floats", 12, 0, {"12", "-3.4028235e+38", "9.223372036854776e+18"}},

    /* temporal: ranges, negative fractional TIME, zero and invalid dates */
    {"temporal",
     1,
     0,
     {"1", "1000-01-01", "-838:59:59", "-838:59:59.9", "-838:59:59.999", "-838:59:59.999999",
      "1000-01-01 00:00:00", "1000-01-01 00:00:00", "1000-01-01 00:00:00", "1970-01-01 00:00:01+00",
      "1970-01-01 00:00:01+00", "1901"}},
    {"temporal",
     2,
     0,
     {"2", "9999-12-31", "838:59:59", "838:59:59.9", "838:59:59.999", "838:59:59.999999",
      "9999-12-31 23:59:59", "9999-12-31 23:59:59.999", "9999-12-31 23:59:59.999999",
      "2038-01-19 03:14:07+00", "2038-01-19 03:14:07.999999+00", "2155"}},
    {"temporal",
     3,
     0,
     {"3", "2024-02-29", "-00:00:01", "-00:00:00.1", "-00:00:00.001", "-00:00:00.000001",
      "2024-02-29 12:34:56", "2024-02-29 12:34:56.5", "2024-02-29 12:34:56.000001",
      "2021-06-15 12:34:56+00", "2021-06-15 12:34:56.5+00", "2000"}},
    {"temporal",
     3,
     1,
     {"3", "2024-02-29", "-00:00:01", "-00:00:00.1", "-00:00:00.001", "-00:00:00.5",
      "2024-02-29 12:34:56", "2024-02-29 12:34:56.5", "2001-02-03 04:05:06.7",
      "2021-06-15 12:34:56+00", "2021-06-15 12:34:56.5+00", "2000"}},
    {"temporal",
     4,
     0,
     {"4", "0001-01-01", "-12:34:56", "-12:34:56.7", "-12:34:56.789", "-12:34:56.789012",
      "0001-01-01 00:00:00", "2000-01-01 00:00:00.123", "2000-01-01 00:00:00.12",
      "2000-01-01 00:00:00+00", "2000-01-01 00:00:00.00001+00", NULL}},
    {"temporal",
     5,
     0,
     {"5", S_ZERO "0000-00-00", "00:00:00", "-00:00:01.5", "-01:00:00.5", "-00:00:01.000001",
      S_ZERO "0000-00-00 00:00:00", S_BAD_DATE "2020-02-30 00:00:00",
      S_BAD_DATE "2020-00-15 10:00:00", S_ZERO "0000-00-00 00:00:00", NULL, S_ZERO "0000"}},
    {"temporal",
     6,
     0,
     {"6", S_BAD_DATE "2020-02-30", "01:02:03", "00:00:00.5", "23:59:59.5", "100:00:00.25"}},
    {"temporal", 7, 0, {"7", S_BAD_DATE "0000-01-01"}},
    {"temporal", 8, 0, {"8", S_BAD_DATE "2021-00-00"}},

    {"oldtemporal", 1, 0, {"1", "-838:59:59", "9999-12-31 23:59:59", "2038-01-19 03:14:07+00"}},
    {"oldtemporal", 2, 0, {"2", "12:34:56", "1000-01-01 00:00:00", "1970-01-01 00:00:01+00"}},
    {"oldtemporal",
     3,
     0,
     {"3", "-00:00:01", S_ZERO "0000-00-00 00:00:00", S_ZERO "0000-00-00 00:00:00"}},
    {"oldtemporal", 4, 0, {"4"}},

    /* strs: 4-byte UTF-8, 2-byte length prefixes, empty vs NULL, CHAR's
     * stripped trailing spaces, a NUL byte */
    {"strs",
     1,
     0,
     {"1", "héllo 😀", "Grüße ☃ 日本 😀", "@e300", "a", "text", "mt", "lt", "@emoji255"}},
    {"strs", 1, 1, {"1", "héllo 😀", "changed", "@e300", "a", "text", "mt", NULL, "@emoji255"}},
    {"strs", 2, 0, {"2", "", "", "", "", "", "", "", ""}},
    {"strs", 3, 0, {"3"}},
    {"strs",
     4,
     0,
     {"4", "ab", "ab  ", " lead", "x\ty", S_NUL "\\x610062", "it's \\ \"q\"", "l1\nl2", ""}},

    /* latin: MySQL's latin1 (cp1252 plus C1 controls) to UTF-8 */
    {"latin", 1, 0, {"1", "café", "é€‰", "naïve ÿ", "É"}},
    {"latin", 2, 0, {"2", "\302\201\302\215", "\302\220\302\235", "€", ""}},
    {"latin", 3, 0, {"3", "", NULL, "", NULL}},

    /* mixcs: one collation each (COLUMN_CHARSET form), ucs2 unsupported */
    {"mixcs", 1, 0, {"1", "ü", "plain", "Ω😀", "ß", "ñ", "\\x00ff", "x", S_UNSUP}},
    {"mixcs", 2, 0, {"2", NULL, "", NULL, "", NULL, "\\x", NULL, NULL}},

    /* bins: BINARY(n) re-padded with 0x00, a 3-byte length prefix */
    {"bins",
     1,
     0,
     {"1", "\\x00000000", "\\x0001", "\\x00", "\\x", "\\xff00", "\\x00000000",
      "\\x01020000000000000000000000000000"}},
    {"bins",
     2,
     0,
     {"2", "\\x61626364", "\\x00", "\\x000102ff", "\\x", "@ab9000", "\\x",
      "\\x000000000000000000000000000000ff"}},
    {"bins", 3, 0, {"3"}},
    {"bins",
     4,
     0,
     {"4", "\\x20202020", "\\x2000", "\\x20", "\\x00", "\\x00", "\\x00",
      "\\x00000000000000000000000000000000"}},

    /* enums: 1- and 2-byte ENUM, SETs of 1, 2 and 8 bytes, latin1 members */
    {"enums", 1, 0, {"1", "a", "v300", "x,z", "@set64all", "é", "a,i"}},
    {"enums", 1, 1, {"1", "a", "v300", "y,z", "@set64all", "é", "a,i"}},
    {"enums", 2, 0, {"2", "", "v1", "", "m64", "ü", ""}},
    {"enums", 3, 0, {"3"}},
    {"enums", 4, 0, {"4", "c", "v256", "y", "m1,m33", NULL, "i"}},

    {"bits",
     1,
     0,
     {"1", "1", "10000001", "1010101010",
      "1111111111111111111111111111111111111111111111111111111111111111"}},
    {"bits",
     2,
     0,
     {"2", "0", "00000000", "0000000000",
      "0000000000000000000000000000000000000000000000000000000000000000"}},
    {"bits", 3, 0, {"3"}},
    {"bits",
     4,
     0,
     {"4", "1", "00000001", "1000000000",
      "1000000000000000000000000000000000000000000000000000000000000000"}},

    /* js: MariaDB's JSON is LONGTEXT: the text as stored */
    {"js", 1, 0, {"1", "{\"a\": [1, 2.5, \"x\"], \"b\": null}"}},
    {"js", 2, 0, {"2", "[]"}},
    {"js", 3, 0, {"3", "\"é😀\""}},
    {"js", 4, 0, {"4"}},

    /* geo: SRID (4 bytes LE) + WKB */
    {"geo",
     1,
     0,
     {"1", "\\x000000000101000000000000000000f03f0000000000000040",
      "\\xe61000000101000000000000000000f8bf0000000000000240"}},
    {"geo",
     2,
     0,
     {"2",
      "\\x00000000010200000002000000000000000000000000000000000000000000"
      "00000000f03f000000000000f03f",
      NULL}},

    /* ext: UUID (a v1 one is byte-swapped in the record), INET6, INET4 */
    {"ext", 1, 0, {"1", "550e8400-e29b-41d4-a716-446655440000", "::1", "192.0.2.1"}},
    {"ext", 1, 1, {"1", "11111111-2222-1333-8444-555555555555", "::1", "192.0.2.1"}},
    {"ext", 2, 0, {"2", "6ccd780c-baba-1026-9564-5b8c656024db", "::", "0.0.0.0"}},
    {"ext",
     3,
     0,
     {"3", "00000000-0000-0000-0000-000000000000", "2001:db8::ff00:42:8329", "255.255.255.255"}},
    {"ext", 4, 0, {"4", "ffffffff-ffff-ffff-ffff-ffffffffffff", "::ffff:192.0.2.1", NULL}},
    {"ext", 5, 0, {"5", NULL, "1:0:0:2::3", NULL}},
    {"ext", 6, 0, {"6", NULL, "::1.2.3.4", NULL}},
    {"ext", 7, 0, {"7", NULL, "fe80::1", NULL}},
    {"ext", 8, 0, {"8", NULL, "1:2:3:4:5:6:7:8", NULL}},
    {"ext", 9, 0, {"9", NULL, "1::", NULL}},
    {"ext", 10, 0, {"10", NULL, "::2", NULL}},
    {"ext", 11, 0, {"11", NULL, "0:1::1:0:0", NULL}},

    {"comp", 1, 0, {"1", "a", "x"}},
    {"comp", 1, 1, {"1", "a", "y"}},
    {"comp", 2, 0, {"2", "b", NULL}},
    {"comp", 2, 1, {"2", "c", NULL}},
    {"pfx", 1, 0, {"1", "a long key value beyond ten"}},
    {"nopk", 1, 0, {"1", "10"}},
    {"nopk", 1, 1, {"1", "11"}},
    {"minimal", 1, 0, {"1", "10", "x", "blob"}},
    {"minimal", 2, 0, {"2", "20", "y", "z"}},
    {"minimal", 1, 1, {"1", "11", "x", "blob"}},
    {"minimal", 3, 0, {"3", "30", NULL, NULL}},
    {"minimal", 1, 2, {"1", "11", "w", "blob"}},
};

/*
 * The workload, one statement per line.  "@check TABLE VERSION [ID]"
 * compares every expected row of TABLE with that version (and id) against
 * the server.
 */
static const char *const workload[] = {
    "SET time_zone = '+00:00'",
    "SET sql_mode = 'ALLOW_INVALID_DATES'",
    "INSERT INTO fx.ints VALUES (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,"
    " -9223372036854775808, 0, 1901), (2, 127, 255, 32767, 65535, 8388607, 16777215,"
    " 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 2155),"
    " (3, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, 0),"
    " (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2000)",
    "@check ints 0",
    "UPDATE fx.ints SET t = 5, bu = 12345678901234567890 WHERE id = 5",
    "@check ints 1",
    "DELETE FROM fx.ints WHERE id = 4",

    "INSERT INTO fx.decs VALUES (1, 9, 999.99, 9999.999999, 99999999999999.9999,"
    " 99999999999999.999999, 9999999999999999999999999999.9999999999,"
    " 99999999999999999999999999999999999.999999999999999999999999999999, 999999999.999)",
    "INSERT INTO fx.decs VALUES (2, -9, -999.99, -9999.999999, -99999999999999.9999,"
    " -99999999999999.999999, -9999999999999999999999999999.9999999999,"
    " -99999999999999999999999999999999999.999999999999999999999999999999, 0)",
    "INSERT INTO fx.decs VALUES (3, 0, -0.5, -0.5, 0.0001, 0.000001, -0.0000000001,"
    " 0.000000000000000000000000000001, 0.001),"
    " (4, -1, 1.5, 0.000001, -1234.5678, 12345678901234.000001,"
    " 1234567890123456789.0123456789,"
    " -12345678901234567890123456789012345.12345678901234567890123456789, 12.5),"
    " (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (6, 0, 0.01, 1000.000001, 1000000000.5, -0.000009, 123456789.987654321,"
    " 1.000000000000000000000000000001, 0)",
    "@check decs 0",
    "UPDATE fx.decs SET d5 = -1.25 WHERE id = 3",
    "@check decs 1",
    "DELETE FROM fx.decs WHERE id = 5",

    "INSERT INTO fx.floats VALUES (1, 0.1, 0.1), (2, 3.4028234e38, 1e308),"
    " (3, -1e-30 * 1e-30, -1e-300 * 1e-300), (4, 1.17549435e-38, 2.2250738585072014e-308),"
    " (5, 1.4e-45, 5e-324), (6, 16777217, 123456789012345678), (7, 100, 1e15),"
    " (8, 123456, 123456789012345), (9, 1e-4, 1e-5), (10, -1.5, 1e0 / 3),"
    " (11, NULL, NULL), (12, -3.4028234e38, 9223372036854775808e0)",
    "@check floats 0",
    "UPDATE fx.floats SET d = 2.5 WHERE id = 1",
    "@check floats 1",

    "INSERT INTO fx.temporal VALUES"
    " (1, '1000-01-01', '-838:59:59', '-838:59:59.9', '-838:59:59.999', '-838:59:59.999999',"
    " '1000-01-01 00:00:00', '1000-01-01 00:00:00.000', '1000-01-01 00:00:00.000000',"
    " '1970-01-01 00:00:01', '1970-01-01 00:00:01.000000', 1901),"
    " (2, '9999-12-31', '838:59:59', '838:59:59.9', '838:59:59.999', '838:59:59.999999',"
    " '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999',"
    " '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', 2155),"
    " (3, '2024-02-29', '-00:00:01', '-00:00:00.1', '-00:00:00.001', '-00:00:00.000001',"
    " '2024-02-29 12:34:56', '2024-02-29 12:34:56.5', '2024-02-29 12:34:56.000001',"
    " '2021-06-15 12:34:56', '2021-06-15 12:34:56.5', 2000),"
    " (4, '0001-01-01', '-12:34:56', '-12:34:56.7', '-12:34:56.789', '-12:34:56.789012',"
    " '0001-01-01 00:00:00', '2000-01-01 00:00:00.123', '2000-01-01 00:00:00.120000',"
    " '2000-01-01 00:00:00', '2000-01-01 00:00:00.00001', NULL),"
    " (5, '0000-00-00', '00:00:00', '-00:00:01.5', '-01:00:00.5', '-00:00:01.000001',"
    " '0000-00-00 00:00:00', '2020-02-30 00:00:00', '2020-00-15 10:00:00', 0, NULL, 0),"
    " (6, '2020-02-30', '01:02:03', '00:00:00.5', '23:59:59.5', '100:00:00.25',"
    " NULL, NULL, NULL, NULL, NULL, NULL)",
    "INSERT INTO fx.temporal (id, da) VALUES (7, '0000-01-01'), (8, '2021-00-00')",
    "@check temporal 0",
    "UPDATE fx.temporal SET t6 = '-00:00:00.5', dt6 = '2001-02-03 04:05:06.7' WHERE id = 3",
    "@check temporal 1",

    "INSERT INTO fx.oldtemporal VALUES (1, '-838:59:59', '9999-12-31 23:59:59',"
    " '2038-01-19 03:14:07'), (2, '12:34:56', '1000-01-01 00:00:00', '1970-01-01 00:00:01'),"
    " (3, '-00:00:01', '0000-00-00 00:00:00', 0), (4, NULL, NULL, NULL)",
    "@check oldtemporal 0",

    "INSERT INTO fx.strs VALUES (1, 'héllo 😀', 'Grüße ☃ 日本 😀', REPEAT('é', 300), 'a',"
    " 'text', 'mt', 'lt', REPEAT('😀', 255)), (2, '', '', '', '', '', '', '', ''),"
    " (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (4, 'ab  ', 'ab  ', ' lead', 'x\\ty', 'a\\0b', 'it''s \\\\ \"q\"', 'l1\\nl2', ' ')",
    "@check strs 0",
    "UPDATE fx.strs SET v = 'changed', lt = NULL WHERE id = 1",
    "@check strs 1",
    "DELETE FROM fx.strs WHERE id = 2",

    "INSERT INTO fx.latin VALUES (1, 'café', 'é€‰', 'naïve ÿ', 'É'),"
    " (2, X'818D', X'909D', X'80', ''), (3, '', NULL, '', NULL)",
    "@check latin 0",

    "INSERT INTO fx.mixcs VALUES (1, 'ü', 'plain', 'Ω😀', 'ß', 'ñ', X'00ff', 'x', 'ucs'),"
    " (2, NULL, '', NULL, '', NULL, '', NULL, NULL)",
    "@check mixcs 0",

    "INSERT INTO fx.bins VALUES (1, X'00', X'0001', X'00', X'', X'ff00', X'00000000', X'0102'),"
    " (2, X'61626364', X'00', X'000102ff', X'', REPEAT(X'ab', 9000), X'',"
    " X'000000000000000000000000000000ff'), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (4, X'20202020', X'2000', X'20', X'00', X'00', X'00', X'')",
    "@check bins 0",

    "INSERT INTO fx.enums VALUES (1, 'a', 'v300', 'x,z', @set64all, 'é', 'a,i'),"
    " (2, '', 'v1', '', 'm64', 'ü', ''), (3, NULL, NULL, NULL, NULL, NULL, NULL),"
    " (4, 'c', 'v256', 'y', 'm33,m1', NULL, 'i')",
    "@check enums 0",
    "UPDATE fx.enums SET s = 'z,y' WHERE id = 1",
    "@check enums 1",

    "INSERT INTO fx.bits VALUES (1, b'1', b'10000001', b'1010101010', ~0),"
    " (2, b'0', 0, 0, 0), (3, NULL, NULL, NULL, NULL),"
    " (4, 1, 1, b'1000000000', 9223372036854775808)",
    "@check bits 0",

    "INSERT INTO fx.js VALUES (1, '{\"a\": [1, 2.5, \"x\"], \"b\": null}'), (2, '[]'),"
    " (3, '\"é😀\"'), (4, NULL)",
    "@check js 0",

    "INSERT INTO fx.geo VALUES (1, ST_GeomFromText('POINT(1 2)'),"
    " ST_GeomFromText('POINT(-1.5 2.25)', 4326)),"
    " (2, ST_GeomFromText('LINESTRING(0 0, 1 1)'), NULL)",
    "@check geo 0",

    "INSERT INTO fx.ext VALUES (1, '550e8400-e29b-41d4-a716-446655440000', '::1', '192.0.2.1'),"
    " (2, '6ccd780c-baba-1026-9564-5b8c656024db', '::', '0.0.0.0'),"
    " (3, '00000000-0000-0000-0000-000000000000', '2001:db8::ff00:42:8329', '255.255.255.255'),"
    " (4, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '::ffff:192.0.2.1', NULL),"
    " (5, NULL, '1:0:0:2:0:0:0:3', NULL), (6, NULL, '::1.2.3.4', NULL),"
    " (7, NULL, 'fe80::1', NULL), (8, NULL, '1:2:3:4:5:6:7:8', NULL),"
    " (9, NULL, '1::', NULL), (10, NULL, '::2', NULL), (11, NULL, '0:1:0:0:0:1:0:0', NULL)",
    "@check ext 0",
    "UPDATE fx.ext SET u = '11111111-2222-1333-8444-555555555555' WHERE id = 1",
    "@check ext 1",

    "INSERT INTO fx.comp VALUES (1, 'a', 'x'), (2, 'b', NULL)",
    "@check comp 0",
    "UPDATE fx.comp SET val = 'y' WHERE id = 1",
    "UPDATE fx.comp SET k2 = 'c' WHERE id = 2",
    "@check comp 1",
    "DELETE FROM fx.comp WHERE id = 1",
    "INSERT INTO fx.pfx VALUES (1, 'a long key value beyond ten')",
    "@check pfx 0",
    "INSERT INTO fx.nopk VALUES (1, 10)",
    "@check nopk 0",
    "UPDATE fx.nopk SET v = 11",
    "@check nopk 1",
    "DELETE FROM fx.nopk",

    /* non-FULL images: MINIMAL update, delete and insert, then NOBLOB */
    "INSERT INTO fx.minimal VALUES (1, 10, 'x', 'blob'), (2, 20, 'y', 'z')",
    "@check minimal 0 1",
    "@check minimal 0 2",
    "SET SESSION binlog_row_image = 'MINIMAL'",
    "UPDATE fx.minimal SET a = 11 WHERE id = 1",
    "@check minimal 1",
    "DELETE FROM fx.minimal WHERE id = 2",
    "INSERT INTO fx.minimal (id, a) VALUES (3, 30)",
    "@check minimal 0 3",
    "SET SESSION binlog_row_image = 'NOBLOB'",
    "UPDATE fx.minimal SET b = 'w' WHERE id = 1",
    "@check minimal 2",
    "SET SESSION binlog_row_image = 'FULL'",
};

/* --- helpers ---------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "mycapture_fixtures: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static MYSQL *my;
static PGconn *pg;
static int nchecked, npgchecked;

static void my_exec(const char *sql)
{
	if (mysql_query(my, sql) != 0)
		die("%s: %s", sql, mysql_error(my));
	MYSQL_RES *r = mysql_store_result(my);
	if (r != NULL)
		mysql_free_result(r);
	if (mysql_warning_count(my) != 0 && strncmp(sql, "SET", 3) != 0 &&
	    strncmp(sql, "DROP", 4) != 0) {
		/* a warning means the server changed a value: the fixture would lie */
		mysql_query(my, "SHOW WARNINGS");
		MYSQL_RES *w = mysql_store_result(my);
		MYSQL_ROW row;
		while (w != NULL && (row = mysql_fetch_row(w)) != NULL)
			fprintf(stderr, "warning: %s %s %s\n", row[0], row[1], row[2]);
		if (w != NULL)
			mysql_free_result(w);
		if (strstr(sql, "temporal") == NULL && strstr(sql, "enums") == NULL)
			die("warnings on: %s", sql);
	}
}

static int ncols_of(const struct table *t)
{
	int n = 0;
	while (n < MAXCOLS && t->cols[n].name != NULL)
		n++;
	return n;
}

static const struct table *table_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (strcmp(tables[i].name, name) == 0)
			return &tables[i];
	die("no table %s", name);
}

/* Generated expected values; returned strings are static. */
static const char *gen_value(const char *v)
{
	static char e300[700], emoji255[1100], set64all[400], ab9000[18010];
	if (v == NULL || v[0] != '@')
		return v;
	if (strcmp(v, "@e300") == 0) {
		for (int i = 0; i < 300; i++)
			memcpy(e300 + 2 * i, "é", 2);
		return e300;
	}
	if (strcmp(v, "@emoji255") == 0) {
		for (int i = 0; i < 255; i++)
			memcpy(emoji255 + 4 * i, "😀", 4);
		return emoji255;
	}
	if (strcmp(v, "@set64all") == 0) {
		char *p = set64all;
		for (int i = 1; i <= 64; i++)
			p += sprintf(p, "%sm%d", i > 1 ? "," : "", i);
		return set64all;
	}
	if (strcmp(v, "@ab9000") == 0) {
		strcpy(ab9000, "\\x");
		for (int i = 0; i < 9000; i++)
			memcpy(ab9000 + 2 + 2 * i, "ab", 2);
		return ab9000;
	}
	die("unknown generated value %s", v);
}

static void gen_ddl(void)
{
	char *p = ddl_enum300 + sprintf(ddl_enum300, "ENUM(");
	for (int i = 1; i <= 300; i++)
		p += sprintf(p, "%s'v%d'", i > 1 ? "," : "", i);
	strcpy(p, ")");
	p = ddl_set64 + sprintf(ddl_set64, "SET(");
	for (int i = 1; i <= 64; i++)
		p += sprintf(p, "%s'm%d'", i > 1 ? "," : "", i);
	strcpy(p, ")");
}

/* The PostgreSQL text of in as type, or NULL (with the error printed). */
static char *pg_text(const char *type, const char *in)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT $1::%s", type); /* text result: the output function */
	PGresult *r = PQexecParams(pg, sql, 1, NULL, &in, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "postgresql: %s", PQerrorMessage(pg));
		PQclear(r);
		return NULL;
	}
	char *s = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return s;
}

/* Compares every expected row of table/version with what the server holds. */
static void check_rows(const char *tname, int version, int only_id)
{
	const struct table *t = table_by_name(tname);
	int n = ncols_of(t);
	for (size_t x = 0; x < sizeof(xrows) / sizeof(xrows[0]); x++) {
		const struct xrow *xr = &xrows[x];
		if (strcmp(xr->table, tname) != 0 || xr->version != version ||
		    (only_id && xr->id != only_id))
			continue;
		char sql[8192], *p = sql;
		p += sprintf(p, "SELECT ");
		for (int c = 0; c < n; c++) {
			const char *e =
			    strcmp(t->cols[c].mysql, "-") == 0 ? "NULL" : t->cols[c].mysql;
			if (c > 0)
				p += sprintf(p, ", ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the expressions in tables[] */
			p += sprintf(p, e, t->cols[c].name);
#pragma GCC diagnostic pop
		}
		sprintf(p, " FROM fx.%s WHERE id = %d", tname, xr->id);
		if (mysql_query(my, sql) != 0)
			die("%s: %s", sql, mysql_error(my));
		MYSQL_RES *r = mysql_store_result(my);
		MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
		if (row == NULL)
			die("%s v%d: row %d not found", tname, version, xr->id);
		unsigned long *lens = mysql_fetch_lengths(r);
		for (int c = 0; c < n; c++) {
			const char *want = gen_value(xr->v[c]);
			int status = want != NULL && want[0] > 0 && want[0] < 8 ? want[0] : 0;
			const struct col *col = &t->cols[c];
			if (status)
				want++;
			if (status == 6) /* UNSUPPORTED: the value is there, not rendered */
				continue;
			if (strcmp(col->mysql, "-") != 0) {
				if ((want == NULL) != (row[c] == NULL))
					die("%s id %d v%d %s: NULL mismatch", tname, xr->id,
					    version, col->name);
				bool mysql_eq = col->pg == NULL || col->pg[0] != '~';
				/* zero and invalid dates: MariaDB's text starts with ours */
				size_t wl = want ? strlen(want) : 0;
				bool ok = status == 0 ? wl == lens[c] : wl <= lens[c];
				if (want != NULL && mysql_eq && status != 4 &&
				    (!ok || memcmp(want, row[c], wl) != 0))
					die("%s id %d v%d %s: MariaDB says '%.*s', expected '%s'",
					    tname, xr->id, version, col->name, (int)lens[c], row[c],
					    want);
				if (status == 4 &&
				    (lens[c] != 3 || memcmp(row[c], "a\0b", 3) != 0 ||
				     strcmp(want, "\\x610062") != 0))
					die("%s: the NUL value changed", tname);
			}
			nchecked++;
			if (pg == NULL || col->pg == NULL || want == NULL || status != 0)
				continue;
			bool from_mysql = col->pg[0] == '~';
			char *got = pg_text(col->pg + from_mysql, from_mysql ? row[c] : want);
			if (got == NULL || strcmp(got, want) != 0)
				die("%s id %d v%d %s: PostgreSQL %s says '%s' for '%s', expected "
				    "'%s'",
				    tname, xr->id, version, col->name, col->pg + from_mysql,
				    got ? got : "(error)", from_mysql ? row[c] : want, want);
			free(got);
			npgchecked++;
		}
		mysql_free_result(r);
	}
}

/* --- capture ------------------------------------------------------------------------ */

struct event {
	uint8_t type;
	uint32_t timestamp, server_id, log_pos;
	uint16_t flags;
	uint8_t *body;
	size_t len;
	char *note; /* malloc'ed: the statement (ANNOTATE_ROWS) or table */
};

static struct event events[1000];
static int nevents;

static void c_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p >= 0x20 && *p < 0x7f)
			fputc(*p, f);
		else
			fprintf(f, "\\%03o", *p);
	}
	fputc('"', f);
}

static void c_comment(FILE *f, const char *s)
{
	for (const char *p = s; *p && p - s < 160; p++) {
		if (p[0] == '*' && p[1] == '/')
			fputs("* /", f), p++;
		else
			fputc(*p >= 0x20 && *p < 0x7f ? *p : '.', f);
	}
}

static const char *status_name(int s)
{
	static const char *const names[] = {
	    "BINLOG_VAL_OK",	      "BINLOG_VAL_ZERO_DATE",	"BINLOG_VAL_BAD_DATE",
	    "BINLOG_VAL_BAD_TEXT",    "BINLOG_VAL_NUL_IN_TEXT", "BINLOG_VAL_BAD_ENUM",
	    "BINLOG_VAL_UNSUPPORTED",
	};
	return names[s];
}

static void write_header(const char *path, const char *version, const char *binlog_file)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		die("cannot write %s", path);
	fprintf(
	    f,
	    "/*\n * Generated by tests/tools/mycapture_fixtures.c from MariaDB %s; do not edit.\n"
	    " * The body (post-header + body, no checksum) of every TABLE_MAP and ROWS\n"
	    " * event the workload in that tool wrote to %s, in order, and the\n"
	    " * expected PostgreSQL text of every row version (checked against MariaDB\n"
	    " * and PostgreSQL 15 when generated).\n */\n",
	    version, binlog_file);
	fprintf(f, "#ifndef MIGD_BINLOG_FIXTURES_H\n#define MIGD_BINLOG_FIXTURES_H\n\n");
	fprintf(f, "#include <stddef.h>\n#include <stdint.h>\n\n#include \"binlog_rows.h\"\n\n");
	fprintf(f, "#define MYFX_SERVER_VERSION \"%s\"\n\n", version);
	fprintf(f,
		"struct myfx_event {\n\tuint8_t type;\n\tuint32_t timestamp, server_id, log_pos;\n"
		"\tuint16_t flags;\n\tconst uint8_t *body;\n\tsize_t len;\n};\n\n");
	for (int i = 0; i < nevents; i++) {
		struct event *e = &events[i];
		fprintf(f, "/* %d: type %u at %u: ", i, e->type, e->log_pos);
		c_comment(f, e->note ? e->note : "");
		fprintf(f, " */\nstatic const uint8_t myfx_ev_%d[%zu] = {", i, e->len);
		for (size_t j = 0; j < e->len; j++)
			fprintf(f, "%s0x%02x,", j % 12 == 0 ? "\n\t" : " ", e->body[j]);
		fprintf(f, "\n};\n");
	}
	fprintf(f, "\nstatic const struct myfx_event myfx_events[%d] = {\n", nevents);
	for (int i = 0; i < nevents; i++)
		fprintf(f, "\t{%u, %u, %u, %u, 0x%04x, myfx_ev_%d, sizeof(myfx_ev_%d)},\n",
			events[i].type, events[i].timestamp, events[i].server_id, events[i].log_pos,
			events[i].flags, i, i);
	fprintf(f, "};\n\n");

	/* tables: names and DDL, for orientation and the column name checks */
	fprintf(f,
		"struct myfx_table {\n\tconst char *name;\n\tint ncols;\n"
		"\tconst char *cols[%d];\n\tconst char *ddl[%d];\n};\n\n",
		MAXCOLS, MAXCOLS);
	size_t ntables = sizeof(tables) / sizeof(tables[0]);
	fprintf(f, "static const struct myfx_table myfx_tables[%zu] = {\n", ntables);
	for (size_t t = 0; t < ntables; t++) {
		int n = ncols_of(&tables[t]);
		fprintf(f, "\t{\"%s\", %d, {", tables[t].name, n);
		for (int c = 0; c < n; c++)
			fprintf(f, "%s\"%s\"", c ? ", " : "", tables[t].cols[c].name);
		fprintf(f, "}, {");
		for (int c = 0; c < n; c++) {
			char ddl[64];
			snprintf(ddl, sizeof(ddl), "%s", tables[t].cols[c].ddl);
			if (strlen(tables[t].cols[c].ddl) > 40)
				strcpy(ddl + 36, "...)");
			fprintf(f, "%s", c ? ", " : "");
			c_string(f, ddl);
		}
		fprintf(f, "}},\n");
	}
	fprintf(f, "};\n\n");

	/* expected row versions */
	fprintf(f,
		"struct myfx_row {\n\tconst char *table;\n\tint id, version, ncols;\n"
		"\tconst char *vals[%d];    /* NULL: SQL NULL (or no text) */\n"
		"\tuint8_t status[%d];      /* enum binlog_value_status */\n};\n\n",
		MAXCOLS, MAXCOLS);
	size_t nx = sizeof(xrows) / sizeof(xrows[0]);
	fprintf(f, "static const struct myfx_row myfx_rows[%zu] = {\n", nx);
	for (size_t x = 0; x < nx; x++) {
		const struct xrow *xr = &xrows[x];
		int n = ncols_of(table_by_name(xr->table));
		fprintf(f, "\t{\"%s\", %d, %d, %d,\n\t {", xr->table, xr->id, xr->version, n);
		int st[MAXCOLS];
		for (int c = 0; c < n; c++) {
			const char *v = gen_value(xr->v[c]);
			st[c] = v != NULL && v[0] > 0 && v[0] < 8 ? v[0] : 0;
			if (st[c])
				v++;
			if (st[c] == 6)
				v = NULL;
			fprintf(f, "%s", c ? ", " : "");
			if (v == NULL)
				fprintf(f, "NULL");
			else
				c_string(f, v);
		}
		fprintf(f, "},\n\t {");
		for (int c = 0; c < n; c++)
			fprintf(f, "%s%s", c ? ", " : "", status_name(st[c]));
		fprintf(f, "}},\n");
	}
	fprintf(f, "};\n\n#endif\n");
	if (fclose(f) != 0)
		die("cannot write %s", path);
}

static void capture(const char *file, unsigned long long end_pos)
{
	MARIADB_RPL *rpl = mariadb_rpl_init(my);
	if (rpl == NULL)
		die("mariadb_rpl_init failed");
	my_exec("SET @master_binlog_checksum = @@global.binlog_checksum");
	my_exec("SET @mariadb_slave_capability = 4");
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, file, strlen(file));
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, 4);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, 4242);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS,
			     MARIADB_RPL_BINLOG_DUMP_NON_BLOCK |
				 MARIADB_RPL_BINLOG_SEND_ANNOTATE_ROWS);
	if (mariadb_rpl_open(rpl) != 0)
		die("mariadb_rpl_open: %s", mysql_error(my));
	MARIADB_RPL_EVENT *ev = NULL;
	char *annotate = NULL;
	bool checksum = false;
	while ((ev = mariadb_rpl_fetch(rpl, ev)) != NULL) {
		/*
		 * raw_data holds the whole network packet: the OK byte (0), the
		 * 19-byte event header, the body and (binlog_checksum=CRC32)
		 * the 4-byte checksum.  Checked against the header's length.
		 */
		if (ev->event_type == FORMAT_DESCRIPTION_EVENT) {
			/* the last byte before the checksum is the checksum algorithm */
			checksum =
			    ev->raw_data_size >= 24 && ev->raw_data[ev->raw_data_size - 5] == 1;
		}
		if (ev->raw_data_size != ev->event_length + 1 || ev->raw_data[0] != 0)
			die("raw_data has %zu bytes, event %u", ev->raw_data_size,
			    ev->event_length);
		const uint8_t *raw = ev->raw_data + 1;
		size_t body_len = ev->event_length - 19 - (checksum ? 4 : 0);
		if (ev->event_type == ANNOTATE_ROWS_EVENT) {
			free(annotate);
			annotate = strndup((const char *)raw + 19, body_len);
		}
		if (ev->event_type == TABLE_MAP_EVENT ||
		    (ev->event_type >= WRITE_ROWS_EVENT_V1 &&
		     ev->event_type <= DELETE_ROWS_EVENT_V1) ||
		    (ev->event_type >= WRITE_ROWS_EVENT && ev->event_type <= DELETE_ROWS_EVENT)) {
			if (nevents == (int)(sizeof(events) / sizeof(events[0])))
				die("too many events");
			struct event *e = &events[nevents++];
			e->type = (uint8_t)ev->event_type;
			e->timestamp = ev->timestamp;
			e->server_id = ev->server_id;
			e->log_pos = ev->next_event_pos;
			e->flags = ev->flags;
			e->len = body_len;
			e->body = malloc(body_len);
			memcpy(e->body, raw + 19, body_len);
			if (ev->event_type == TABLE_MAP_EVENT)
				e->note = strndup(ev->event.table_map.table.str,
						  ev->event.table_map.table.length);
			else
				e->note = annotate ? strdup(annotate) : NULL;
		}
		if (ev->next_event_pos >= end_pos)
			break;
	}
	if (!checksum)
		die("expected binlog_checksum=CRC32");
	free(annotate);
	if (ev != NULL)
		mariadb_free_rpl_event(ev);
	mariadb_rpl_close(rpl);
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		die("usage: mycapture_fixtures MARIADB_SOCKET OUTPUT.h [PG_CONNINFO]");
	gen_ddl();
	my = mysql_init(NULL);
	if (mysql_real_connect(my, NULL, "root", NULL, NULL, 0, argv[1], 0) == NULL)
		die("connect: %s", mysql_error(my));
	if (mysql_set_character_set(my, "utf8mb4") != 0)
		die("utf8mb4: %s", mysql_error(my));
	if (argc == 4) {
		pg = PQconnectdb(argv[3]);
		if (PQstatus(pg) != CONNECTION_OK)
			die("postgresql: %s", PQerrorMessage(pg));
		PQclear(PQexec(pg, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';"
				   " SET IntervalStyle = 'postgres'; SET extra_float_digits = 1"));
	} else {
		fprintf(stderr, "mycapture_fixtures: no PG_CONNINFO: PostgreSQL checks skipped\n");
	}

	my_exec("DROP DATABASE IF EXISTS fx");
	my_exec("RESET MASTER");
	my_exec("CREATE DATABASE fx");
	my_exec("SET @set64all = 'm1,m2,m3,m4,m5,m6,m7,m8,m9,m10,m11,m12,m13,m14,m15,m16,m17,"
		"m18,m19,m20,m21,m22,m23,m24,m25,m26,m27,m28,m29,m30,m31,m32,m33,m34,m35,m36,"
		"m37,m38,m39,m40,m41,m42,m43,m44,m45,m46,m47,m48,m49,m50,m51,m52,m53,m54,m55,"
		"m56,m57,m58,m59,m60,m61,m62,m63,m64'");
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		const struct table *tb = &tables[t];
		static char sql[16384];
		char *p = sql + sprintf(sql, "CREATE TABLE fx.%s (", tb->name);
		for (int c = 0; c < ncols_of(tb); c++)
			p +=
			    sprintf(p, "%s%s %s", c ? ", " : "", tb->cols[c].name, tb->cols[c].ddl);
		sprintf(p, "%s%s) %s", tb->keys[0] ? ", " : "", tb->keys, tb->opts ? tb->opts : "");
		if (strcmp(tb->name, "oldtemporal") == 0)
			my_exec("SET GLOBAL mysql56_temporal_format = OFF");
		my_exec(sql);
		if (strcmp(tb->name, "oldtemporal") == 0)
			my_exec("SET GLOBAL mysql56_temporal_format = ON");
	}

	for (size_t i = 0; i < sizeof(workload) / sizeof(workload[0]); i++) {
		char tname[32];
		int version, id = 0;
		if (sscanf(workload[i], "@check %31s %d %d", tname, &version, &id) >= 2)
			check_rows(tname, version, id);
		else
			my_exec(workload[i]);
	}

	if (mysql_query(my, "SHOW MASTER STATUS") != 0)
		die("SHOW MASTER STATUS: %s", mysql_error(my));
	MYSQL_RES *r = mysql_store_result(my);
	MYSQL_ROW row = mysql_fetch_row(r);
	char file[64];
	snprintf(file, sizeof(file), "%s", row[0]);
	unsigned long long end_pos = strtoull(row[1], NULL, 10);
	mysql_free_result(r);
	char version[64];
	snprintf(version, sizeof(version), "%s", mysql_get_server_info(my));

	capture(file, end_pos);
	write_header(argv[2], version, file);
	fprintf(stderr,
		"mycapture_fixtures: %d events, %d values checked against MariaDB, %d against"
		" PostgreSQL; wrote %s\n",
		nevents, nchecked, npgchecked, argv[2]);
	mysql_close(my);
	if (pg != NULL)
		PQfinish(pg);
	return 0;
}
