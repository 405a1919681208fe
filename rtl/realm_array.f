realm_array.v
realm_pe.f
