realm_core.v
realm_feeder.v
realm_array.f
realm_drain.v
