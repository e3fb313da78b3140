"""The studio's HTTP routes, one ``APIRouter`` per resource; each gets the :class:`~stemwright.server.studio.Studio`
through ``Depends(get_studio)``."""
from __future__ import annotations

from stemwright.server.routers import drums, events, exports, jobs, layers, mixes, samples, site, songs, stems

ROUTERS = (site.router, songs.router, jobs.router, stems.router, mixes.router, exports.router, samples.router,
           events.router, layers.router, drums.router)
