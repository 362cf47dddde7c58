"""PostgreSQL: the connection pool, the schema (yoyo SQL migrations) and the queries.

Every other package reaches the database through the functions here; SQL lives nowhere
else. Imports only psycopg, yoyo, cryptography and the standard library.
"""
