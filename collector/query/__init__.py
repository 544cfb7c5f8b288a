"""The read side: the query endpoint (server), the read commands' way to it (client), what a caller may
reach (guard, tenant_scope), the limits every read runs under, the reports and their rendering."""
