"""Legacy file-share import (取込): walk a share into Genpon with exact and near-duplicate
detection, a report per run, resumable after a crash. See :mod:`genpon.migrate.service`."""
