-- 0003: department bindings registered at run time (admin API), with their history.
-- The configuration file is the base; a row here replaces that department's binding on
-- every replica (each polls the versions) until it is removed again.

CREATE TABLE IF NOT EXISTS department_bindings (
    department   TEXT PRIMARY KEY,
    version      INTEGER NOT NULL,          -- rises with every change: replicas apply newer ones
    state        TEXT NOT NULL,             -- active | disabled
    binding_json TEXT NOT NULL,             -- the binding as a configuration table (no secrets)
    updated_at   REAL NOT NULL,
    actor        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS department_binding_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    department   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    action       TEXT NOT NULL,             -- register | update | disable | enable | remove
    state        TEXT NOT NULL,
    binding_json TEXT NOT NULL,
    changed_at   REAL NOT NULL,
    actor        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS department_binding_history_by_department ON department_binding_history(department, id);
