"""Statistical ABFT on the host: profiles of the critical region, their characterization and fit,
the recover policies built on them, and recovery."""
