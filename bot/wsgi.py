"""The WSGI entry point for gunicorn: reads the environment, prepares the database."""

from bot.app import create_app, db_of
from bot.config import load_config
from bot.startup import prepare_database, tune_process

_config = load_config()
app = create_app(_config)
prepare_database(_config, db_of(app))
tune_process(db_of(app))
