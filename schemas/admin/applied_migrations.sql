-- The versions of the numbered migrations already applied to this store.
SELECT Version FROM spanhouse_migrations FINAL
