"""Migration scripts, applied in order by ``service.db.migrate.upgrade``."""
