realm_egress.v
realm_timed_add.v
