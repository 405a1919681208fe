realm_pe.v
realm_timed_add.v
