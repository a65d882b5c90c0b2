#ifndef ESAFETY_SQLITE_RESET_H
#define ESAFETY_SQLITE_RESET_H
// SQLite's reset of a database to empty, which Swift cannot spell (sqlite3_db_config is
// variadic). The handle is GRDB's connection, passed as an opaque pointer so this header
// needs no SQLite header of its own (GRDB's module has one).

/// Empties the database of connection `db` (a `sqlite3 *`): no schema, no content, the file
/// cut to one page, as SQLITE_DBCONFIG_RESET_DATABASE and VACUUM do it: without copying the
/// old pages into the rollback journal, which a DROP or DELETE of a big table does (17 GB of
/// journal for an index of 26 GB). Not inside a transaction. An SQLite result code.
int esafety_sqlite_reset(void *db);

#endif
