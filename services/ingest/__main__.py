"""python -m services.ingest"""

from runtime.server import main
from services.ingest.service import spec
from services.ingest.settings import IngestSettings

if __name__ == "__main__":
    main(IngestSettings.from_env, lambda s: (spec(s), s.server))
