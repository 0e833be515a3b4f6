"""python -m services.chat"""

from runtime.server import main
from services.chat.service import spec
from services.chat.settings import ChatSettings

if __name__ == "__main__":
    main(ChatSettings.from_env, lambda s: (spec(s), s.server))
