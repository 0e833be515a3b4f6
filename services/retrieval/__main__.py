"""python -m services.retrieval"""

from runtime.server import main
from services.retrieval.service import spec
from services.retrieval.settings import RetrievalSettings

if __name__ == "__main__":
    main(RetrievalSettings.from_env, lambda s: (spec(s), s.server))
