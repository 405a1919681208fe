realm_ingress.v
realm_timed_add.v
