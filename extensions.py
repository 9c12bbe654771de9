"""Flask extensions, created unbound and bound to an app in create_app()."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

from jobs.queues import RedisQueues


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
limiter = Limiter(key_func=get_remote_address)
# Its async mode is chosen per process in create_app (gevent in the web role, threads elsewhere).
socketio = SocketIO()
queues = RedisQueues()
login_manager = LoginManager()
csrf = CSRFProtect()
