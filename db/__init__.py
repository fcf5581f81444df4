"""Everything that speaks SQL: pool, migrations, embedded server, one module per table family."""
