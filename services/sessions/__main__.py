"""python -m services.sessions"""

from runtime.server import main
from services.sessions.service import spec
from services.sessions.settings import SessionsSettings

if __name__ == "__main__":
    main(SessionsSettings.from_env, lambda s: (spec(s), s.server))
