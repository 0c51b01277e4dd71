// SQLite's C API for VantageServer's SQLite engine (Debian's libsqlite3-dev). Only makes C callable.
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast macro Swift cannot import: SQLite copies the bound bytes before returning.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
