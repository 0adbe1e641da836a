"""Where sufficient statistics come from (DESIGN §8): the request vocabulary and the source
protocol (:mod:`.base`), and the SQL source over SQLite/PostgreSQL (:mod:`.sql`)."""
