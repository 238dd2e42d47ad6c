# Isolation specs of the table access method (specs/tam_*.spec)
ISOLATION += tam_eval_plan_qual tam_row_locks tam_unique tam_fk \
	tam_deadlock tam_savepoint tam_vacuum_horizon tam_serializable tam_rowids
