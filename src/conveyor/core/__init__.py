"""The pure model of Conveyor: tasks, dispatch, jobs, handles and context. No I/O here."""
