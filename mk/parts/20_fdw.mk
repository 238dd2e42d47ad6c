# mk/parts/20_fdw.mk: tests of the nokv foreign data wrapper (src/fdw)
REGRESS += fdw_basic fdw_pushdown fdw_modify fdw_errors
ISOLATION += fdw_concurrency
