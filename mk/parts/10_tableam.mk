# pg_regress suites of the table access method (src/tableam)
REGRESS += tam_ddl tam_dml tam_indexes tam_constraints tam_tx tam_maint tam_not_supported
